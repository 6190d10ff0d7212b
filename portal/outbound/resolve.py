"""Resolving a vendor-given name once and checking every address it resolves to.

Callers connect to the addresses returned here, never to the name again: a rebinding name
cannot hand out a checked address to the check and another one to the connection.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

import anyio
import anyio.to_thread

from .addresses import GuardPolicy, IPAddress, check_address, check_port, parse_ip_literal
from .errors import ErrorCategory, RegistryError

# A resolver takes (host, port) and returns address strings; it raises OSError when the
# name does not resolve. Sync on purpose: async code runs it in a worker thread.
Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """getaddrinfo, but `.invalid` names fail at once as RFC 6761 section 6.4 asks."""
    name = host.rstrip(".").lower()
    if name == "invalid" or name.endswith(".invalid"):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _checked(host: str, answers: Iterable[str], policy: GuardPolicy) -> list[IPAddress]:
    addresses = []
    for answer in answers:
        try:
            addresses.append(ipaddress.ip_address(answer.split("%", 1)[0]))
        except ValueError:
            raise RegistryError(f"{host} resolved to an invalid address", ErrorCategory.DNS) from None
    if not addresses:
        raise RegistryError(f"could not resolve {host}", ErrorCategory.DNS)
    # One bad address rejects the whole set: a rebinding name may hand out either.
    for ip in addresses:
        check_address(ip, policy, host=host)
    return addresses


def resolve_checked_sync(
    host: str, port: int, *, policy: GuardPolicy, resolver: Resolver | None = None
) -> list[IPAddress]:
    """Resolve once and check every address (and the port); raise RegistryError(dns|blocked)."""
    check_port(port, policy, host=host)
    literal = parse_ip_literal(host)
    if literal is not None:
        return _checked(host, [str(literal)], policy)
    try:
        answers = (resolver or system_resolver)(host, port)
    except (OSError, UnicodeError):
        raise RegistryError(f"could not resolve {host}", ErrorCategory.DNS) from None
    return _checked(host, answers, policy)


async def resolve_checked(
    host: str,
    port: int,
    *,
    policy: GuardPolicy,
    resolver: Resolver | None = None,
    timeout: float | None = 5.0,
) -> list[IPAddress]:
    """Async resolve_checked_sync, with a time limit on the lookup."""
    if parse_ip_literal(host) is not None:
        return resolve_checked_sync(host, port, policy=policy)
    try:
        with anyio.fail_after(timeout):
            return await anyio.to_thread.run_sync(
                lambda: resolve_checked_sync(host, port, policy=policy, resolver=resolver),
                abandon_on_cancel=True,
            )
    except TimeoutError:
        raise RegistryError(f"resolving {host} timed out", ErrorCategory.TIMEOUT) from None
