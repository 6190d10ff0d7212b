"""POST /hooks/registry: the private registry's notifications (pushes and deletes).

Reference: https://distribution.github.io/distribution/about/notifications/ (the envelope
`{"events": [...]}`; any non-2xx answer makes Distribution retry, so only a request that is
not from the registry, or that it could never get right, is refused).
"""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_POST

from portal import safejson
from registries import private_images

logger = logging.getLogger(__name__)

# Distribution sends one event per request in 2.8; a few hundred would still fit. The ASGI
# wrapper (portal/bodylimit.py) refuses larger bodies before they are read; this check
# stays for other servers.
MAX_BODY = settings.BODY_LIMIT_HOOKS


@sensitive_variables("header", "presented")
def _authorized(request) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    expected = settings.REGISTRY_NOTIFY_SECRET
    if scheme.lower() != "bearer" or not expected:
        return False
    return hmac.compare_digest(presented.strip().encode(), expected.encode())


def _error(status: int, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


@csrf_exempt
@require_POST
def registry_notifications(request):
    if not _authorized(request):
        return _error(401, "a Bearer token with the notification secret is required", **{"WWW-Authenticate": "Bearer"})
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _error(400, "invalid Content-Length")
    if length > MAX_BODY:
        return _error(413, f"at most {MAX_BODY} bytes")
    body = request.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return _error(413, f"at most {MAX_BODY} bytes")
    try:
        envelope = safejson.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _error(400, "the body is not JSON")
    events = envelope.get("events") if isinstance(envelope, dict) else None
    if not isinstance(events, list):
        return _error(400, 'expected {"events": [...]}')
    applied = private_images.registry_notifications_record(events=events)
    return JsonResponse({"received": len(events), "applied": applied})
