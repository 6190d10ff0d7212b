"""The async client (the proxy, registry checks): httpx's API over aiohttp, whose resolver is
the guard: every new connection resolves once and checks every address. IP literals, which
aiohttp connects to without asking the resolver, are checked by the transport."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import aiohttp.abc
import httpx
import yarl

from .addresses import GuardPolicy, check_address, check_port, effective_port, parse_ip_literal
from .client_base import DEFAULT_HEADERS, DEFAULT_TIMEOUT, MAX_BODY_BYTES, BoundedBody, no_cookies, with_body
from .httperrors import as_registry_error, where
from .redirects import MAX_REDIRECTS, RedirectPlan
from .resolve import Resolver, resolve_checked

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class _GuardedResolver(aiohttp.abc.AbstractResolver):
    """aiohttp asks this for every new connection to a name: resolve once, check every address."""

    def __init__(self, policy: GuardPolicy, resolver: Resolver | None) -> None:
        self._policy = policy
        self._resolver = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        addresses = await resolve_checked(host, port, policy=self._policy, resolver=self._resolver)
        return [
            {
                "hostname": host,
                "host": str(ip),
                "port": port,
                "family": socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for ip in addresses
        ]

    async def close(self) -> None:
        pass


# aiohttp reads the socket into a buffer of this size before pausing it; its 64 KiB default
# costs a pause/resume per 128 KiB of a streamed blob.
READ_BUFFER_BYTES = 1024 * 1024


class _AiohttpStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            # Whatever has arrived (up to about twice READ_BUFFER_BYTES). bench/proxy.py: a
            # fixed-size read (iter_chunked) streamed ~25% slower, the parser's own pieces
            # (iter_chunks, ~128 KiB) ~20% slower, and 512 KiB or 2 MiB buffers ~15% slower.
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _as_httpx_error(exc) from exc

    async def aclose(self) -> None:
        # Back to the pool when the body was read to the end; closed otherwise.
        self._response.release()


def _as_httpx_error(exc: BaseException) -> httpx.HTTPError:
    """aiohttp's exceptions as httpx's, so callers (and as_registry_error) see one family."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout("connect timed out")
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout("read timed out")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError("could not connect")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError("invalid or incomplete response")
    return httpx.ReadError("connection broke")


class _AsyncTransport(httpx.AsyncBaseTransport):
    """httpx on top, aiohttp underneath: httpx keeps the one API every caller uses (redirect
    checks, headers, errors), aiohttp's C parser moves the bytes. With httpx's own transport
    (h11 reading 64 KiB at a time through anyio) the proxy spent ~30% more CPU per streamed
    GiB (bench/proxy.py). The session is made on first use, inside the running loop."""

    def __init__(
        self,
        policy: GuardPolicy,
        resolver: Resolver | None,
        verify: ssl.SSLContext | bool,
        limits: httpx.Limits,
        first_byte_timeout: float | None = None,
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._ssl = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify)
        self._limits = limits
        self._first_byte_timeout = first_byte_timeout
        self._session: aiohttp.ClientSession | None = None

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=_GuardedResolver(self._policy, self._resolver),
                use_dns_cache=False,  # every new connection is resolved and checked again
                ssl=self._ssl,
                limit=self._limits.max_connections or 0,
                keepalive_timeout=self._limits.keepalive_expiry or 5.0,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                trust_env=False,
                read_bufsize=READ_BUFFER_BYTES,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # aiohttp connects to IP literals without asking the resolver: check them here.
        literal = parse_ip_literal(request.url.host)
        if literal is not None:
            check_address(literal, self._policy, host=request.url.host)
            check_port(effective_port(request.url), self._policy, host=request.url.host)
        timeout = request.extensions.get("timeout", {})
        connect = (timeout.get("connect") or 0) + (timeout.get("pool") or 0)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw if k.lower() != b"host"]
        body = await request.aread()
        try:
            # The response headers must come within the first-byte time, counted from the
            # start (connecting included); the body then has the read timeout between reads.
            async with asyncio.timeout(self._first_byte_timeout):
                response = await self._open_session().request(
                    request.method,
                    yarl.URL(str(request.url), encoded=True),
                    headers=headers,
                    data=body or None,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(
                        total=None,
                        connect=connect or None,
                        sock_connect=timeout.get("connect"),
                        sock_read=timeout.get("read"),
                    ),
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _as_httpx_error(exc) from exc
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=_AiohttpStream(response),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode("latin-1")},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class GuardedClient:
    """Async HTTP client for vendor-given addresses. One per worker/loop, or per task.

    `request()` reads the (bounded) body; `stream()` yields a response whose body the caller
    reads with `aiter_bytes()`. Errors come out as RegistryError, except those raised while
    the caller reads a stream: pass those through `as_registry_error()`.
    """

    def __init__(
        self,
        *,
        policy: GuardPolicy | None = None,
        resolver: Resolver | None = None,
        timeout: httpx.Timeout | float | None = DEFAULT_TIMEOUT,
        max_redirects: int = MAX_REDIRECTS,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits = DEFAULT_LIMITS,
        first_byte_timeout: float | None = None,
    ) -> None:
        self.policy = policy if policy is not None else GuardPolicy.from_settings()
        self.max_redirects = max_redirects  # RedirectPlan holds it to MAX_REDIRECTS
        self._client = httpx.AsyncClient(
            transport=_AsyncTransport(self.policy, resolver, verify, limits, first_byte_timeout),
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            cookies=no_cookies(),
            headers=DEFAULT_HEADERS,
        )

    async def __aenter__(self) -> GuardedClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        headers: dict[str, str] | httpx.Headers | None = None,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
        timeout: httpx.Timeout | float | None | object = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: bool = True,
    ) -> AsyncIterator[httpx.Response]:
        plan = RedirectPlan(
            method,
            url,
            policy=self.policy,
            headers=headers,
            params=params,
            content=content,
            follow_redirects=follow_redirects,
            max_redirects=self.max_redirects,
        )
        hop = plan.first
        while True:
            request = self._client.build_request(
                hop.method, hop.url, headers=hop.headers, content=hop.content, timeout=timeout
            )
            try:
                response = await self._client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise as_registry_error(exc, where(hop.url)) from None
            if plan.is_final(response):
                try:
                    yield response
                finally:
                    await response.aclose()
                return
            await response.aclose()
            hop = plan.follow(response)

    async def request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        max_body: int = MAX_BODY_BYTES,
        **kwargs: Any,
    ) -> httpx.Response:
        """Like stream(), with the body read into `response.content` (at most max_body bytes)."""
        async with self.stream(method, url, **kwargs) as response:
            body = BoundedBody(max_body)
            try:
                async for chunk in response.aiter_bytes():
                    body.add(chunk)
            except httpx.HTTPError as exc:
                raise as_registry_error(exc, where(response.url)) from None
        return with_body(response, body.value())
