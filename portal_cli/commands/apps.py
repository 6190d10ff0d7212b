"""`portal app`: the team's apps (/api/v1/apps/)."""

from __future__ import annotations

from typing import Any

import click

from portal_cli.client import PortalClient, PortalError, segment
from portal_cli.context import (
    CliError,
    client,
    common_options,
    confirm_or_stop,
    output_format,
    refuse_without_confirmation,
)
from portal_cli.output import Column, emit_json, emit_list, emit_value, text, when

APP_COLUMNS = [
    Column("SLUG", "slug"),
    Column("NAME", "name"),
    Column("CREATED", lambda app: when(app.get("created_at"))),
    Column("CREATED BY", "created_by"),
]


@click.group()
@common_options
def app() -> None:
    """Apps: what you license; the slug appears in image paths (proxy/<slug>/…)."""


@app.command("create")
@click.argument("name")
@click.option("--slug", help="Lowercase DNS label, unique across the portal; defaults from NAME.")
@common_options
def app_create(name: str, slug: str | None) -> None:
    """Create an app; prints its slug (or the app with --output json)."""
    data: dict[str, Any] = {"name": name}
    if slug is not None:
        data["slug"] = slug
    created = client().post("apps/", data)
    emit_value(output_format(), created, created["slug"])


@app.command("ls")
@common_options
def app_ls() -> None:
    """List the team's apps."""
    apps = client().list_all("apps/")
    emit_list(output_format(), apps, APP_COLUMNS, empty="No apps yet; create one with: portal app create NAME")


@app.command("rm")
@click.argument("slug")
@click.option("--yes", "-y", is_flag=True, help="Delete without asking (needed when stdin is not a terminal).")
@common_options
def app_rm(slug: str, yes: bool) -> None:
    """Delete an app and its licenses; asks first unless --yes."""
    fmt = output_format()
    refuse_without_confirmation(yes, f"app “{slug}”")
    api = client()
    found = _get_app(api, slug)
    confirm_or_stop(
        yes,
        f"Delete app “{found['name']}” ({found['slug']}) and its licenses?",
        refused=f"app “{slug}” was not deleted",
    )
    api.delete(f"apps/{segment(found['slug'])}/")
    if fmt == "json":
        emit_json(found)
    else:
        click.echo(f"Deleted app {found['slug']}.")


def _get_app(api: PortalClient, slug: str) -> dict[str, Any]:
    missing = f"no app “{slug}” in your team; see: portal app ls"
    try:
        return api.get(f"apps/{segment(slug)}/")
    except ValueError:
        raise CliError(missing) from None
    except PortalError as e:
        if e.status == 404:
            raise CliError(missing) from None
        raise


# --- repository rules -------------------------------------------------------------------------


@app.group("rules")
@common_options
def rules() -> None:
    """Repositories an app's licenses may pull besides the images of releases promoted to their channel."""


def _rules_path(slug: str) -> str:
    try:
        return f"apps/{segment(slug)}/repository-rules/"
    except ValueError:
        raise CliError(f"no app “{text(slug)}” in your team; see: portal app ls") from None


def _emit_rules(fmt: str, answer: dict[str, Any], slug: str) -> None:
    rules = answer.get("repository_rules") or []
    if fmt == "json":
        emit_json(answer)
    elif rules:
        click.echo("\n".join(text(rule) for rule in rules))
    else:
        click.echo(
            f"No repository rules: licenses of {text(slug)} pull only the images of releases promoted to their channel.",
            err=True,
        )


@rules.command("ls")
@click.argument("slug")
@common_options
def rules_ls(slug: str) -> None:
    """Print the app's repository rules, one per line."""
    fmt = output_format()
    api = client()
    _emit_rules(fmt, _not_found_is_app(slug, lambda: api.get(_rules_path(slug))), slug)


@rules.command("set")
@click.argument("slug")
@click.argument("rule_list", metavar="[RULE]...", nargs=-1)
@common_options
def rules_set(slug: str, rule_list: tuple[str, ...]) -> None:
    """Replace the app's repository rules: host/repo or host/prefix/* (a port as host__port).

    With no RULE the list is cleared.
    """
    fmt = output_format()
    api = client()
    answer = _not_found_is_app(slug, lambda: api.put(_rules_path(slug), {"repository_rules": list(rule_list)}))
    _emit_rules(fmt, answer, slug)


def _not_found_is_app(slug: str, call: Any) -> Any:
    try:
        return call()
    except PortalError as e:
        if e.status == 404:
            raise CliError(f"no app “{text(slug)}” in your team; see: portal app ls") from None
        raise
