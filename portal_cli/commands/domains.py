"""`portal domain`: the team's custom domains (/api/v1/custom-domains/): add one and print the
DNS records to create, verify it, list, choose the default, remove."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from portal_cli.client import PortalError, segment
from portal_cli.context import (
    CliError,
    client,
    common_options,
    confirm_or_stop,
    output_format,
    refuse_without_confirmation,
)
from portal_cli.output import Column, emit_json, emit_list, table, text, when

T = TypeVar("T")

DOMAIN_COLUMNS = [
    Column("DOMAIN", "domain"),
    Column("KIND", "kind"),
    Column("STATUS", "status"),
    Column("DEFAULT", lambda d: "default" if d.get("is_default") else ""),
    Column("CHECKED", lambda d: when(d.get("checked_at")) if d.get("checked_at") else "never"),
    Column("LAST CHECK", lambda d: d.get("check_error") or ("TXT record found" if d.get("checked_at") else "")),
]
RECORD_COLUMNS = [Column("TYPE", "type"), Column("NAME", "name"), Column("VALUE", "value")]


def _path(domain: str, action: str = "") -> str:
    """The API path of DOMAIN; an international name goes as its A-labels (the server's form)."""
    name = domain.strip().rstrip(".").lower()
    try:
        name = name.encode("idna").decode("ascii") if not name.isascii() else name
        return f"custom-domains/{segment(name)}/{action}"
    except (UnicodeError, ValueError):
        raise CliError(f"“{text(domain)}” is not a host name like proxy.vendor.com", exit_code=2) from None


def _found(domain: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except PortalError as e:
        if e.status == 404:
            raise CliError(f"no custom domain “{text(domain)}” in your team; see: portal domain ls") from None
        raise


@click.group()
@common_options
def domain() -> None:
    """Custom domains: hosts of yours that customers use instead of the portal's. Admins only
    change them; each is proven by a TXT record and re-checked daily."""


@domain.command("add")
@click.argument("name", metavar="DOMAIN")
@click.option("--kind", required=True, type=click.Choice(["proxy", "registry"]), help="What customers reach on it.")
@common_options
def domain_add(name: str, kind: str) -> None:
    """Add DOMAIN and print the two DNS records to create before `portal domain verify DOMAIN`."""
    added = client().post("custom-domains/", {"domain": name, "kind": kind})
    if output_format() == "json":
        emit_json(added)
        return
    click.echo(table(added.get("records") or [], RECORD_COLUMNS))
    click.echo(
        f"Added {text(added['domain'])} ({text(added['kind'])}, {text(added['status'])}). Create these records "
        f"at your DNS provider, then run: portal domain verify {text(added['domain'])}",
        err=True,
    )


@domain.command("verify")
@click.argument("name", metavar="DOMAIN")
@common_options
def domain_verify(name: str) -> None:
    """Look DOMAIN's TXT record up now; exit 0 when it is verified, 1 otherwise (with what was found)."""
    api = client()
    row: dict[str, Any] = _found(name, lambda: api.post(_path(name, "verify/"), {}))
    if output_format() == "json":
        emit_json(row)
    else:
        click.echo(f"{text(row['domain'])}: {text(row['status'])}")
    problem = row.get("check_error")
    if row.get("status") != "verified":
        records = "" if problem and "did not answer" in problem else "; see its records: portal domain ls -o json"
        raise CliError(f"{row['domain']} is {row['status']}: {problem or 'not verified'}{records}")
    if problem:
        raise CliError(f"{row['domain']} stays verified, but it could not be checked now: {problem}")


@domain.command("ls")
@common_options
def domain_ls() -> None:
    """List the team's custom domains with their status (pending, verified, lost)."""
    rows = client().list_all("custom-domains/")
    empty = "No custom domains yet; add one with: portal domain add DOMAIN --kind proxy"
    emit_list(output_format(), rows, DOMAIN_COLUMNS, empty=empty)


@domain.command("default")
@click.argument("name", metavar="DOMAIN")
@common_options
def domain_default(name: str) -> None:
    """Show verified DOMAIN to customers for its kind (instead of the portal's host or the old default)."""
    api = client()
    row: dict[str, Any] = _found(name, lambda: api.post(_path(name, "default/"), {}))
    if output_format() == "json":
        emit_json(row)
    else:
        click.echo(f"Customers are now shown {text(row['domain'])} for the {text(row['kind'])}.")


@domain.command("rm")
@click.argument("name", metavar="DOMAIN")
@click.option("--yes", "-y", is_flag=True, help="Remove without asking (needed when stdin is not a terminal).")
@common_options
def domain_rm(name: str, yes: bool) -> None:
    """Remove DOMAIN: the portal stops answering on it at once; asks first unless --yes."""
    fmt = output_format()
    refuse_without_confirmation(yes, f"custom domain “{name}”", doing="removing")
    api = client()
    path = _path(name)
    row: dict[str, Any] = _found(name, lambda: api.get(path))
    default = " Customers are shown the portal's own host again." if row.get("is_default") else ""
    confirm_or_stop(
        yes,
        f"Remove {text(row['domain'])} ({text(row['kind'])}, {text(row['status'])})?{default}",
        refused=f"{row['domain']} was not removed",
    )
    api.delete(path)
    if fmt == "json":
        emit_json(row)
    else:
        click.echo(f"Removed {text(row['domain'])}.")
    if sys.stderr.isatty() and row.get("is_default"):
        click.echo("Pull secrets and license files customers already have keep naming it.", err=True)
