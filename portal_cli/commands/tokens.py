"""`portal token`: your personal API tokens in this team (/api/v1/tokens/)."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from portal_cli.client import PortalError, segment
from portal_cli.context import CliError, client, common_options, output_format
from portal_cli.output import Column, emit_json, emit_list, emit_value, when

TOKEN_COLUMNS = [
    Column("ID", "id"),
    Column("NAME", "name"),
    Column("PREFIX", lambda t: f"{t['prefix']}…" if t.get("prefix") else None),
    Column("STATUS", lambda t: "active" if t.get("active") else "revoked" if t.get("revoked_at") else "expired"),
    Column("CREATED", lambda t: when(t.get("created_at"))),
    Column("LAST USED", lambda t: when(t.get("last_used_at")) if t.get("last_used_at") else "never"),
    Column("EXPIRES", lambda t: when(t.get("expires_at")) if t.get("expires_at") else "never"),
]

_DURATION = re.compile(r"(\d+)([hdw])")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def _expiry(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """`30d` (or `12h`, `8w`) as the absolute time the API takes, from this machine's clock."""
    if value is None:
        return None
    match = _DURATION.fullmatch(value.strip().lower())
    if match is None or int(match.group(1)) == 0:
        raise click.BadParameter(f"{value!r} is not a duration; use a number and a unit: 12h, 30d or 8w")
    try:
        delta = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        return (datetime.now(UTC) + delta).isoformat(timespec="seconds")
    except OverflowError:
        raise click.BadParameter(f"{value!r} is too far in the future") from None


@click.group()
@common_options
def token() -> None:
    """Personal API tokens: they act as you, with your role in the team."""


@token.command("create")
@click.argument("name")
@click.option(
    "--expires-in",
    "expires_at",
    metavar="DURATION",
    callback=_expiry,
    help="Refuse the token after this long: 12h, 30d, 8w. Default: never expires.",
)
@common_options
def token_create(name: str, expires_at: str | None) -> None:
    """Create a token; prints only the token, which is never shown again."""
    created = client().post("tokens/", {"name": name, "expires_at": expires_at})
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
