"""The figures the dashboard, the analytics page, its CSV and the API all show: read here once.

A *pull* is a manifest request the proxy answered (a client pulling an image asks for its
manifest first, then the blobs it lacks); *bytes* are everything the proxy sent (egress);
a *refusal* is any request the proxy refused, with the reason the pull log keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.urls import reverse
from django.utils import timezone

from accounts.models import Team
from delivery.models import CachedObject
from licenses.models import App, License, PullEvent

PERIODS = (7, 30, 90)
DEFAULT_DAYS = 30
EXPIRING_DAYS = 30
_PULL = Q(kind="manifest", status__lt=400)
_REFUSED = Q(status__gte=400)


@dataclass(frozen=True)
class Scope:
    """Whose pulls: a team's, one app's, or one license's, over the last `days` days."""

    team: Team
    days: int = DEFAULT_DAYS
    app: App | None = None
    license: License | None = None

    @property
    def first_day(self) -> date:
        return timezone.localdate() - timedelta(days=self.days - 1)

    @property
    def since(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.first_day, time.min))

    def events(self) -> QuerySet[PullEvent]:
        events = PullEvent.objects.filter(app__team=self.team, created_at__gte=self.since)
        if self.app is not None:
            events = events.filter(app=self.app)
        if self.license is not None:
            events = events.filter(license=self.license)
        return events


@dataclass(frozen=True)
class Day:
    day: date
    pulls: int = 0
    bytes: int = 0
    refused: int = 0


@dataclass(frozen=True)
class Customer:
    license_id: int
    customer: str
    id_prefix: str
    app: str
    pulls: int
    bytes: int


@dataclass(frozen=True)
class Totals:
    pulls: int = 0
    bytes: int = 0
    refused: int = 0


@dataclass
class PullFigures:
    scope: Scope
    days: list[Day]
    customers: list[Customer]
    refusals: list[tuple[str, int]]
    totals: Totals = field(default_factory=Totals)


def _sums():
    return {
        "pulls": Count("pk", filter=_PULL),
        "bytes": Coalesce(Sum("bytes"), 0),
        "refused": Count("pk", filter=_REFUSED),
    }


def pulls_by_day(scope: Scope) -> list[Day]:
    """One entry per day of the period, days without traffic included (a chart has no gaps)."""
    rows = scope.events().annotate(day=TruncDate("created_at")).values("day").annotate(**_sums())
    found = {row["day"]: Day(row["day"], row["pulls"], row["bytes"], row["refused"]) for row in rows}
    return [found.get(day, Day(day)) for day in (scope.first_day + timedelta(days=n) for n in range(scope.days))]


def top_customers(scope: Scope, limit: int = 10) -> list[Customer]:
    """The licenses that pulled the most bytes (egress) in the period."""
    rows = (
        scope.events()
        .values("license_id", "license__customer_name", "license__id_prefix", "app__slug")
        .annotate(pulls=Count("pk", filter=_PULL), bytes=Coalesce(Sum("bytes"), 0))
        .order_by("-bytes", "-pulls", "license_id")[:limit]
    )
    return [
        Customer(
            r["license_id"],
            r["license__customer_name"],
            r["license__id_prefix"],
            r["app__slug"],
            r["pulls"],
            r["bytes"],
        )
        for r in rows
    ]


def refusals_by_reason(scope: Scope) -> list[tuple[str, int]]:
    rows = scope.events().filter(_REFUSED).values("reason").annotate(n=Count("pk")).order_by("-n", "reason")
    return [(row["reason"] or "refused", row["n"]) for row in rows]


def pull_figures(scope: Scope) -> PullFigures:
    days = pulls_by_day(scope)
    totals = Totals(sum(d.pulls for d in days), sum(d.bytes for d in days), sum(d.refused for d in days))
    return PullFigures(scope, days, top_customers(scope), refusals_by_reason(scope), totals)


# --- the dashboard ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LicenseCounts:
    active: int
    expiring: int  # active, and ending within EXPIRING_DAYS
    revoked: int
    expired: int


def license_counts(team: Team) -> LicenseCounts:
    now = timezone.now()
    soon = now + timedelta(days=EXPIRING_DAYS)
    active = Q(revoked_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    counts = License.objects.filter(app__team=team).aggregate(
        active=Count("pk", filter=active),
        expiring=Count("pk", filter=active & Q(expires_at__lte=soon)),
        revoked=Count("pk", filter=Q(revoked_at__isnull=False)),
        expired=Count("pk", filter=Q(revoked_at__isnull=True, expires_at__lte=now)),
    )
    return LicenseCounts(**counts)


def expiring_licenses(team: Team, limit: int = 5) -> list[License]:
    now = timezone.now()
    return list(
        License.objects.filter(
            app__team=team,
            revoked_at__isnull=True,
            expires_at__gt=now,
            expires_at__lte=now + timedelta(days=EXPIRING_DAYS),
        )
        .select_related("app")
        .order_by("expires_at")[:limit]
    )


def failed_pulls(team: Team, limit: int = 8) -> list[PullEvent]:
    """The latest refused or failed requests, with their reasons."""
    return list(
        PullEvent.objects.filter(app__team=team, status__gte=400)
        .select_related("license", "app")
        .order_by("-created_at", "-pk")[:limit]
    )


@dataclass(frozen=True)
class NextStep:
    title: str
    text: str
    url_name: str
    url_args: tuple = ()

    @property
    def url(self) -> str:
        return reverse(self.url_name, args=self.url_args)


def next_steps(team: Team, *, registries: int, apps: list[App], licenses: int, releases: int) -> list[NextStep]:
    """What a new team does next, in order; empty once it has done each once."""
    steps = []
    if not registries:
        steps.append(
            NextStep(
                "Connect a registry",
                "The registry your images live in, with a read-only credential.",
                "registries:image-list",
            )
        )
    if not apps:
        steps.append(
            NextStep(
                "Create an app", "An app groups your releases and your customers' licenses.", "licenses:app-create"
            )
        )
    elif not releases:
        steps.append(
            NextStep(
                "Upload a release",
                "Its images list says which images customers may pull.",
                "licenses:release-create",
                (apps[0].slug,),
            )
        )
    if apps and not licenses:
        steps.append(
            NextStep(
                "Issue a license",
                "A customer pulls with its license ID; revoke it any time.",
                "licenses:license-create",
            )
        )
    return steps


@dataclass(frozen=True)
class CacheFigures:
    """What the proxy's cache holds for one team (delivery/proxy/cache.py)."""

    enabled: bool
    objects: int
    bytes: int
    budget: int  # PROXY_CACHE_MAX_BYTES, for every team together
    served_stale: int  # answers given from the cache while the upstream failed, within `days`
    days: int = DEFAULT_DAYS


def cache_figures(team: Team, days: int = DEFAULT_DAYS) -> CacheFigures:
    held = CachedObject.objects.filter(team=team).aggregate(objects=Count("pk"), bytes=Coalesce(Sum("size"), 0))
    stale = PullEvent.objects.filter(
        app__team=team, status__lt=400, reason__startswith="served from the cache",
        created_at__gte=timezone.now() - timedelta(days=days),
    ).count()  # fmt: skip
    budget = settings.PROXY_CACHE_MAX_BYTES
    return CacheFigures(budget > 0, held["objects"], held["bytes"], budget, stale, days)
