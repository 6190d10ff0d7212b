"""Custom domains, the read side: which team and kind a host name belongs to, every host the
portal answers for, and the hosts a team's customers are shown. Each process keeps the map of
verified domains for a few seconds (DOMAIN_CACHE_SECONDS), so a domain verified, lost or removed
on any process is followed everywhere without a restart; `forget()` drops it at once here.

The write side (add, verify over DNS, default, remove, the daily re-check) is in
accounts/domain_services.py.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.conf import settings

from accounts.models import CustomDomain, DomainKind, DomainStatus, Team


@dataclass(frozen=True)
class HostOwner:
    team_id: int
    kind: str
    domain: str


_lock = threading.Lock()
_state: dict[str, object] = {"at": 0.0, "hosts": {}}


def bare_host(host: str) -> str:
    """`Proxy.Vendor.com:443` → `proxy.vendor.com` (a bracketed IPv6 literal keeps its brackets)."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _verified() -> dict[str, HostOwner]:
    now = time.monotonic()
    with _lock:
        if now - float(_state["at"]) < settings.DOMAIN_CACHE_SECONDS:  # type: ignore[arg-type]
            return _state["hosts"]  # type: ignore[return-value]
    rows = CustomDomain.objects.filter(status=DomainStatus.VERIFIED).values_list("domain", "team_id", "kind")
    hosts = {domain: HostOwner(team_id, kind, domain) for domain, team_id, kind in rows}
    with _lock:
        _state.update(at=now, hosts=hosts)
    return hosts


def forget() -> None:
    """Read the verified domains again at the next question (after a change here)."""
    with _lock:
        _state["at"] = 0.0


def domain_owner(host: str) -> HostOwner | None:
    """The team and kind of a verified custom domain named by a Host header, else None."""
    return _verified().get(bare_host(host))


def verified_domains() -> frozenset[str]:
    return frozenset(_verified())


def team_host(team: Team | int, kind: str, fallback: str) -> str:
    """The host a team's customers are shown for `kind`: its default verified domain, else
    `fallback` (the portal's own host). Custom domains are served on the front proxy's
    standard port, so a domain carries no port."""
    team_id = team if isinstance(team, int) else team.pk
    domain = (
        CustomDomain.objects.filter(team_id=team_id, kind=kind, is_default=True, status=DomainStatus.VERIFIED)
        .values_list("domain", flat=True)
        .first()
    )
    return domain or fallback


PROXY = DomainKind.PROXY
REGISTRY = DomainKind.REGISTRY
