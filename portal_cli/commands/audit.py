"""`portal audit ls`: the team's audit trail, newest first (/api/v1/audit-events/; admins only)."""

from __future__ import annotations

from typing import Any

import click

from portal_cli.context import client, common_options, output_format
from portal_cli.output import Column, emit_list, text, when


def _summary(event: dict[str, Any]) -> str:
    detail = event.get("detail") or {}
    return "; ".join(f"{key}={text(value)}" for key, value in detail.items()) if isinstance(detail, dict) else ""


AUDIT_COLUMNS = [
    Column("WHEN", lambda e: when(e.get("created_at"))),
    Column("WHO", "actor"),
    Column("ACTION", "action"),
    Column("TARGET", "target"),
    Column("DETAILS", _summary),
    Column("FROM", lambda e: e.get("address") or "portal"),
]


@click.group()
@common_options
def audit() -> None:
    """Who changed what in the team (admins only)."""


@audit.command("ls")
@click.option("--action", default="", help="Exact action, or a prefix ending in a dot: registry.")
@click.option("--actor", default="", help="Who acted: an email, or 'service account NAME'.")
@click.option("--since", default="", help="ISO date or date-time: events at or after it.")
@click.option("--until", default="", help="ISO date (inclusive) or date-time: events before it.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 500), help="At most this many.")
@common_options
def audit_ls(action: str, actor: str, since: str, until: str, limit: int) -> None:
    """List the newest audit events, filtered."""
    params = {"action": action, "actor": actor, "since": since, "until": until, "page_size": limit}
    body = client().get("audit-events/", params={k: v for k, v in params.items() if v != ""})
    emit_list(output_format(), body["results"], AUDIT_COLUMNS, empty="No audit events match.")
