"""Words for test outcomes on the Images pages."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from portal import ocispec
from registries import steps

register = template.Library()

# What each failure category means, in the vendor's terms.
FAILURES = {
    "dns": "the registry's host name does not resolve",
    "connect": "could not connect to the registry",
    "timeout": "the registry did not answer in time",
    "tls": "the TLS handshake failed (certificate or protocol)",
    "unauthorized": "the registry rejected the credentials",
    "forbidden": "the credentials were accepted but have no access to this repository",
    "repository_unknown": "no such repository (or these credentials cannot see it)",
    "manifest_unknown": "the repository exists, but not this tag or digest",
    "blob_unknown": "a layer of the image is missing from the registry",
    "rate_limited": "the registry is rate limiting these requests",
    "upstream_error": "the registry had an internal error (5xx)",
    "blocked": "the portal may not connect to that address",
    "realm_not_allowed": "the registry's token service is on a host the portal will not send credentials to",
    "invalid_response": "the registry's answer was not a valid registry response",
    "insecure_not_allowed": "plain HTTP is not allowed here",
    "credential_corrupt": "the stored credentials cannot be decrypted; enter them again",
    "queue_unavailable": "the task queue was unavailable",
}


@register.filter
def failure_text(category: str) -> str:
    return FAILURES.get(category, "the test failed")


@register.filter
def step_label(name: str) -> str:
    return steps.step_label(name)


@register.filter
def status_class(status: str) -> str:
    return {"succeeded": "ok", "failed": "bad", "healthy": "ok", "unhealthy": "bad"}.get(status, "pending")


@register.filter
def test_class(test) -> str:
    """A test's badge: a finding about the image is a warning, not a broken registry."""
    return "warn" if test.image_finding else status_class(test.status)


@register.filter
def is_past(moment: datetime | None) -> bool:
    return moment is not None and moment <= timezone.now()


@register.filter
def ago(moment: datetime | None) -> str:
    """'just now', '5 minutes ago', '2 days, 3 hours ago'."""
    if moment is None:
        return ""
    if timezone.now() - moment < timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment)} ago"


@register.filter
def window(seconds: int | None) -> str:
    """A rate-limit window in words: 21600 → '6 hours', 60 → 'minute', 90 → '90 seconds'."""
    if not seconds:
        return ""
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds} seconds"


@register.filter
def manifest_kind(media_type: str) -> str:
    """A manifest media type in a few words (multi-platform or one image)."""
    return ocispec.MEDIA_TYPE_LABELS.get(media_type, media_type or "unknown")
