"""`portal license`: customer licenses (/api/v1/apps/<slug>/licenses/, /api/v1/licenses/<id>/).

A license is named by its numeric id (as `portal license ls` shows it) or by the license ID
itself; the latter travels in a request body, never in a URL, so it stays out of server logs.
`portal license verify` checks a license file's Ed25519 signature here, offline once it has
the portal's public key (see licenses/licensefile.py on the server for the signed form).
"""

from __future__ import annotations

import os
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import click

from portal_cli.client import PortalClient, PortalError, segment
from portal_cli.context import (
    CliError,
    State,
    client,
    common_options,
    confirm_or_stop,
    output_format,
    refuse_without_confirmation,
)
from portal_cli.licensefile import LicenseFileError, key_id, load_public_key, verify_license_file
from portal_cli.output import Column, emit_json, emit_list, emit_record, emit_value, record, text, when

STATUSES = ("active", "expired", "revoked")
LICENSE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{16,200}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DURATION_RE = re.compile(r"^(\d{1,6})\s*([hdwy])$")
DURATION_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1), "y": timedelta(days=365)}

LICENSE_COLUMNS = [
    Column("ID", "id"),
    Column("APP", "app"),
    Column("CUSTOMER", "customer_name"),
    Column("EMAIL", "customer_email"),
    Column("TYPE", "type"),
    Column("CHANNEL", "channel"),
    Column("STATUS", "status"),
    Column("EXPIRES", lambda lic: when(lic.get("expires_at")) if lic.get("expires_at") else "never"),
    Column("LICENSE", lambda lic: f"{lic['id_prefix']}…" if lic.get("id_prefix") else None),
    Column("CREATED", lambda lic: when(lic.get("created_at"))),
]

LICENSE_FIELDS = [
    Column("id", "id"),
    Column("license ID", "license_id"),
    Column("app", "app"),
    Column("customer", "customer_name"),
    Column("email", "customer_email"),
    Column("type", "type"),
    Column("channel", "channel"),
    Column("status", "status"),
    Column("expires", lambda lic: when(lic.get("expires_at")) if lic.get("expires_at") else "never"),
    Column("revoked", lambda lic: when(lic.get("revoked_at"))),
    Column("created", lambda lic: when(lic.get("created_at"))),
    Column("created by", "created_by"),
    Column("last pull", lambda lic: when(lic.get("last_pull_at")) if lic.get("last_pull_at") else "never"),
]


@click.group("license")
@common_options
def license_group() -> None:
    """Customer licenses: the license ID is the customer's password for docker login (user: LICENSE_ID)."""


# --- create, ls ---------------------------------------------------------------------------


def _expiry(expires: str | None, expires_in: str | None) -> str | None:
    """--expires DATE|TIME or --expires-in DURATION as an ISO 8601 time in UTC."""
    if expires and expires_in:
        raise click.UsageError("give --expires or --expires-in, not both")
    if expires:
        expires = expires.strip()
        try:
            moment = datetime.fromisoformat(expires)
        except ValueError:
            raise click.UsageError(
                f"--expires: give a date like 2027-01-31 or a time like 2027-01-31T12:00:00Z, not “{text(expires)}”"
            ) from None
        if DATE_RE.match(expires):
            return expires  # the portal reads a date as the end of that day (UTC), as its pages do
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if expires_in:
        match = DURATION_RE.match(expires_in.strip().lower())
        if not match:
            raise click.UsageError(f"--expires-in: give a duration like 30d, 12w, 1y or 48h, not “{text(expires_in)}”")
        moment = datetime.now(UTC) + int(match[1]) * DURATION_UNITS[match[2]]
        return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return None


