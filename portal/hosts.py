"""Django's ALLOWED_HOSTS, following the verified custom domains without a restart.

Why an object and not a list of every verified domain: Django reads settings.ALLOWED_HOSTS on
every `request.get_host()` (CSRF, redirects, absolute URLs such as the registry's token
realm), some of them in async code that may not touch the database, and iterates it.
So the list holds the configured patterns (ALLOWED_HOSTS, PORTAL_UI_HOST), and iterating it
adds the one host the request in hand was admitted on: delivery/hosts.py, the host-routing
middleware of both handlers, looks the host up among the verified domains
(accounts.domains, re-read every DOMAIN_CACHE_SECONDS) and admits it for that request only.
A pending, lost or unknown domain is never admitted, and Django answers 400 as for any host
it does not know. Iterating costs nothing and asks nothing.

(The test runner copies ALLOWED_HOSTS into a plain list; tests of custom domains put this
object back.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_admitted: ContextVar[str] = ContextVar("admitted_host", default="")


class AllowedHosts(list):
    """The configured host patterns, plus the host admitted for the request in hand."""

    def __iter__(self) -> Iterator[str]:
        yield from super().__iter__()
        if host := _admitted.get():
            yield host

    def configured(self) -> list[str]:
        return list(super().__iter__())


@contextmanager
def admitted(host: str) -> Iterator[None]:
    """Within this block (a request's way through the rest of the chain and its view),
    `host` is an allowed host."""
    token = _admitted.set(host)
    try:
        yield
    finally:
        _admitted.reset(token)
