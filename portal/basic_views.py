"""The views every web process serves, whatever it serves besides (portal/registry_urls.py
too): the health probe, /metrics and the error pages in each door's shape. They import no DRF
and no view of the layers above, so a process that serves only the registry stays small."""

from __future__ import annotations

import sys

import psycopg
from django.conf import settings
from django.db import Error as DjangoDatabaseError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.views import defaults
from django.views.decorators.http import require_http_methods

from portal import metrics as portal_metrics
from portal.health import health_checks
from portal.ocierrors import oci_error


def healthz(request):
    """200 {"status": "ok"} or 503 {"status": "error"} and nothing more: load balancers and `make run`
    poll this without credentials. Why it failed is in the log and at /api/v1/health."""
    healthy = not any(health_checks().values())
    return JsonResponse({"status": "ok" if healthy else "error"}, status=200 if healthy else 503)


@require_http_methods(["GET", "HEAD"])
def metrics(request):
    """/metrics: every process's series in the Prometheus text format, for a scraper sending
    `Authorization: Bearer <METRICS_TOKEN>`; 404 while METRICS_TOKEN is unset, 401 otherwise."""
    token = settings.METRICS_TOKEN
    if not token:
        return not_found(request)
    if not portal_metrics.authorized(request.headers.get("Authorization", ""), token):
        response = HttpResponse("A bearer token is required.\n", status=401, content_type="text/plain; charset=utf-8")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = portal_metrics.exposition()
    return HttpResponse(body, content_type=content_type, headers={"Cache-Control": "no-store"})


def not_found(request, exception=None):
    if settings.PORTAL_WEB_ROLE == "registry":  # no pages here to link to: plain words
        return HttpResponse(REGISTRY_ONLY, status=404, content_type="text/plain; charset=utf-8")
    return render(request, "404.html", status=404)


REGISTRY_ONLY = "Not found. This address serves only the registry API (/v2/).\n"


def forbidden(request, exception=None):
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


# What a client is told to wait before it tries again while the database is unreachable (the
# pool gives up on a connection after DATABASE_POOL_TIMEOUT, 3 s by default).
DATABASE_RETRY_AFTER = "5"


def _database_unavailable(exc: BaseException | None) -> bool:
    """Whether the exception, or one it arose from, is the database's (Django's wrapped errors,
    or psycopg's own, such as the pool's PoolTimeout)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, DjangoDatabaseError | psycopg.Error):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def server_error(request):
    """handler500: an uncaught exception answers in the shape of the door it came through (OCI
    errors under /v2/, the API's JSON under /api/ and /customer/, a page elsewhere), 503 with
    Retry-After when the database is what failed. Django calls this inside its except block,
    hence sys.exc_info(); the exception itself is logged by Django and never shown."""
    database = _database_unavailable(sys.exc_info()[1])
    status = 503 if database else 500
    path = request.path_info
    if path.startswith("/v2/"):
        message = (
            "the portal's database is unavailable; try again shortly"
            if database
            else "the portal failed to answer this request; the error was logged"
        )
        response = oci_error(status, "UNAVAILABLE", message)
    elif path.startswith(("/api/", "/customer/")):
        code, message = (
            ("database_unavailable", "The portal's database is unavailable; try again shortly.")
            if database
            else ("server_error", "The portal failed to answer this request; the error was logged.")
        )
        response = JsonResponse({"code": code, "message": message}, status=status)
    elif settings.PORTAL_WEB_ROLE == "registry":
        response = HttpResponse("The portal failed to answer this request; the error was logged.\n", status=status,
                                content_type="text/plain; charset=utf-8")  # fmt: skip
    elif database:
        # Rendered without context, like the 500 page: nothing here may need the database.
        response = HttpResponse(loader.get_template("503.html").render(), status=503)
    else:
        return defaults.server_error(request)
    if database:
        response["Retry-After"] = DATABASE_RETRY_AFTER
    return response