@license_group.command("create")
@click.option("--app", "app_slug", required=True, metavar="SLUG", help="The app the license is for.")
@click.option("--customer", required=True, metavar="NAME", help="The customer's name.")
@click.option("--email", metavar="EMAIL", help="The customer's contact email.")
@click.option("--type", "license_type", metavar="TYPE", help="dev, trial, paid (default) or community.")
@click.option(
    "--expires", metavar="DATE", help="Expiry: 2027-01-31 (works through that day, UTC) or 2027-01-31T12:00:00Z."
)
@click.option("--expires-in", metavar="DURATION", help="Expiry from now: 48h, 30d, 12w or 1y.")
@click.option("--channel", metavar="CHANNEL", help="The app's channel the license follows (default stable).")
@common_options
def license_create(
    app_slug: str,
    customer: str,
    email: str | None,
    license_type: str | None,
    expires: str | None,
    expires_in: str | None,
    channel: str | None,
) -> None:
    """Create a license; prints its license ID (or the license with --output json). Default: never expires."""
    fmt = output_format()
    data: dict[str, Any] = {"customer_name": customer}
    if email is not None:
        data["customer_email"] = email
    if license_type is not None:
        data["type"] = license_type
    expires_at = _expiry(expires, expires_in)
    if expires_at:
        data["expires_at"] = expires_at
    if channel is not None:
        data["channel"] = channel
    api = client()
    created = _in_app(app_slug, lambda slug: api.post(f"apps/{slug}/licenses/", data))
    emit_value(fmt, created, created["license_id"])


@license_group.command("ls")
@click.option("--app", "app_slug", metavar="SLUG", help="Only this app's licenses (default: every app's).")
@click.option("--status", type=click.Choice(STATUSES), help="Only licenses in this state.")
@click.option(
    "--search", metavar="TEXT", help="Customer name or email contains TEXT, or the license ID starts with it."
)
@common_options
def license_ls(app_slug: str | None, status: str | None, search: str | None) -> None:
    """List licenses (never their license IDs; see: portal license show ID)."""
    fmt = output_format()
    api = client()
    params = {key: value for key, value in (("status", status), ("search", search)) if value}
    if app_slug:
        rows = _in_app(app_slug, lambda slug: api.list_all(f"apps/{slug}/licenses/", params=params))
    else:
        rows = api.list_all("licenses/", params=params)
    if params:
        empty = "No licenses match."
    else:
        empty = "No licenses yet; create one with: portal license create --app SLUG --customer NAME"
    emit_list(fmt, rows, LICENSE_COLUMNS, empty=empty)


def _in_app(app_slug: str, call: Any) -> Any:
    """Calls `call(escaped slug)`; an unknown or foreign app is one clear error."""
    missing = f"no app “{text(app_slug)}” in your team; see: portal app ls"
    try:
        slug = segment(app_slug)
    except ValueError:
        raise CliError(missing) from None
    try:
        return call(slug)
    except PortalError as e:
        if e.status == 404:
            raise CliError(missing) from None
        raise


# --- one license: show, revoke, unrevoke, file ----------------------------------------------


def _label(ref: str) -> str:
    """How a license the user named appears in messages, without echoing a whole license ID."""
    return f"license {ref}" if ref.isdigit() else f"license {text(ref[:6])}…"


def _get_license(api: PortalClient, ref: str) -> dict[str, Any]:
    """The license with numeric id `ref`, or with license ID `ref`, in the caller's team."""
    ref = ref.strip()
    missing = f"no {_label(ref)} in your team; see: portal license ls"
    try:
        if ref.isdigit():
            return api.get(f"licenses/{segment(ref)}/")
        if not LICENSE_ID_RE.match(ref):
            raise CliError(missing)
        return api.post("licenses/lookup/", {"license_id": ref})
    except PortalError as e:
        if e.status == 404:
            raise CliError(missing) from None
        raise


def _describe(lic: dict[str, Any]) -> str:
    return f"license {lic['id']} ({text(lic.get('customer_name'))}, app {text(lic.get('app'))})"


@license_group.command("show")
@click.argument("ref", metavar="ID")
@common_options
def license_show(ref: str) -> None:
    """Show a license, with its license ID. ID: the numeric id from `ls`, or the license ID."""
    fmt = output_format()
    emit_record(fmt, _get_license(client(), ref), LICENSE_FIELDS)


