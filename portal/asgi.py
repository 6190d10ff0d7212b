"""ASGI entry point: UI, API, token service and registry proxy in one process.

Registry traffic (the /v2/ API and the registry's notifications) goes to a handler without
Django's middleware but the two async ones that say which client and host a request is from
(REGISTRY_MIDDLEWARE): those views need no sessions, CSRF or templates, and under ASGI every
sync middleware is a thread hop per request, which the proxy's latency paid for.
"""

import os

import django
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIHandler

from portal.bodylimit import BodySizeLimit
from portal.warmup import warm_up, warm_up_registry

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

if settings.PORTAL_WEB_ROLE == "registry":
    # Only /v2/ (settings.ROOT_URLCONF is portal/registry_urls.py): no handler of the pages, and
    # none of their views or templates loaded.
    django.setup(set_prefix=False)
    portal_application = None
    warm_up_registry()
else:
    portal_application = get_asgi_application()
    warm_up()  # the first page a vendor opens should not pay for loading every view and template


class RegistryASGIHandler(ASGIHandler):
    """The same URLs and views, loaded with REGISTRY_MIDDLEWARE (forwarded headers and host
    routing, both async) instead of MIDDLEWARE."""

    # Django splits every streamed chunk into messages of chunk_size (64 KiB by default), each
    # a trip through the ASGI server; a proxied blob arrives in chunks of up to 1 MiB, passed
    # on whole.
    chunk_size = 4 * 1024 * 1024

    async def __call__(self, scope, receive, send):
        """Django gives every request a thread of its own (ThreadSensitiveContext) for its
        thread-sensitive sync work. The token view's work goes to the event loop's thread pool
        (portal/db.py); what is left (the request_started and request_finished receivers, and
        a custom domain's look-up in HostRoutingMiddleware, whose connection request_finished
        then closes on the same thread) runs on asgiref's one shared thread. Making and joining
        a thread per token request cost ~0.7 ms of CPU, a fifth of a token (bench/tokens.py).
        The proxy's views (delivery/proxy/) do the same: a pull is about six requests."""
        if scope["type"] == "http" and scope["path"].startswith(NO_THREAD_PATHS):
            return await self.handle(scope, receive, send)
        return await super().__call__(scope, receive, send)

    def load_middleware(self, is_async=False):
        middleware = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.REGISTRY_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = middleware


# Views whose sync work goes to the loop's pool and leaves no connection open on the request's
# thread; such a view must not call sync_to_async thread-sensitively (it would share one thread).
# (Path prefixes: every URL under /v2/ is the token service or the proxy.)
NO_THREAD_PATHS = ("/v2/",)
registry_application = RegistryASGIHandler()
REGISTRY_PATHS = ("/v2/", "/hooks/registry")
# Every registry answer is data, never a page of the portal's origin: no sniffing it into
# HTML, and a browser that opens one anyway runs nothing in it (sandbox: an opaque origin).
REGISTRY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"default-src 'none'; sandbox"),
)


async def registry_with_headers(scope, receive, send):
    """The registry handler, with REGISTRY_HEADERS on every response it starts (headers only:
    the body's messages, a blob's included, pass untouched)."""

    async def send_with_headers(message):
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *REGISTRY_HEADERS]}
        await send(message)

    return await registry_application(scope, receive, send_with_headers)


async def application(scope, receive, send):
    if portal_application is None or (scope["type"] == "http" and scope["path"].startswith(REGISTRY_PATHS)):
        return await registry_with_headers(scope, receive, send)
    return await portal_application(scope, receive, send)


# Outermost: oversized request bodies get 413 before either handler reads them.
application = BodySizeLimit(application)
