"""Reading the audit trail: one team's events, filtered, newest first (pages and API share it)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from accounts.models import AuditEvent, Team


def _moment(field: str, value: str, *, end_of_day: bool) -> datetime:
    """An ISO date or date-time; a bare date means the day's start (or, for `until`, the next day's)."""
    try:
        moment = parse_datetime(value)
        day = None if moment else parse_date(value)
    except ValueError:
        moment = day = None
    if moment is None and day is None:
        raise ValidationError({field: f"“{value}” is not an ISO date (2026-11-30) or date-time (2026-11-30T08:00Z)."})
    if moment is None:
        moment = datetime.combine(day + timedelta(days=1) if end_of_day else day, time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def audit_events(
    team: Team, *, action: str = "", actor: str = "", since: str = "", until: str = ""
) -> QuerySet[AuditEvent]:
    """`action` ending in a dot is a prefix (`registry.`), else exact; `actor` is the label as shown."""
    events = AuditEvent.objects.filter(team=team)
    action, actor, since, until = (v.strip() for v in (action, actor, since, until))
    if action:
        events = events.filter(action__startswith=action) if action.endswith(".") else events.filter(action=action)
    if actor:
        events = events.filter(actor__iexact=actor)
    if since:
        events = events.filter(created_at__gte=_moment("since", since, end_of_day=False))
    if until:
        events = events.filter(created_at__lt=_moment("until", until, end_of_day=True))
    return events.order_by("-created_at", "-pk")
