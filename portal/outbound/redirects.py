"""The one redirect driver, used by both clients: which request follows a response.

Redirects are followed here, hop by hop, not by httpx: every hop's URL is checked again (and
its addresses when the client connects), https never downgrades to http, and credentials
stay with the origin that was given them. The driver never sends; a client sends
`plan.first`, hands each response to `plan.is_final()`, and after closing a redirect
response sends `plan.follow(response)`.
"""

from __future__ import annotations

from typing import NamedTuple

import httpx

from .addresses import GuardPolicy, check_url, effective_port
from .errors import ErrorCategory, RegistryError

MAX_REDIRECTS = 3


class Hop(NamedTuple):
    """One request to send: its method, checked URL, headers and body."""

    method: str
    url: httpx.URL
    headers: httpx.Headers
    content: bytes | None


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    return url.scheme, url.host, effective_port(url)


def next_hop(response: httpx.Response, policy: GuardPolicy) -> Hop:
    """Method, URL, headers and body for following a redirect response, all checked."""
    request = response.request
    location = response.headers.get("location")
    if not location:
        raise RegistryError("redirect without a Location", ErrorCategory.INVALID_RESPONSE)
    try:
        target = request.url.join(location).copy_with(fragment=None)
    except httpx.InvalidURL:
        raise RegistryError("redirect to an invalid URL", ErrorCategory.INVALID_RESPONSE) from None
    if request.url.scheme == "https" and target.scheme == "http":
        raise RegistryError("redirect from https to http refused", ErrorCategory.INSECURE_NOT_ALLOWED)
    target = check_url(target, policy)
    method = request.method
    body = None if method in ("GET", "HEAD") else request.content
    headers = httpx.Headers(request.headers)
    del headers["host"]
    status = response.status_code
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, body = "GET", None
        for name in ("content-length", "content-type", "transfer-encoding"):
            headers.pop(name, None)
    if _origin(target) != _origin(request.url):
        # RFC 9110 section 15.4: credentials are for the origin that asked for them.
        headers.pop("authorization", None)
        headers.pop("cookie", None)
    return Hop(method, target, headers, body)


class RedirectPlan:
    """The requests of one call: the first, checked, then one per redirect followed.

    At most `max_redirects` redirects (never more than MAX_REDIRECTS) are followed; the
    response to the last allowed hop being a redirect too is an invalid response.
    """

    def __init__(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        policy: GuardPolicy,
        headers: dict[str, str] | httpx.Headers | None = None,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
        follow_redirects: bool = True,
        max_redirects: int = MAX_REDIRECTS,
    ) -> None:
        target = check_url(url, policy)
        if params:
            target = target.copy_merge_params(params)
        self.first = Hop(method, target, httpx.Headers(headers), content)
        self._policy = policy
        self._follow = follow_redirects
        self._max_redirects = min(max_redirects, MAX_REDIRECTS)
        self._followed = 0

    def is_final(self, response: httpx.Response) -> bool:
        """Whether this response is the answer (the caller reads it) rather than a hop."""
        return not (self._follow and response.is_redirect)

    def follow(self, response: httpx.Response) -> Hop:
        """The checked request that follows this redirect; refused past the redirect limit."""
        hop = next_hop(response, self._policy)
        self._followed += 1
        if self._followed > self._max_redirects:
            raise RegistryError(f"more than {self._max_redirects} redirects", ErrorCategory.INVALID_RESPONSE)
        return hop
