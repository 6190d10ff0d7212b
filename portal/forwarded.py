"""X-Forwarded-For, X-Forwarded-Host and X-Forwarded-Proto, believed only from the operator's
front proxies (PORTAL_TRUSTED_PROXIES: addresses and CIDR networks).

The first middleware of both handlers (the pages' chain and the registry's, portal/asgi.py)
rewrites the request once, so every reader downstream sees the same answer without asking:
- from a trusted peer, REMOTE_ADDR becomes the client the proxies name (X-Forwarded-For read
  from the right, skipping the trusted hops), Host the forwarded host, and the scheme the
  forwarded one. Rate limits, the pull and download logs, the audit log's address
  (portal/requestcontext.py), the login lockout and Django's host checks read those.
- from anyone else the three headers are deleted: a forged X-Forwarded-Host cannot name a
  team's custom domain, nor X-Forwarded-For spread guesses over made-up addresses.

The scheme goes through a META key no client can send (every header arrives as HTTP_…), which
settings.SECURE_PROXY_SSL_HEADER names; a request that skipped this middleware is plain http.
The peer's own address stays in META[PEER_ADDR].

Before PORTAL_TRUSTED_PROXIES, SECURE_PROXY_SSL_HEADER=true believed X-Forwarded-Proto from
any peer. With PORTAL_TRUSTED_PROXIES empty it still does, for X-Forwarded-Proto only
(settings.PORTAL_FORWARDED_PROTO_FROM_ANYONE); once the list is set, the list decides.
"""

from __future__ import annotations

import ipaddress

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings

PEER_ADDR = "PORTAL_PEER_ADDR"
FORWARDED_PROTO = "PORTAL_FORWARDED_PROTO"  # settings.SECURE_PROXY_SSL_HEADER names this key
FOR, HOST, PROTO = "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PROTO"


def is_trusted(address: str) -> bool:
    networks = settings.PORTAL_TRUSTED_PROXIES
    if not networks or not address:
        return False
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _last(value: str) -> str:
    """The value the nearest proxy set: proxies append to a list, and only the last entry was
    written by the trusted hop (the ones before it came from further away, maybe the client)."""
    return value.rsplit(",", 1)[-1].strip()


def forwarded_client(header: str, peer: str) -> str:
    """The client in X-Forwarded-For: the rightmost address not itself a trusted proxy (the
    ones left of it could be anything the client sent). Not an address at all: the peer."""
    hops = [hop.strip() for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop.strip("[]")))
            except ValueError:
                return peer
    return hops[0] if hops else peer


def apply(meta: dict) -> None:
    """Rewrite `meta` (request.META) as described above."""
    peer = meta.get("REMOTE_ADDR", "")
    meta[PEER_ADDR] = peer
    forwarded = {key: meta.pop(key) for key in (FOR, HOST, PROTO) if key in meta}
    meta.pop(FORWARDED_PROTO, None)  # never from outside, whatever a server put in META
    if is_trusted(peer):
        if forwarded.get(FOR):
            meta["REMOTE_ADDR"] = forwarded_client(forwarded[FOR], peer)
        if host := _last(forwarded.get(HOST, "")):
            meta["HTTP_HOST"] = host
        if proto := _last(forwarded.get(PROTO, "")).lower():
            meta[FORWARDED_PROTO] = proto
        meta.update(forwarded)  # kept for anyone who wants the whole chain
    elif settings.PORTAL_FORWARDED_PROTO_FROM_ANYONE and forwarded.get(PROTO):
        meta[FORWARDED_PROTO] = _last(forwarded[PROTO]).lower()


class ForwardedHeadersMiddleware:
    """First in MIDDLEWARE and REGISTRY_MIDDLEWARE; sync and async alike, so the registry's
    async chain pays no thread hop for it."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        apply(request.META)
        return self.get_response(request)

    async def _acall(self, request):
        apply(request.META)
        return await self.get_response(request)
