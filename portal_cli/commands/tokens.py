"""`portal token`: your personal API tokens in this team (/api/v1/tokens/)."""

from __future__ import annotations

import sys
from typing import Any

import click

from portal_cli.client import PortalError, segment
from portal_cli.context import CliError, client, common_options, output_format
from portal_cli.output import Column, emit_json, emit_list, emit_value, when

TOKEN_COLUMNS = [
    Column("ID", "id"),
    Column("NAME", "name"),
    Column("PREFIX", lambda t: f"{t['prefix']}…" if t.get("prefix") else None),
    Column("STATUS", lambda t: "active" if t.get("active") else "revoked"),
    Column("CREATED", lambda t: when(t.get("created_at"))),
    Column("LAST USED", lambda t: when(t.get("last_used_at")) if t.get("last_used_at") else "never"),
]


@click.group()
@common_options
def token() -> None:
    """Personal API tokens: they act as you, with your role in the team."""


@token.command("create")
@click.argument("name")
@common_options
def token_create(name: str) -> None:
    """Create a token; prints only the token, which is never shown again."""
    created = client().post("tokens/", {"name": name})
    emit_value(output_format(), created, created["token"])
    if sys.stderr.isatty():
        click.echo("Store this token now; the portal keeps only its hash.", err=True)


@token.command("ls")
@common_options
def token_ls() -> None:
    """List your tokens in this team, active and revoked."""
    tokens = client().list_all("tokens/")
    emit_list(output_format(), tokens, TOKEN_COLUMNS, empty="No tokens yet; create one with: portal token create NAME")


@token.command("revoke")
@click.argument("token_id", metavar="ID", type=click.IntRange(min=1))
@common_options
def token_revoke(token_id: int) -> None:
    """Revoke a token by its ID (see: portal token ls); it is refused from the next request on."""
    fmt = output_format()
    api = client()
    path = f"tokens/{segment(token_id)}/"
    try:
        before: dict[str, Any] = api.get(path)
    except PortalError as e:
        if e.status == 404:
            raise CliError(f"no token with ID {token_id} among yours; see: portal token ls") from None
        raise
    api.delete(path)
    try:
        after = api.get(path)
    except PortalError as e:
        if e.status != 401:  # 401: the token just revoked was the one in use
            raise
        after = {**before, "active": False}
    if fmt == "json":
        emit_json(after)
    else:
        click.echo(f"Revoked token {token_id} ({before['name']}).")
