"""Talking to an upstream registry for the proxy: one guarded client per event loop, login on
demand (Basic or Bearer, realm rules as in the OCI client), retry once after a refusal."""

from __future__ import annotations

import asyncio
import base64
import random
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
from asgiref.sync import sync_to_async

from registries import services
from registries.clients import oci
from registries.clients.errors import ErrorCategory, RegistryError
from registries.clients.netguard import GuardedClient, GuardPolicy
from registries.models import ExternalRegistry

# Blobs may stream for a long time; manifests and logins should not hang.
BLOB_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=30.0, pool=10.0)
DEFAULT_BEARER_TTL = 60
RETRIES = 2
RETRY_STATUSES = frozenset({500, 502, 503, 504})
RETRY_DELAY = 0.1  # seconds before the first retry; doubled, with jitter, for the next
_clients: dict[asyncio.AbstractEventLoop, GuardedClient] = {}
# (registry pk, registry updated_at, repository) -> (Authorization header, monotonic expiry).
# Only this process needs it: another process logs in for itself.
_auth_cache: dict[tuple, tuple[str, float]] = {}


def guarded_client() -> GuardedClient:
    """One pooled client per event loop (per worker process), created inside the loop."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        for closed in [other for other in _clients if other.is_closed()]:
            del _clients[closed]  # a finished loop's (in tests: each async test has one)
        client = _clients[loop] = GuardedClient(policy=GuardPolicy.from_settings(), timeout=BLOB_TIMEOUT)
    return client


@dataclass
class Upstream:
    registry: ExternalRegistry
    repository: str

    @property
    def endpoint(self) -> oci.Endpoint:
        return oci.parse_endpoint(self.registry.endpoint, policy=guarded_client().policy)

    def url(self, path: str) -> str:
        return f"{self.endpoint.base_url}/v2/{self.repository}/{path}"

    @property
    def _cache_key(self) -> tuple:
        return (self.registry.pk, self.registry.updated_at, self.repository)


async def _login(upstream: Upstream, response: httpx.Response, *, fresh: bool) -> str | None:
    """An Authorization header answering the upstream's 401 challenge, or None if it gave none."""
    challenge = oci._pick_challenge(oci.parse_www_authenticate(response.headers.get_list("www-authenticate")))
    if challenge is None:
        return None
    credentials = await sync_to_async(services.registry_credentials)(upstream.registry, fresh=fresh)
    if challenge.scheme == "basic":
        raw = f"{credentials.username}:{credentials.password}".encode()
        header, ttl = "Basic " + base64.b64encode(raw).decode(), 3600
    else:
        client = oci.OciClient(
            upstream.endpoint,
            guarded_client(),
            username=credentials.username,
            password=credentials.password,
            allowed_realm_hosts=[upstream.registry.realm_host] if upstream.registry.realm_host else [],
        )
        scope = challenge.scope or f"repository:{upstream.repository}:pull"
        header, ttl = "Bearer " + await client.fetch_token(challenge, scope), DEFAULT_BEARER_TTL
    _auth_cache[upstream._cache_key] = (header, time.monotonic() + ttl)
    return header


def _cached_auth(upstream: Upstream) -> str | None:
    entry = _auth_cache.get(upstream._cache_key)
    if entry and entry[1] > time.monotonic():
        return entry[0]
    return None


async def _send(upstream: Upstream, method: str, path: str, headers: dict[str, str], params, auth):
    """One request, sent again up to RETRIES times (all the proxy sends are idempotent GETs
    and HEADs) when the upstream fails in a way that may pass: a 5xx or a refused or broken
    connection. Not on 429 (that goes to the client with its Retry-After) or timeouts (the
    client would wait several of them)."""
    attempt = 0
    while True:
        last = attempt == RETRIES
        try:
            response, stack = await _send_once(upstream, method, path, headers, params, auth)
        except RegistryError as e:
            if e.category != ErrorCategory.CONNECT or last:
                raise
        else:
            if response.status_code not in RETRY_STATUSES or last:
                return response, stack
            await stack.aclose()
        await asyncio.sleep(RETRY_DELAY * 2**attempt * random.uniform(0.5, 1.5))  # noqa: S311 (jitter)
        attempt += 1


async def _send_once(upstream: Upstream, method: str, path: str, headers: dict[str, str], params, auth):
    stack = AsyncExitStack()
    sent = dict(headers)
    if auth:
        sent["Authorization"] = auth
    try:
        response = await stack.enter_async_context(
            guarded_client().stream(method, upstream.url(path), headers=sent, params=params)
        )
    except BaseException:
        await stack.aclose()
        raise
    return response, stack


async def open_stream(
    upstream: Upstream, method: str, path: str, headers: dict[str, str], *, params: dict | None = None
) -> tuple[httpx.Response, AsyncExitStack]:
    """Send a request upstream, logging in when challenged; the caller reads the response and
    then closes the stack. A refused login is retried exactly once with fresh credentials (a
    minted ECR/GCR token is minted again); after that the refusal is the answer."""
    key = upstream._cache_key
    auth = _cached_auth(upstream)
    logged_in = refreshed = False
    while True:
        response, stack = await _send(upstream, method, path, headers, params, auth)
        if response.status_code not in (401, 403):
            return response, stack
        if response.status_code == 401 and not logged_in:
            await stack.aclose()
            auth = await _login(upstream, response, fresh=False)
            if auth is None:
                raise RegistryError(
                    "the upstream registry asks for an unknown kind of login", ErrorCategory.UNAUTHORIZED
                )
            logged_in = True
            continue
        if auth is not None and not refreshed:
            await stack.aclose()
            _auth_cache.pop(key, None)
            if upstream.registry.mints_tokens:
                await sync_to_async(services.registry_token_invalidate)(upstream.registry)
            auth, logged_in, refreshed = None, False, True
            continue
        return response, stack
