"""What a service may know about the request it serves without being handed the request: the
client's address, for the audit log ("from where"). Empty outside a request (a Celery task,
a management command)."""

from __future__ import annotations

from contextvars import ContextVar

_address: ContextVar[str] = ContextVar("client_address", default="")


def client_address() -> str:
    return _address.get()


class RequestContextMiddleware:
    """Sets the context for the request's whole way through the middleware and the view."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _address.set(request.META.get("REMOTE_ADDR", ""))
        try:
            return self.get_response(request)
        finally:
            _address.reset(token)
