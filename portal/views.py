"""Pages that belong to no app: the front door, health, and error pages."""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import redirect, render
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.response import Response

from portal.health import health_checks


def home(request):
    return redirect("licenses:app-list" if request.user.is_authenticated else "accounts:login")


def healthz(request):
    """200 {"status": "ok"} or 503 {"status": "error"} and nothing more: load balancers and `make run`
    poll this without credentials. Why it failed is in the log and at /api/v1/health."""
    healthy = not any(health_checks().values())
    return JsonResponse({"status": "ok" if healthy else "error"}, status=200 if healthy else 503)


_HEALTH = inline_serializer(
    "Health",
    {
        "status": serializers.ChoiceField(choices=["ok", "error"]),
        "checks": serializers.DictField(child=serializers.CharField(), help_text='check name: "ok" or the reason'),
    },
)


@extend_schema(responses={200: _HEALTH, 503: _HEALTH})
@api_view(["GET"])
def health_detail(request):
    """/healthz with its reasons (key ids, columns, database errors), for any member of a team."""
    checks = health_checks()
    healthy = not any(checks.values())
    return Response(
        {"status": "ok" if healthy else "error", "checks": {name: reason or "ok" for name, reason in checks.items()}},
        status=200 if healthy else 503,
    )


def not_found(request, exception=None):
    return render(request, "404.html", status=404)


def forbidden(request, exception=None):
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def api_not_found(request):
    """Unknown API paths answer in the API's JSON error shape, not with the HTML page."""
    return JsonResponse({"code": "not_found", "message": f"No API endpoint at {request.path}."}, status=404)
