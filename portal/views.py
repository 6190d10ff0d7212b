"""API views that belong to no app: the health detail and the API's own 404. The health probe,
/metrics and the error pages are portal/basic_views.py."""

from __future__ import annotations

from django.http import JsonResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.response import Response

from portal.health import health_checks

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


def api_not_found(request):
    """Unknown API paths answer in the API's JSON error shape, not with the HTML page."""
    return JsonResponse({"code": "not_found", "message": f"No API endpoint at {request.path}."}, status=404)
