"""Talking to an upstream registry for the proxy: one guarded client and one bulkhead per event
loop, login on demand (Basic or Bearer, realm rules as in the OCI client), retry once after a
refusal. Each attempt's time to the response headers and each request's failure are counted
by registry (portal/metrics.py); a pull limit the upstream states (Docker Hub's `ratelimit-*`
headers) is kept on the registry by the pull log's writer."""

from __future__ import annotations

import asyncio
import base64
import random
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
from django.conf import settings

from delivery.proxy import pull_log
from delivery.proxy.bulkhead import Bulkhead
from delivery.routing import Upstream
from portal import metrics
from portal.db import pooled
from portal.lru import LRU
from portal.outbound.addresses import GuardPolicy
from portal.outbound.async_client import GuardedClient
from portal.outbound.errors import ErrorCategory, RegistryError
from portal.outbound.httperrors import as_registry_error
from registries import services
from registries.clients import oci

DEFAULT_BEARER_TTL = 60
RETRIES = 2
RETRY_STATUSES = frozenset({500, 502, 503, 504})
RETRY_DELAY = 0.1  # seconds before the first retry; doubled, with jitter, for the next
# Between reads a blob may take long; the first byte may not (UPSTREAM_FIRST_BYTE_TIMEOUT).
READ_TIMEOUT = 60.0
AUTH_CACHE_ENTRIES = 10_000  # ~200 bytes each
# The final answer statuses that count as the upstream's failure (a 404 is an answer).
FAILED_STATUSES = {401: ErrorCategory.UNAUTHORIZED, 403: ErrorCategory.FORBIDDEN, 429: ErrorCategory.RATE_LIMITED}


@dataclass
class _LoopState:
    client: GuardedClient
    bulkhead: Bulkhead


# One per event loop: a worker process has one; in tests each async test has its own.
_loops: LRU[asyncio.AbstractEventLoop, _LoopState] = LRU(16)
# (registry pk, registry updated_at, repository) -> (Authorization header, monotonic expiry).
# Only this process needs it: another process logs in for itself.
_auth_cache: LRU[tuple, tuple[str, float]] = LRU(AUTH_CACHE_ENTRIES)


def _loop_state() -> _LoopState:
    """The pooled client and the bulkhead of this event loop, created inside the loop."""
    loop = asyncio.get_running_loop()
    state = _loops.get(loop)
    if state is None:
        for closed in [other for other in _loops if other.is_closed()]:
            _loops.pop(closed)
        connect = settings.UPSTREAM_CONNECT_TIMEOUT
        client = GuardedClient(
            policy=GuardPolicy.from_settings(),
            timeout=httpx.Timeout(connect=connect, read=READ_TIMEOUT, write=30.0, pool=connect),
            first_byte_timeout=settings.UPSTREAM_FIRST_BYTE_TIMEOUT,
            # No pool limit for the process: the bulkhead limits each team and upstream host
            # instead, so that no upstream can take every connection.
            limits=httpx.Limits(max_connections=None, keepalive_expiry=5.0),
        )
        bulkhead = Bulkhead(
            per_team=settings.UPSTREAM_MAX_CONNECTIONS_PER_TEAM,
            per_host=settings.UPSTREAM_MAX_CONNECTIONS_PER_HOST,
            wait=settings.UPSTREAM_POOL_WAIT,
        )
        state = _loops[loop] = _LoopState(client, bulkhead)
    return state


def guarded_client() -> GuardedClient:
    return _loop_state().client


def _endpoint(upstream: Upstream) -> oci.Endpoint:
    return oci.parse_endpoint(upstream.registry.endpoint, policy=guarded_client().policy)


def _url(upstream: Upstream, path: str) -> str:
    return f"{_endpoint(upstream).base_url}/v2/{upstream.repository}/{path}"


