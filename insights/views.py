"""The dashboard at `/` and the pull analytics page with its CSV: thin, figures from selectors."""

from __future__ import annotations

import csv

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.views.decorators.cache import never_cache

from accounts.access import Perm
from accounts.decorators import team_view
from insights import charts, selectors
from insights.scope import scope_from_query


@never_cache
def home(request):
    """The dashboard for a member of a team; the login page for anyone else."""
    if not request.user.is_authenticated:
        return redirect("accounts:login")
    return dashboard(request)


@team_view(Perm.READ)
def dashboard(request):
    team = request.actor.team
    registries = list(team.registries.order_by("name"))
    apps = list(team.apps.order_by("name"))
    figures = selectors.pull_figures(selectors.Scope(team))
    counts = selectors.license_counts(team)
    context = {
        "registries": registries,
        "apps": apps,
        "counts": counts,
        "expiring": selectors.expiring_licenses(team),
        "figures": figures,
        "failed": selectors.failed_pulls(team),
        "chart": _bytes_chart(figures),
        "cache": selectors.cache_figures(team),
        "steps": selectors.next_steps(
            team,
            registries=len(registries),
            apps=apps,
            licenses=counts.active + counts.revoked + counts.expired,
            releases=sum(app.releases.count() for app in apps[:1]) if apps else 0,
        ),
    }
    return render(request, "insights/dashboard.html", context)


def _bytes_chart(figures: selectors.PullFigures):
    return charts.bar_chart(
        [(d.day.strftime("%b %-d"), d.bytes) for d in figures.days],
        label=f"Bytes pulled per day, last {figures.scope.days} days",
        format_value=filesizeformat,
    )


def _pulls_chart(figures: selectors.PullFigures):
    return charts.bar_chart(
        [(d.day.strftime("%b %-d"), d.pulls) for d in figures.days],
        label=f"Pulls per day, last {figures.scope.days} days",
    )


@never_cache
@team_view(Perm.READ)
def analytics(request):
    team = request.actor.team
    try:
        scope = scope_from_query(team, request.GET)
        errors = {}
    except ValidationError as e:
        scope, errors = selectors.Scope(team), e.message_dict
    figures = selectors.pull_figures(scope)
    context = {
        "figures": figures,
        "scope": scope,
        "errors": errors,
        "periods": selectors.PERIODS,
        "apps": team.apps.order_by("name"),
        "bytes_chart": _bytes_chart(figures),
        "pulls_chart": _pulls_chart(figures),
        "query": request.GET.urlencode(),
    }
    return render(request, "insights/analytics.html", context)


@never_cache
@team_view(Perm.READ)
def analytics_csv(request):
    """`?table=days` (default): a row per day; `?table=customers`: the top customers."""
    team = request.actor.team
    try:
        scope = scope_from_query(team, request.GET)
    except ValidationError as e:
        return HttpResponse(_error_text(e), status=400, content_type="text/plain; charset=utf-8")
    table = request.GET.get("table", "days")
    if table not in ("days", "customers"):
        return HttpResponse("table: give days or customers.\n", status=400, content_type="text/plain; charset=utf-8")
    name = "-".join(filter(None, ["pulls", scope.app.slug if scope.app else "", table, f"{scope.days}d"]))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    writer = csv.writer(response)
    if table == "days":
        writer.writerow(["date", "pulls", "bytes", "refused"])
        for day in selectors.pulls_by_day(scope):
            writer.writerow([day.day.isoformat(), day.pulls, day.bytes, day.refused])
    else:
        writer.writerow(["license", "customer", "app", "pulls", "bytes"])
        for c in selectors.top_customers(scope, limit=1000):
            writer.writerow([c.license_id, _cell(c.customer), c.app, c.pulls, c.bytes])
    return response


def _cell(text: str) -> str:
    """A customer name as data, never as a spreadsheet formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _error_text(error: ValidationError) -> str:
    return "".join(f"{field}: {' '.join(messages)}\n" for field, messages in error.message_dict.items())
