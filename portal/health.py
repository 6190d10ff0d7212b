"""What /healthz checks. The answer to anonymous callers is ok / not ok; the reasons go to the
log and to signed-in team members (/api/v1/health), never to whoever can reach the port."""

from __future__ import annotations

import logging

from django.db import connection

from portal.keys import encryption_keys_problem

logger = logging.getLogger(__name__)


def health_checks() -> dict[str, str | None]:
    """{check: None when it passes, else why not}; every failure is logged at ERROR."""
    checks: dict[str, str | None] = {"database": None, "encryption_keys": None}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as e:  # any database failure means "not healthy"
        checks["database"] = f"unavailable ({type(e).__name__}: {e})"
        checks["encryption_keys"] = "not checked: the database is unavailable"
    else:
        try:
            # Fail closed when a stored ciphertext names a key the ring lacks, or the ring is malformed.
            checks["encryption_keys"] = encryption_keys_problem()
        except Exception as e:  # a half-migrated database, say: report it rather than answer 500
            checks["encryption_keys"] = f"could not be checked ({type(e).__name__}: {e})"
    for name, reason in checks.items():
        if reason:
            # Reasons name key ids, columns and database errors; never a key or a stored value.
            logger.error("Health check %s failed: %s", name, reason)
    return checks
