"""What an outbound call may reach: the policy from the settings, and the verdict on an address,
a port and a URL before anything is resolved or sent.

An address is judged as what it reaches, not as it is written: every inet_aton(3) spelling of
an IPv4 address, and every IPv6 form that only carries an IPv4 address (mapped, SIIT, NAT64,
6to4, Teredo), gets the verdict of the IPv4 address inside.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Union

import httpx

from .errors import ErrorCategory, RegistryError

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]  # noqa: UP007 (runtime alias)
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]  # noqa: UP007

# Cloud metadata services, refused whatever the settings say.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
_ALWAYS_BLOCKED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches local listeners on Linux
        "169.254.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",  # reserved, includes 255.255.255.255
        "::/128",
        "fe80::/10",
        "fec0::/10",  # deprecated site-local
        "ff00::/8",
    )
)
# IPv6 spellings of an IPv4 address: packets to them reach the IPv4 address (through the
# kernel, SIIT or NAT64), so the IPv4 address's verdict is theirs. In the IPv4-compatible
# block, :: and ::1 are not embeddings but themselves (unspecified and loopback).
_IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")  # RFC 4291 2.5.5.2
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT, RFC 2765 2.1
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated, RFC 4291 2.5.5.1
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 2.1
# Tunnels, 6to4 2002::/16 (RFC 3056) and Teredo 2001::/32 (RFC 4380), read by ipaddress
# itself: real IPv6 addresses that a relay delivers to the embedded IPv4 address. The IPv4
# address must pass, and so must the IPv6 address itself.
# Local-use NAT64 (RFC 8215): where the IPv4 address sits depends on the prefix length the
# site chose (RFC 6052 2.2), which cannot be told from outside. So the whole block counts as
# private (reached only where the settings allow it) and the common /96 reading, the last
# 32 bits, is judged as well.
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


@dataclass(frozen=True)
class GuardPolicy:
    """Which non-public networks and ports may be reached, and whether plain http is allowed."""

    allowed_private_networks: tuple[IPNetwork, ...] = ()
    allow_http: bool = False
    # Inclusive (first, last) port ranges; None allows every port.
    allowed_ports: tuple[tuple[int, int], ...] | None = None

    @classmethod
    def from_settings(cls) -> GuardPolicy:
        from django.conf import settings

        ports = settings.REGISTRIES_ALLOWED_PORTS
        return cls(
            allowed_private_networks=tuple(settings.REGISTRIES_ALLOWED_PRIVATE_NETWORKS),
            allow_http=bool(settings.REGISTRIES_ALLOW_HTTP),
            allowed_ports=tuple(ports) if ports is not None else None,
        )

    def allows_private(self, ip: IPAddress) -> bool:
        return any(ip in net for net in self.allowed_private_networks if net.version == ip.version)


_INET_ATON_PART = re.compile(r"^(0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*)$")


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host string denotes by itself, in any encoding a resolver accepts.

    Besides the usual forms this reads what inet_aton(3) reads: `2852039166`, `0xa9fea9fe`,
    `0251.0376.0251.0376`, `169.254.43518`, so none of them can slip past as a "name".
    """
    host = host.strip().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_INET_ATON_PART.match(p) for p in parts):
        return None
    values = []
    for part in parts:
        if part[:2].lower() == "0x":
            values.append(int(part[2:] or "0", 16))
        elif part.startswith("0"):
            values.append(int(part, 8))
        else:
            values.append(int(part))
    # All but the last part are single bytes; the last fills the remaining bytes.
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = 0
    for v in head:
        number = number * 256 + v
    number = number * 256 ** (4 - len(head)) + last
    return ipaddress.IPv4Address(number)


def _translated_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address this IPv6 address is only another spelling of, if any."""
    if ip in _IPV4_MAPPED or ip in _IPV4_TRANSLATED or ip in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _tunnelled_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses packets to this tunnel address go to (or through)."""
    if ip.sixtofour is not None:  # 2002::/16
        return (ip.sixtofour,)
    if ip.teredo is not None:  # 2001::/32: (server, client), the client stored with its bits flipped
        return ip.teredo
    if ip in _NAT64_LOCAL:
        return (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)
    return ()


def address_refusal(ip: IPAddress, policy: GuardPolicy) -> str | None:
    """Why this address may not be contacted, or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        translated = _translated_ipv4(ip)
        if translated is not None:
            reason = address_refusal(translated, policy)
            return f"{reason} ({translated} written as IPv6)" if reason else None
        for embedded in _tunnelled_ipv4(ip):
            reason = address_refusal(embedded, policy)
            if reason:
                return f"{reason} ({embedded} inside an IPv6 tunnel or NAT64 address)"
        if ip in _NAT64_LOCAL and not policy.allows_private(ip):
            return "a local-use NAT64 address the settings do not allow"
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified or any(ip in net for net in _ALWAYS_BLOCKED):
        return "a link-local, multicast or unspecified address"
    if ip.is_loopback or ip.is_private or not ip.is_global:
        if policy.allows_private(ip):
            return None
        if ip.is_reserved and not ip.is_loopback:
            return "a reserved address"
        return "a private or loopback address"
    return None


def port_refusal(port: int, policy: GuardPolicy) -> str | None:
    """Why this port may not be contacted (REGISTRIES_ALLOWED_PORTS), or None when it may."""
    if policy.allowed_ports is None or any(first <= port <= last for first, last in policy.allowed_ports):
        return None
    allowed = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in policy.allowed_ports)
    return f"port {port} is not allowed (allowed ports: {allowed or 'none'})"


def check_port(port: int, policy: GuardPolicy, *, host: str) -> None:
    """Raise RegistryError(blocked) unless the port may be contacted."""
    reason = port_refusal(port, policy)
    if reason:
        raise RegistryError(f"{host}: {reason}", ErrorCategory.BLOCKED)


def check_address(ip: IPAddress, policy: GuardPolicy, *, host: str | None = None) -> None:
    """Raise RegistryError(blocked) unless the address may be contacted."""
    reason = address_refusal(ip, policy)
    if reason:
        name = host if host and host != str(ip) else str(ip)
        raise RegistryError(f"{name} is not allowed: it is {reason}", ErrorCategory.BLOCKED)


def effective_port(url: httpx.URL) -> int:
    """The port a URL connects to: its own, or its scheme's default."""
    return url.port or (443 if url.scheme == "https" else 80)


def check_url(url: httpx.URL | str, policy: GuardPolicy) -> httpx.URL:
    """Refuse what no outbound call may use: other schemes, userinfo, fragments, http unless allowed."""
    try:
        url = httpx.URL(url)
    except httpx.InvalidURL:
        raise RegistryError("the address is not a valid URL", ErrorCategory.BLOCKED) from None
    if url.scheme not in ("https", "http") or not url.host:
        raise RegistryError("only https:// addresses are allowed", ErrorCategory.BLOCKED)
    if url.userinfo:
        raise RegistryError("addresses with a user name or password are not allowed", ErrorCategory.BLOCKED)
    if url.fragment:
        raise RegistryError("addresses with a #fragment are not allowed", ErrorCategory.BLOCKED)
    if url.scheme == "http" and not policy.allow_http:
        raise RegistryError(f"plain http to {url.host} is not allowed here", ErrorCategory.INSECURE_NOT_ALLOWED)
    check_port(effective_port(url), policy, host=url.host)
    return url
