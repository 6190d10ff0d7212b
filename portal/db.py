"""Database work from an async view: one trip off the event loop, its connections handed back.

Under ASGI Django runs sync code of a request (a sync view, `sync_to_async` left thread
sensitive) on a thread made for that request (asgiref's ThreadSensitiveContext). `off_loop`
uses the event loop's default thread pool instead, whose threads live on. Django closes a
request's connections at request_finished, on that request's own thread, so a pool thread's
connections are closed here, after the trip: with the connection pool (portal/settings.py) that
hands them back to it. Under the sync handler (WSGI, Django's test Client) the request already
has its thread and the work runs there, on the connection a test's transaction holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db import connections

P = ParamSpec("P")
R = TypeVar("R")


def release_connections() -> None:
    """Close this thread's database connections (back to the pool), except one inside a
    transaction (a test's atomic block): it is not ours to end."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def _released(func: Callable[P, R]) -> Callable[P, R]:
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        finally:
            release_connections()

    return run


async def off_loop(request, func: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """func(*args, **kwargs) off the event loop for `request`: on the loop's default thread pool
    under ASGI (no thread made for the request), its connections released after; on the
    request's own thread under the sync handler."""
    if isinstance(request, ASGIRequest):
        return await sync_to_async(_released(func), thread_sensitive=False)(*args, **kwargs)
    return await sync_to_async(func)(*args, **kwargs)


async def pooled(func: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """func(*args, **kwargs) on the event loop's default thread pool, its connections released
    after: for work of no request (a background task), or of a request served without a thread
    of its own (portal/asgi.py, NO_THREAD_PATHS) where the request is not at hand."""
    return await sync_to_async(_released(func), thread_sensitive=False)(*args, **kwargs)
