"""The network guard in one name, for callers that use it as one module (`netguard.check_url`).

Every outbound call to a vendor-given address (registries, realms, token URIs) goes through
it. Every new connection resolves the host once, checks *every* resolved address, and
connects to a checked address (the Advocate pattern: validate the socket address, not the
URL). The URL keeps the hostname, so Host, TLS SNI and certificate checks are on the name.
Redirects are followed hop by hop, each one re-checked; Authorization is dropped when the
origin changes; https never downgrades to http.

Each name lives in the module that owns it; import it from there:
  addresses     the policy (private networks, ports, http) and the verdict on an address,
                a port and a URL
  resolve       resolving once and checking every address
  redirects     the one redirect driver both clients use
  sync_client   GuardedSyncClient: httpx with a guarded httpcore network backend
  async_client  GuardedClient: httpx's API over aiohttp with a guarded resolver
  client_base   the clients' defaults and the body limit
  httperrors    httpx's exceptions as RegistryError categories
  errors        RegistryError and its categories
"""

from __future__ import annotations

from .addresses import (
    METADATA_ADDRESSES,
    GuardPolicy,
    IPAddress,
    IPNetwork,
    address_refusal,
    check_address,
    check_port,
    check_url,
    effective_port,
    parse_ip_literal,
    port_refusal,
)
from .async_client import DEFAULT_LIMITS, GuardedClient
from .client_base import DEFAULT_TIMEOUT, MAX_BODY_BYTES
from .httperrors import as_registry_error
from .redirects import MAX_REDIRECTS, Hop, RedirectPlan, next_hop
from .resolve import Resolver, resolve_checked, resolve_checked_sync, system_resolver
from .sync_client import GuardedSyncClient

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "MAX_BODY_BYTES",
    "MAX_REDIRECTS",
    "METADATA_ADDRESSES",
    "GuardPolicy",
    "GuardedClient",
    "GuardedSyncClient",
    "Hop",
    "IPAddress",
    "IPNetwork",
    "RedirectPlan",
    "Resolver",
    "address_refusal",
    "as_registry_error",
    "check_address",
    "check_port",
    "check_url",
    "effective_port",
    "next_hop",
    "parse_ip_literal",
    "port_refusal",
    "resolve_checked",
    "resolve_checked_sync",
    "system_resolver",
]
