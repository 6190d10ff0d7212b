"""What the catalogue's pages and API both read: a team's licenses and apps, and the
registries that serve an app (read through the team's reverse relation, so the catalogue
imports nothing of the registries layer above it)."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import Team
from licenses.models import App, License


def team_license(team: Team, pk: int) -> License:
    """One of the team's licenses, or 404 (another team's too)."""
    return get_object_or_404(License.objects.select_related("app", "created_by"), pk=pk, app__team=team)


def app_registries(app: App) -> QuerySet:
    """The team's external registries that serve this app (all apps, or this one named)."""
    return app.team.registries.filter(Q(all_apps=True) | Q(apps=app)).distinct()
