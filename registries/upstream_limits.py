"""The pull limit an upstream states in its answers (Docker Hub's `ratelimit-limit` and
`ratelimit-remaining` headers), kept on its registry's row: seen by a connection test
(services.registry_test_run) or by the proxy (its pull log's writer, once per pass)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q

from registries.clients.oci import RateLimit
from registries.models import ExternalRegistry


def registry_rate_limit_record(*, registry_id: int, rate_limit: RateLimit, seen_at: datetime) -> None:
    """Keep what the upstream stated at `seen_at`. A sighting older than the one kept (another
    process's, written later) changes nothing. No audit entry: it is what the registry said,
    nobody's change; and no save(), so `updated_at` (the proxy's login cache key) stays."""
    ExternalRegistry.objects.filter(pk=registry_id).filter(
        Q(rate_limit_seen_at__isnull=True) | Q(rate_limit_seen_at__lte=seen_at)
    ).update(
        rate_limit_limit=rate_limit.limit,
        rate_limit_remaining=rate_limit.remaining,
        rate_limit_window=rate_limit.window_seconds,
        rate_limit_seen_at=seen_at,
    )
