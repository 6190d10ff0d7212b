"""The sync client (Celery tasks, google-auth's token request): httpx over an httpcore network
backend that resolves once, checks every address and connects to a checked one."""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

from .addresses import GuardPolicy
from .client_base import DEFAULT_HEADERS, DEFAULT_TIMEOUT, MAX_BODY_BYTES, BoundedBody, no_cookies, with_body
from .errors import ErrorCategory, RegistryError
from .httperrors import as_registry_error, where
from .redirects import MAX_REDIRECTS, RedirectPlan
from .resolve import Resolver, resolve_checked_sync


class _GuardedSyncBackend(httpcore.NetworkBackend):
    def __init__(self, policy: GuardPolicy, resolver: Resolver | None) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve_checked_sync(host, port, policy=self._policy, resolver=self._resolver)
        error: Exception | None = None
        for ip in addresses:
            try:
                return self._inner.connect_tcp(
                    str(ip), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise RegistryError("unix sockets are not allowed", ErrorCategory.BLOCKED)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _pool_options(verify: ssl.SSLContext | bool, limits: httpx.Limits) -> dict[str, Any]:
    ctx = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify)
    return {
        "ssl_context": ctx,
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
        "retries": 0,
    }


class _SyncTransport(httpx.HTTPTransport):
    def __init__(
        self, policy: GuardPolicy, resolver: Resolver | None, verify: ssl.SSLContext | bool, limits: httpx.Limits
    ) -> None:
        super().__init__(verify=verify, trust_env=False, limits=limits)
        self._pool = httpcore.ConnectionPool(
            network_backend=_GuardedSyncBackend(policy, resolver), **_pool_options(verify, limits)
        )


class GuardedSyncClient:
    """The same guard for sync code (Celery tasks, google-auth's token request)."""

    def __init__(
        self,
        *,
        policy: GuardPolicy | None = None,
        resolver: Resolver | None = None,
        timeout: httpx.Timeout | float | None = DEFAULT_TIMEOUT,
        max_redirects: int = MAX_REDIRECTS,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.policy = policy if policy is not None else GuardPolicy.from_settings()
        self.max_redirects = max_redirects  # RedirectPlan holds it to MAX_REDIRECTS
        limits = httpx.Limits(max_connections=10, max_keepalive_connections=5)
        self._client = httpx.Client(
            transport=_SyncTransport(self.policy, resolver, verify, limits),
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            cookies=no_cookies(),
            headers=DEFAULT_HEADERS,
        )

    def __enter__(self) -> GuardedSyncClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    @contextmanager
    def stream(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        headers: dict[str, str] | httpx.Headers | None = None,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
        timeout: httpx.Timeout | float | None | object = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: bool = True,
    ) -> Iterator[httpx.Response]:
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
                response = self._client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise as_registry_error(exc, where(hop.url)) from None
            if plan.is_final(response):
                try:
                    yield response
                finally:
                    response.close()
                return
            response.close()
            hop = plan.follow(response)

    def request(
        self, method: str, url: httpx.URL | str, *, max_body: int = MAX_BODY_BYTES, **kwargs: Any
    ) -> httpx.Response:
        with self.stream(method, url, **kwargs) as response:
            body = BoundedBody(max_body)
            try:
                for chunk in response.iter_bytes():
                    body.add(chunk)
            except httpx.HTTPError as exc:
                raise as_registry_error(exc, where(response.url)) from None
        return with_body(response, body.value())
