"""`/api/v1/analytics/pulls/`: the analytics page's figures for scripts."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.decorators import api_view
from rest_framework.response import Response

from insights import selectors
from insights.scope import scope_from_query

_DAY_FIELDS = {
    "date": serializers.DateField(),
    "pulls": serializers.IntegerField(),
    "bytes": serializers.IntegerField(),
    "refused": serializers.IntegerField(),
}
_CUSTOMER_FIELDS = {
    "license": serializers.IntegerField(),
    "customer": serializers.CharField(),
    "license_id_prefix": serializers.CharField(),
    "app": serializers.CharField(),
    "pulls": serializers.IntegerField(),
    "bytes": serializers.IntegerField(),
}
_FIGURES = inline_serializer(
    "PullFigures",
    {
        "days": serializers.IntegerField(help_text="Length of the period, in days (ending today)."),
        "app": serializers.CharField(allow_null=True),
        "license": serializers.IntegerField(allow_null=True),
        "totals": inline_serializer(
            "PullTotals",
            {
                "pulls": serializers.IntegerField(),
                "bytes": serializers.IntegerField(),
                "refused": serializers.IntegerField(),
            },
        ),
        "by_day": inline_serializer("PullDay", _DAY_FIELDS, many=True),
        "top_customers": inline_serializer("PullCustomer", _CUSTOMER_FIELDS, many=True),
        "refusals": inline_serializer(
            "PullRefusal", {"reason": serializers.CharField(), "count": serializers.IntegerField()}, many=True
        ),
    },
)


@extend_schema(
    parameters=[
        OpenApiParameter("app", OpenApiTypes.STR, description="Only this app's pulls (its slug)."),
        OpenApiParameter("license", OpenApiTypes.INT, description="Only this license's pulls."),
        OpenApiParameter(
            "days", OpenApiTypes.INT, enum=list(selectors.PERIODS), description="The period (default 30)."
        ),
    ],
    responses={200: _FIGURES},
)
@api_view(["GET"])
def pull_analytics(request):
    """Pulls (manifest requests answered), bytes sent and refusals per day, the top customers
    by bytes, and the refusals by reason, for the team, an app or a license."""
    try:
        scope = scope_from_query(request.actor.team, request.query_params)
    except ValidationError as e:
        raise exceptions.ValidationError(e.message_dict) from None
    figures = selectors.pull_figures(scope)
    return Response(
        {
            "days": scope.days,
            "app": scope.app.slug if scope.app else None,
            "license": scope.license.pk if scope.license else None,
            "totals": {"pulls": figures.totals.pulls, "bytes": figures.totals.bytes, "refused": figures.totals.refused},
            "by_day": [{"date": d.day, "pulls": d.pulls, "bytes": d.bytes, "refused": d.refused} for d in figures.days],
            "top_customers": [
                {
                    "license": c.license_id,
                    "customer": c.customer,
                    "license_id_prefix": c.id_prefix,
                    "app": c.app,
                    "pulls": c.pulls,
                    "bytes": c.bytes,
                }
                for c in figures.customers
            ],  # fmt: skip
            "refusals": [{"reason": reason, "count": n} for reason, n in figures.refusals],
        }
    )
