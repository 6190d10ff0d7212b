"""Pages that belong to no app: the front door, health, and error pages."""

from __future__ import annotations

from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render

from registries.keys import encryption_keys_problem


def home(request):
    return redirect("licenses:app-list" if request.user.is_authenticated else "accounts:login")


def healthz(request):
    """200 when the database answers; load balancers and `make run` poll this."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # any database failure means "not healthy"
        return JsonResponse({"status": "error", "database": "unavailable"}, status=503)
    # Fail closed when a stored credential names a key the ring lacks, or the ring is malformed.
    problem = encryption_keys_problem()
    if problem:
        return JsonResponse({"status": "error", "credentials": problem}, status=503)
    return JsonResponse({"status": "ok"})


def not_found(request, exception=None):
    return render(request, "404.html", status=404)


def forbidden(request, exception=None):
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def api_not_found(request):
    """Unknown API paths answer in the API's JSON error shape, not with the HTML page."""
    return JsonResponse({"code": "not_found", "message": f"No API endpoint at {request.path}."}, status=404)