@license_group.command("revoke")
@click.argument("ref", metavar="ID")
@click.option("--yes", "-y", is_flag=True, help="Revoke without asking (needed when stdin is not a terminal).")
@common_options
def license_revoke(ref: str, yes: bool) -> None:
    """Revoke a license: the customer's pulls fail within seconds. Asks first unless --yes."""
    fmt = output_format()
    refuse_without_confirmation(yes, _label(ref), doing="revoking")
    api = client()
    found = _get_license(api, ref)
    confirm_or_stop(
        yes,
        f"Revoke the license of “{text(found['customer_name'])}” for app {text(found['app'])}? "
        "Their pulls stop within seconds.",
        refused=f"{_describe(found)} was not revoked",
    )
    already = found.get("status") == "revoked"
    revoked = api.post(f"licenses/{segment(found['id'])}/revoke/", {})
    if fmt == "json":
        emit_json(revoked)
    elif already:
        click.echo(f"{_describe(revoked)} was already revoked.")
    else:
        click.echo(f"Revoked {_describe(revoked)}; its pulls stop within seconds.")


@license_group.command("unrevoke")
@click.argument("ref", metavar="ID")
@common_options
def license_unrevoke(ref: str) -> None:
    """Restore a revoked license."""
    fmt = output_format()
    api = client()
    found = _get_license(api, ref)
    restored = api.post(f"licenses/{segment(found['id'])}/unrevoke/", {})
    if fmt == "json":
        emit_json(restored)
    else:
        click.echo(f"Restored {_describe(restored)}; status: {text(restored.get('status'))}.")
    if restored.get("status") == "expired":
        click.echo(
            f"warning: it expired on {when(restored.get('expires_at'))}; it stays unusable until its expiry is extended",
            err=True,
        )


def _set_format(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(State).output = value


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(State).debug = True


@license_group.command("file")
@click.argument("ref", metavar="ID")
@click.option("-o", "--file", "path", metavar="FILE", help="Write the license file to FILE (default: stdout).")
@click.option(
    "--output",
    type=click.Choice(("table", "json")),
    expose_value=False,
    callback=_set_format,
    help="table (default: the YAML itself) or json; here -o means --file.",
)
@click.option("--debug", is_flag=True, expose_value=False, callback=_set_debug, help="Print HTTP traffic to stderr.")
def license_file(ref: str, path: str | None) -> None:
    """Download the signed license file (YAML) to hand the customer; it holds the license ID."""
    fmt = output_format()
    if path in ("json", "table"):
        raise click.UsageError(f"-o names the file to write; for {path} output use --output {path}")
    api = client()
    found = _get_license(api, ref)
    content = api.get_text(f"licenses/{segment(found['id'])}/license-file")
    name = f"{found['app']}-{found['id_prefix']}.license.yaml"
    if path and path != "-":
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds a credential
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(content)
        except OSError as e:
            raise CliError(f"cannot write {path}: {e.strerror}") from None
        if fmt == "json":
            emit_json({"id": found["id"], "file": path, "file_name": name})
        else:
            click.echo(f"Wrote the license file for {_describe(found)} to {path}.")
    elif fmt == "json":
        emit_json({"id": found["id"], "file_name": name, "content": content})
    else:
        click.echo(content, nl=False)


@license_group.command("pull-secret")
@click.argument("ref", metavar="ID")
@click.option("--namespace", metavar="NS", help="Kubernetes namespace for the Secret (default: none in the YAML).")
@common_options
def license_pull_secret(ref: str, namespace: str | None) -> None:
    """Print the customer's Kubernetes image pull secret (YAML) for the proxy and the private registry.

    A kubernetes.io/dockerconfigjson Secret named <app>-registry; it holds the license ID.
    """
    fmt = output_format()
    api = client()
    found = _get_license(api, ref)
    path = f"licenses/{segment(found['id'])}/pull-secret"
    if namespace is not None:
        path += "?" + urlencode({"namespace": namespace})
    content = api.get_text(path)
    if fmt == "json":
        emit_json({"id": found["id"], "name": f"{found['app']}-registry", "namespace": namespace, "content": content})
    else:
        click.echo(content, nl=False)


@license_group.command("install-kit")
@click.argument("ref", metavar="ID")
@click.option("--out", "path", required=True, metavar="FILE", help="Write the kit (.tar.gz) to FILE.")
@click.option("--sequence", type=click.IntRange(min=1), metavar="N", help="An earlier release of the channel.")
@click.option("--secret-name", metavar="NAME", help="The pull secret's name (default: <app>-registry).")
@common_options
def license_install_kit(ref: str, path: str, sequence: int | None, secret_name: str | None) -> None:
    """Download the license's install kit: what its customer applies with `kubectl apply -k .`.

    The current release of the license's channel (or --sequence N), its manifests, a
    kustomization.yaml sending private images through the proxy, and the pull secret; it
    holds the license ID, so the file is written readable by you only.
    """
    fmt = output_format()
    api = client()
    found = _get_license(api, ref)
    params = {key: value for key, value in (("sequence", sequence), ("secret_name", secret_name)) if value}
    url = f"licenses/{segment(found['id'])}/install-kit.tar.gz"
    content = api.get_bytes(url + ("?" + urlencode(params) if params else ""))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds a credential
        with os.fdopen(fd, "wb") as f:
            f.write(content)
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror}") from None
    if fmt == "json":
        emit_json({"id": found["id"], "file": path, "bytes": len(content)})
    else:
        click.echo(f"Wrote the install kit for {_describe(found)} to {path} ({len(content)} bytes).")


