"""`portal whoami`: who the token acts as, in which team, with which role (/api/v1/team/)."""

from __future__ import annotations

import click

from portal_cli.context import client, common_options, output_format
from portal_cli.output import Column, emit_record


@click.command()
@common_options
def whoami() -> None:
    """Show the team, your role and who the token acts as."""
    api = client()
    team = api.get("team/")
    fields = [
        Column("team", lambda t: f"{t['name']} ({t['slug']})"),
        Column("role", "role"),
        Column("acting as", "acting_as"),
        Column("portal", lambda t: api.base_url),
    ]
    emit_record(output_format(), team, fields)