def _cache_key(upstream: Upstream) -> tuple:
    """Another login once the registry row changes (new credentials, new endpoint)."""
    return (upstream.registry.pk, upstream.registry.updated_at, upstream.repository)


async def _login(upstream: Upstream, response: httpx.Response, *, fresh: bool) -> str | None:
    """An Authorization header answering the upstream's 401 challenge, or None if it gave none."""
    challenge = oci.pick_challenge(oci.parse_www_authenticate(response.headers.get_list("www-authenticate")))
    if challenge is None:
        return None
    credentials = await pooled(services.registry_credentials, upstream.registry, fresh=fresh)
    if challenge.scheme == "basic":
        raw = f"{credentials.username}:{credentials.password}".encode()
        header, ttl = "Basic " + base64.b64encode(raw).decode(), 3600
    else:
        client = oci.OciClient(
            _endpoint(upstream),
            guarded_client(),
            username=credentials.username,
            password=credentials.password,
            allowed_realm_hosts=[upstream.registry.realm_host] if upstream.registry.realm_host else [],
        )
        scope = challenge.scope or f"repository:{upstream.repository}:pull"
        header, ttl = "Bearer " + await client.fetch_token(challenge, scope), DEFAULT_BEARER_TTL
    _auth_cache[_cache_key(upstream)] = (header, time.monotonic() + ttl)
    return header


def _cached_auth(upstream: Upstream) -> str | None:
    entry = _auth_cache.get(_cache_key(upstream))
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
    started = time.perf_counter()
    try:
        response = await stack.enter_async_context(
            guarded_client().stream(method, _url(upstream, path), headers=sent, params=params)
        )
    except BaseException:
        await stack.aclose()
        raise
    metrics.UPSTREAM_SECONDS.labels(upstream.registry.name).observe(time.perf_counter() - started)
    return response, stack


def _count_failure(upstream: Upstream, category: ErrorCategory) -> None:
    metrics.UPSTREAM_ERRORS.labels(upstream.registry.name, category.value).inc()


async def open_stream(
    upstream: Upstream, method: str, path: str, headers: dict[str, str], *, params: dict | None = None
) -> tuple[httpx.Response, AsyncExitStack]:
    """Send a request upstream, logging in when challenged; the caller reads the response and
    then closes the stack. A refused login is retried exactly once with fresh credentials (a
    minted ECR/GCR token is minted again); after that the refusal is the answer.

    The request holds a bulkhead slot until the caller closes the stack; with none free within
    UPSTREAM_POOL_WAIT it fails with RegistryError(busy) before contacting the upstream.

    A request that fails (an error, or a final 401, 403, 429 or 5xx) counts once in
    portal_upstream_errors_total, whatever retries it took."""
    try:
        release = await _loop_state().bulkhead.acquire(upstream.registry.team_id, _endpoint(upstream).netloc)
    except RegistryError as e:
        _count_failure(upstream, e.category)
        raise
    try:
        response, stack = await _open_stream(upstream, method, path, headers, params)
    except BaseException as e:
        release()
        if isinstance(e, RegistryError | httpx.HTTPError):
            _count_failure(upstream, e.category if isinstance(e, RegistryError) else as_registry_error(e).category)
        raise
    stack.callback(release)
    rate_limit = oci.rate_limit_of(response.headers)
    if rate_limit is not None:
        pull_log.record_rate_limit(upstream.registry.pk, rate_limit)
    status = response.status_code
    if status >= 500 or status in FAILED_STATUSES:
        _count_failure(upstream, FAILED_STATUSES.get(status, ErrorCategory.UPSTREAM_ERROR))
    return response, stack


async def _open_stream(
    upstream: Upstream, method: str, path: str, headers: dict[str, str], params: dict | None
) -> tuple[httpx.Response, AsyncExitStack]:
    key = _cache_key(upstream)
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
                await pooled(services.registry_token_invalidate, upstream.registry)
            auth, logged_in, refreshed = None, False, True
            continue
        return response, stack