# --- verify ---------------------------------------------------------------------------------

# One implementation of the format, shared with the server (portal_cli/licensefile.py).
InvalidLicenseFile = LicenseFileError
_key_id = key_id
_public_key = load_public_key
verify_license_text = verify_license_file


def _read(path: str, what: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise CliError(f"cannot read {what} {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise CliError(f"{what} {path} is not UTF-8 text") from None


def _nested(spec: dict[str, Any], key: str, field: str) -> Any:
    value = spec.get(key)
    return value.get(field) if isinstance(value, dict) else None


VERIFIED_FIELDS = [
    Column("valid", lambda s: "yes: signed by the portal's key"),
    Column("license", lambda s: f"{text(s.get('licenseId'))[:6]}…" if s.get("licenseId") else None),
    Column("app", lambda s: f"{text(_nested(s, 'app', 'slug'))} ({text(_nested(s, 'app', 'name'))})"),
    Column("customer", lambda s: _nested(s, "customer", "name")),
    Column("email", lambda s: _nested(s, "customer", "email")),
    Column("type", "type"),
    Column("issued", lambda s: when(s.get("issuedAt"))),
    Column("expires", lambda s: when(s.get("expiresAt")) if s.get("expiresAt") else "never"),
    Column("proxy host", "proxyHost"),
    Column("registry host", "registryHost"),
]


@license_group.command("verify")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--public-key",
    "key_path",
    metavar="PEM-FILE",
    type=click.Path(dir_okay=False),
    help="The portal's public key; default: fetched from PORTAL_URL (no token needed).",
)
@common_options
def license_verify(path: str, key_path: str | None) -> None:
    """Check a license file's signature: exit 0 when valid, 1 (with the reason) when not.

    It says whether the portal issued the file unchanged; whether the license is revoked
    only the portal knows (see: portal license show ID).
    """
    fmt = output_format()
    content = _read(path, "license file")
    pem = _read(key_path, "public key") if key_path else client(anonymous=True).get_text("license-signing-key")
    try:
        public_key = _public_key(pem)
        spec = verify_license_text(content, public_key)
    except InvalidLicenseFile as e:
        if fmt == "json":
            emit_json({"valid": False, "reason": str(e)})
        raise CliError(f"invalid license file: {text(str(e))}") from None
    if fmt == "json":
        emit_json({"valid": True, "key_id": _key_id(public_key), "license": spec})
    else:
        click.echo(record(spec, VERIFIED_FIELDS))
    expires = spec.get("expiresAt")
    if isinstance(expires, str):
        try:
            expired = datetime.fromisoformat(expires) <= datetime.now(UTC)
        except ValueError:
            expired = False
        if expired:
            click.echo(f"warning: the license expired on {when(expires)}", err=True)
