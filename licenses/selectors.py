"""What the catalogue's pages and API both read: a team's licenses and apps, the one license
search and status filter, and the registries that serve an app (read through the team's
reverse relation, so the catalogue imports nothing of the registries layer above it)."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import Team
from licenses.models import App, License
from licenses.services import ID_PREFIX_LENGTH, license_lookup_hash

LICENSE_STATUSES = ("active", "expired", "revoked")
MAX_QUERY_LENGTH = 200


def team_license(team: Team, pk: int) -> License:
    """One of the team's licenses, or 404 (another team's too)."""
    return get_object_or_404(License.objects.select_related("app", "created_by"), pk=pk, app__team=team)


def license_status_q(status: str) -> Q:
    """Licenses in `status` (one of LICENSE_STATUSES) right now; ValueError for anything else."""
    now = timezone.now()
    if status == "revoked":
        return Q(revoked_at__isnull=False)
    if status == "expired":
        return Q(revoked_at__isnull=True, expires_at__lte=now)
    if status == "active":
        return Q(revoked_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    raise ValueError(f"Choose one of: {', '.join(LICENSE_STATUSES)}.")


def license_status_counts(licenses: QuerySet) -> dict[str, int]:
    """How many of `licenses` are active, expired and revoked, in one query."""
    return licenses.aggregate(**{status: Count("pk", filter=license_status_q(status)) for status in LICENSE_STATUSES})


def license_search(licenses: QuerySet, q: str = "", status: str = "") -> QuerySet:
    """`licenses` narrowed to those matching `q` and in `status` (empty: any).

    `q` matches a customer name or email that contains it, or a license ID: up to
    ID_PREFIX_LENGTH characters are the ID's beginning (what the pages show, "Ab12Cd…"), and
    anything longer must be a whole license ID, found by its keyed hash as the proxy finds
    it; a longer string is never cut down to a prefix, so a mistyped ID finds nothing.
    """
    q = (q or "")[:MAX_QUERY_LENGTH].strip().rstrip("…").strip()
    if q:
        matches = Q(customer_name__icontains=q) | Q(customer_email__icontains=q)
        if len(q) <= ID_PREFIX_LENGTH:
            matches |= Q(id_prefix__startswith=q)
        else:
            matches |= Q(lookup_hash=license_lookup_hash(q))
        licenses = licenses.filter(matches)
    if status:
        licenses = licenses.filter(license_status_q(status))
    return licenses


def app_registries(app: App) -> QuerySet:
    """The team's external registries that serve this app (all apps, or this one named)."""
    return app.team.registries.filter(Q(all_apps=True) | Q(apps=app)).distinct()
