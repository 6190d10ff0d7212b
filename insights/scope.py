"""Reading ?app=SLUG&license=ID&days=N, the same way for the page, the CSV and the API."""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ValidationError

from accounts.models import Team
from insights.selectors import DEFAULT_DAYS, PERIODS, Scope
from licenses.models import License


def scope_from_query(team: Team, query: Mapping[str, str]) -> Scope:
    """The Scope the query names; ValidationError naming every bad parameter at once."""
    errors: dict[str, str] = {}
    days = DEFAULT_DAYS
    raw_days = (query.get("days") or "").strip()
    if raw_days:
        if raw_days.isdigit() and int(raw_days) in PERIODS:
            days = int(raw_days)
        else:
            errors["days"] = f"Give one of {', '.join(map(str, PERIODS))}."
    app = license = None
    slug = (query.get("app") or "").strip()
    if slug:
        app = team.apps.filter(slug=slug).first()
        if app is None:
            errors["app"] = f"This team has no app “{slug[:63]}”."
    wanted = (query.get("license") or "").strip()
    if wanted:
        if not wanted.isdigit():
            errors["license"] = "Give a license's numeric id."
        else:
            license = License.objects.filter(pk=int(wanted), app__team=team).select_related("app").first()
            if license is None:
                errors["license"] = f"This team has no license {wanted}."
            elif app is not None and license.app_id != app.pk:
                errors["license"] = f"License {wanted} is not a license of {app.slug}."
    if errors:
        raise ValidationError(errors)
    return Scope(team, days=days, app=app or (license.app if license else None), license=license)
