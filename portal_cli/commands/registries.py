"""`portal registry`: the team's external registries (/api/v1/external-registries/) and their tests.

Secrets come only from stdin (`--password-stdin`, …) or a file, never from argv.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from portal_cli.client import PortalClient, PortalError, redact_text, segment
from portal_cli.context import (
    CliError,
    client,
    common_options,
    confirm_or_stop,
    output_format,
    refuse_without_confirmation,
)
from portal_cli.output import Column, emit_json, emit_list, emit_value, record, table, text, when
from portal_cli.secret_input import read_secret_file, read_stdin_secret

F = Callable[..., Any]


def _health(r: dict[str, Any]) -> str:
    """The credentials' health as the pages say it ("Untested since the credentials changed")."""
    return r.get("health_label") or r.get("health") or ""


def _image_result(r: dict[str, Any]) -> str | None:
    """What the last test found about its image, apart from the registry's health."""
    last = r.get("last_image_result")
    if not last:
        return None
    if last.get("status") == "succeeded":
        return f"{last.get('image')}: pulled"
    what = "image finding" if last.get("image_finding") else "failed"
    return f"{last.get('image')}: {what}, {last.get('message') or last.get('category')}"


REGISTRY_COLUMNS = [
    Column("NAME", "name"),
    Column("PROVIDER", "provider"),
    Column("ENDPOINT", "endpoint"),
    Column("USERNAME", "username"),
    Column("APPS", lambda r: "all" if r.get("all_apps") else r.get("apps")),
    Column("HEALTH", _health),
    Column("CHECKED", lambda r: when(r.get("last_checked_at")) if r.get("last_checked_at") else "never"),
    Column("LAST IMAGE TEST", _image_result),
]

REGISTRY_FACTS = [
    Column("name", "name"),
    Column("provider", "provider"),
    Column("endpoint", "endpoint"),
    Column("username", "username"),
    Column("apps", lambda r: "all" if r.get("all_apps") else r.get("apps")),
    Column("secret", lambda r: "set" if r.get("has_secret") else "not set"),
    Column("health", _health),
    Column("health reason", "health_reason"),
    Column("checked", lambda r: when(r.get("last_checked_at")) if r.get("last_checked_at") else "never"),
    Column("last image test", _image_result),
    Column("last good image", "last_good_image"),
]

STEP_COLUMNS = [
    Column("STEP", lambda s: s.get("label") or s.get("name")),
    Column("OUTCOME", "outcome"),
    Column("LATENCY", lambda s: f"{s['latency_ms']} ms" if s.get("latency_ms") is not None else None),
    Column("DETAIL", lambda s: s.get("category") if s.get("outcome") == "failed" else s.get("detail")),
]

DOCKERHUB_ALIASES = ("docker.io", "registry-1.docker.io", "registry.hub.docker.com")
POLL_FIRST, POLL_MAX = 0.25, 2.0


@click.group()
@common_options
def registry() -> None:
    """External registries your images live in; the portal pulls from them for your customers."""


# --- add ----------------------------------------------------------------------------------


@registry.group("add")
@common_options
def registry_add() -> None:
    """Connect a registry. Credentials are checked upstream before saving, unless --skip-validation.

    Secrets are read from stdin (or a hidden prompt on a terminal), never from options:

    \b
      printf '%s' "$PASSWORD" | portal registry add other \\
        --endpoint registry.example.com --username me --password-stdin
    """


def _add_options(f: F) -> F:
    """The options every provider takes."""
    f = common_options(f)
    f = click.option(
        "--skip-validation", is_flag=True, help="Save without logging in upstream (check later with: registry test)."
    )(f)
    f = click.option(
        "--realm-host", help="A token realm host you trust besides the registry's own (e.g. auth.example.com)."
    )(f)
    f = click.option(
        "--app", "apps", multiple=True, metavar="SLUG", help="Serve only this app (repeatable); default: all your apps."
    )(f)
    f = click.option("--name", help="Lowercase name, unique in your team; defaults from the endpoint.")(f)
    return f


def _username(help_text: str = "The registry user name.") -> Callable[[F], F]:
    return click.option("--username", "-u", required=True, help=help_text)


def _password_stdin(f: F) -> F:
    return click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")(f)


def _token_stdin(f: F) -> F:
    return click.option("--token-stdin", is_flag=True, help="Read an access token from stdin.")(f)


def _key_file(required: bool) -> Callable[[F], F]:
    return click.option(
        "--service-account-key-file",
        "key_file",
        required=required,
        type=click.Path(dir_okay=False, allow_dash=True),
        help="The service account's JSON key file (- for stdin).",
    )


@dataclass(frozen=True)
class Secret:
    """Where a registry secret comes from: stdin (or a hidden prompt), or a file when `path` is set."""

    field: str  # the API's field
    option: str
    what: str
    path: str | None = None

    def read(self) -> str:
        if self.path is not None:
            return read_secret_file(self.path, self.option, what=self.what)
        return read_stdin_secret(self.option, what=self.what)


def _password_or_token(options: dict[str, Any]) -> Secret:
    password, token = options.pop("password_stdin"), options.pop("token_stdin")
    if password == token:
        raise click.UsageError("give one of --password-stdin or --token-stdin")
    return (
        Secret("password", "--password-stdin", "password")
        if password
        else Secret("token", "--token-stdin", "access token")
    )


def _key_file_secret(path: str) -> Secret:
    return Secret("service_account_key", "--service-account-key-file", "service-account JSON key", path)


@registry_add.command("dockerhub")
@_username("Your Docker Hub user name.")
@_password_stdin
@_token_stdin
@click.option("--endpoint", hidden=True, help="A Docker Hub mirror (advanced; default index.docker.io).")
@_add_options
def add_dockerhub(**options: Any) -> None:
    """Docker Hub, with a password or (better) a personal access token."""
    _add("dockerhub", options, _password_or_token(options))


@registry_add.command("ecr")
@click.option("--endpoint", required=True, help="<account>.dkr.ecr.<region>.amazonaws.com")
@click.option("--access-key-id", required=True, help="The IAM access key ID (not secret).")
@click.option("--secret-access-key-stdin", is_flag=True, help="Read the secret access key from stdin.")
@click.option("--region", help="The AWS region, when the endpoint does not name it.")
@_add_options
def add_ecr(access_key_id: str, secret_access_key_stdin: bool, **options: Any) -> None:
    """Amazon ECR; the portal mints its 12-hour tokens with the access key."""
    if not secret_access_key_stdin:
        raise click.UsageError("give --secret-access-key-stdin and pipe the secret access key in")
    secret = Secret("secret_access_key", "--secret-access-key-stdin", "secret access key")
    _add("ecr", {**options, "username": access_key_id}, secret)


@registry_add.command("gcr")
@click.option("--endpoint", required=True, help="gcr.io, us.gcr.io, eu.gcr.io or asia.gcr.io")
@_key_file(required=True)
@_add_options
def add_gcr(key_file: str, **options: Any) -> None:
    """Google Container Registry, with a service-account JSON key."""
    _add("gcr", options, _key_file_secret(key_file))


@registry_add.command("gar")
@click.option("--endpoint", required=True, help="<region>-docker.pkg.dev")
@_key_file(required=False)
@_token_stdin
@_add_options
def add_gar(key_file: str | None, token_stdin: bool, **options: Any) -> None:
    """Google Artifact Registry, with a service-account JSON key or a ready access token."""
    if (key_file is None) == (not token_stdin):
        raise click.UsageError("give either --service-account-key-file or --token-stdin")
    if key_file == "-" and token_stdin:
        raise click.UsageError("stdin can carry only one secret")
    secret = _key_file_secret(key_file) if key_file else Secret("token", "--token-stdin", "access token")
    _add("gar", options, secret)


@registry_add.command("ghcr")
@_username("Your GitHub user name.")
@_token_stdin
@click.option("--endpoint", hidden=True, help="Advanced: another address than ghcr.io.")
@_add_options
def add_ghcr(token_stdin: bool, **options: Any) -> None:
    """GitHub Container Registry, with a personal access token (read:packages)."""
    if not token_stdin:
        raise click.UsageError("give --token-stdin and pipe a token with read:packages in")
    _add("ghcr", options, Secret("token", "--token-stdin", "token"))


@registry_add.command("quay")
@_username("Your Quay user name, or a robot account (org+name).")
@_password_stdin
@_token_stdin
@click.option("--endpoint", help="Default quay.io; use `add other` for a self-hosted Quay.")
@_add_options
def add_quay(**options: Any) -> None:
    """Quay.io, with a password or a robot token."""
    _add("quay", options, _password_or_token(options))


@registry_add.command("other")
@click.option("--endpoint", required=True, help="host[:port][/path-prefix], e.g. registry.example.com/team")
@_username()
@_password_stdin
@_token_stdin
@_add_options
def add_other(**options: Any) -> None:
    """Any OCI registry (Harbor, Artifactory, Nexus, GitLab, Distribution, …)."""
    _add("other", options, _password_or_token(options))


def _add(provider: str, options: dict[str, Any], secret: Secret) -> None:
    fmt = output_format()
    api = client()
    value = secret.read()
    data: dict[str, Any] = {"provider": provider, secret.field: value}
    for key in ("endpoint", "name", "username", "region", "realm_host"):
        if options.get(key):
            data[key] = options[key]
    if options.get("apps"):
        data["apps"] = list(options["apps"])
    if options.get("skip_validation"):
        data["skip_validation"] = True
    try:
        created = api.post("external-registries/", data)
    except PortalError as e:  # the portal never echoes a secret; this is belt and braces
        raise PortalError(redact_text(e.message, secrets=(value,)), status=e.status, code=e.code) from None
    emit_value(fmt, created, created["name"])
    _say_recognised(provider, created)
    if options.get("skip_validation") and sys.stderr.isatty():
        click.echo(
            f"Saved without checking; try it with: portal registry test {created['name']} --image IMAGE", err=True
        )


def _say_recognised(asked: str, created: dict[str, Any]) -> None:
    """The portal saves a cloud's login typed as `other` as that cloud's provider; say which."""
    if created.get("provider") and created["provider"] != asked:
        click.echo(
            f"Saved as provider {text(created['provider'])}: the portal recognised the credentials "
            "and mints short-lived tokens with them.",
            err=True,
        )


# --- edit ---------------------------------------------------------------------------------

# The secret options of `edit`: (option, the API's field, what it is); the key file is the fourth.
EDIT_SECRETS = (
    ("password_stdin", "--password-stdin", "password", "password"),
    ("token_stdin", "--token-stdin", "token", "access token"),
    ("secret_access_key_stdin", "--secret-access-key-stdin", "secret_access_key", "secret access key"),
)
SECRET_OPTIONS = {field: option for _, option, field, _ in EDIT_SECRETS} | {
    "service_account_key": "--service-account-key-file"
}


@registry.command("edit")
@click.argument("ref", metavar="NAME|ENDPOINT")
@click.option("--endpoint", help="A new endpoint; on another host the secret must be given again.")
@click.option("--username", "-u", help="A new user name (ECR: the access key ID).")
@click.option("--password-stdin", is_flag=True, help="Read a new password from stdin.")
@click.option("--token-stdin", is_flag=True, help="Read a new access token from stdin.")
@click.option("--secret-access-key-stdin", is_flag=True, help="ECR: read a new secret access key from stdin.")
@click.option(
    "--service-account-key-file",
    "key_file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="GCR/GAR: a new service account's JSON key file (- for stdin).",
)
@click.option("--apps", metavar="SLUG,…", help="Serve only these apps (comma-separated).")
@click.option("--all-apps", is_flag=True, help="Serve all your apps.")
@click.option(
    "--skip-validation", is_flag=True, help="Save without logging in upstream (check later with: registry test)."
)
@common_options
def registry_edit(ref: str, key_file: str | None, apps: str | None, all_apps: bool, **options: Any) -> None:
    """Change a registry's endpoint, user name, secret or apps; what is not given stays as it is.

    A new secret is checked upstream before saving, unless --skip-validation; it is read from stdin
    (or a hidden prompt on a terminal) or a file, never from options:

    \b
      printf '%s' "$NEW_PASSWORD" | portal registry edit my-registry --password-stdin
    """
    fmt = output_format()
    secret = _edit_secret(options, key_file)
    if apps is not None and all_apps:
        raise click.UsageError("give --apps or --all-apps, not both")
    data: dict[str, Any] = {key: options[key] for key in ("endpoint", "username") if options[key] is not None}
    if apps is not None:
        data["apps"] = [slug.strip() for slug in apps.split(",") if slug.strip()]
        if not data["apps"]:
            raise click.UsageError("--apps needs at least one app slug; use --all-apps to serve every app")
    if all_apps:
        data["apps"] = []
    if not data and secret is None:
        raise click.UsageError("nothing to change; give --endpoint, --username, a secret, --apps or --all-apps")
    api = client()
    found = _find(api, ref)
    value = secret.read() if secret else ""
    if secret:
        data[secret.field] = value
    if options["skip_validation"]:
        data["skip_validation"] = True
    try:
        updated = api.patch(f"external-registries/{segment(found['id'])}/", data)
    except PortalError as e:
        raise _edit_error(e, data, value) from None
    if fmt == "json":
        emit_json(updated)
    else:
        click.echo(f"Updated registry {text(updated['name'])}.")
        if updated.get("health") == "credentials_changed":
            click.echo(
                f"Health: {text(_health(updated)).lower()}; test it with: "
                f"portal registry test {text(updated['name'])} --image IMAGE"
            )


def _edit_secret(options: dict[str, Any], key_file: str | None) -> Secret | None:
    """The one new secret asked for, if any."""
    given = [Secret(field, option, what) for flag, option, field, what in EDIT_SECRETS if options.pop(flag)]
    if key_file is not None:
        given.append(_key_file_secret(key_file))
    if len(given) > 1:
        raise click.UsageError(f"give one new secret, not {' and '.join(s.option for s in given)}")
    return given[0] if given else None


def _edit_error(error: PortalError, data: dict[str, Any], secret: str) -> PortalError:
    """The API's error, without the secret; a secret the new endpoint needs names the option to give it."""
    message = redact_text(error.message, secrets=(secret,))
    field = message.split(":", 1)[0]
    if error.status == 400 and "endpoint" in data and not secret and field in SECRET_OPTIONS:
        message = (
            f"{field}: the endpoint {data['endpoint']} is on another host (or plain HTTP), so the stored "
            f"secret is not sent there; give it again with {SECRET_OPTIONS[field]}"
        )
    return PortalError(message, status=error.status, code=error.code)


# --- ls, rm -------------------------------------------------------------------------------


@registry.command("ls")
@common_options
def registry_ls() -> None:
    """List the team's registries (secrets are never shown)."""
    registries = client().list_all("external-registries/")
    emit_list(
        output_format(),
        registries,
        REGISTRY_COLUMNS,
        empty="No registries yet; add one with: portal registry add {dockerhub,ecr,gcr,gar,ghcr,quay,other} …",
    )


@registry.command("show")
@click.argument("ref", metavar="NAME|ENDPOINT")
@common_options
def registry_show(ref: str) -> None:
    """One registry: its credentials' health, and what its last test found about its image."""
    fmt = output_format()
    found = _find(client(), ref)
    if fmt == "json":
        emit_json(found)
        return
    click.echo(record(found, REGISTRY_FACTS))
    if found.get("health") == "credentials_changed":
        click.echo(f"Test it with: portal registry test {text(found['name'])} --image IMAGE", err=True)


@registry.command("rm")
@click.argument("ref", metavar="NAME|ENDPOINT")
@click.option("--yes", "-y", is_flag=True, help="Delete without asking (needed when stdin is not a terminal).")
@common_options
def registry_rm(ref: str, yes: bool) -> None:
    """Delete a registry, its stored credentials and its test history; asks first unless --yes."""
    fmt = output_format()
    refuse_without_confirmation(yes, f"registry “{ref}”")
    api = client()
    found = _find(api, ref)
    confirm_or_stop(
        yes,
        f"Delete registry “{found['name']}” ({found['endpoint']}) and its stored credentials?",
        refused=f"registry “{found['name']}” was not deleted",
    )
    api.delete(f"external-registries/{segment(found['id'])}/")
    if fmt == "json":
        emit_json(found)
    else:
        click.echo(f"Deleted registry {found['name']}.")


def _endpoint_key(endpoint: str) -> str:
    key = endpoint.strip().lower().removeprefix("http://").removeprefix("https://").rstrip("/")
    return "index.docker.io" if key in DOCKERHUB_ALIASES else key


def _find(api: PortalClient, ref: str) -> dict[str, Any]:
    """The registry named `ref`, else the one at endpoint `ref` (scheme optional)."""
    registries = api.list_all("external-registries/")
    wanted = ref.strip().lower()
    for candidates in (
        [r for r in registries if r["name"] == wanted],
        [r for r in registries if r["endpoint"].lower().rstrip("/") == wanted.rstrip("/")],
        [r for r in registries if _endpoint_key(r["endpoint"]) == _endpoint_key(wanted)],
    ):
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            names = ", ".join(r["name"] for r in candidates)
            raise CliError(f"“{ref}” matches several registries ({names}); give the name")
    raise CliError(f"no registry “{ref}” in your team; see: portal registry ls")


# --- test ---------------------------------------------------------------------------------


@registry.command("test")
@click.argument("ref", metavar="NAME|ENDPOINT")
@click.option("--image", required=True, help="An image in that registry: acme/api:1.0.0 or acme/api@sha256:….")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the result.",
)
@common_options
def registry_test(ref: str, image: str, timeout: float) -> None:
    """Pull IMAGE's manifest with the stored credentials; exit 0 when it was fetched, 1 otherwise."""
    fmt = output_format()
    api = client()
    found = _find(api, ref)
    test = api.post(f"external-registries/{segment(found['id'])}/test/", {"image": image})
    url = test.get("url")
    if sys.stderr.isatty():
        click.echo(f"Testing {text(image)} on {found['name']} ({found['endpoint']})…", err=True)
    deadline = time.monotonic() + timeout
    delay = POLL_FIRST
    while not test.get("done"):
        left = deadline - time.monotonic()
        if left <= 0:
            hint = " is a Celery worker running?" if test.get("status") == "queued" else ""
            where = f" The result will appear at {url}" if url else ""
            raise CliError(
                f"the test did not finish within {timeout:g} s (still {text(test.get('status'))});{hint}{where}"
            )
        time.sleep(min(delay, left))
        delay = min(delay * 1.5, POLL_MAX)
        test = api.get(f"registry-tests/{segment(test['id'])}/")
    if url:
        test = {**test, "url": url}
    _show_test(fmt, test, found)
    result = test.get("result") or {}
    reason = f"{test.get('category') or 'failed'}: {test.get('message') or 'the test failed'}"
    if not result.get("digest"):
        raise CliError(text(reason))
    if test.get("status") != "succeeded":  # the manifest came, a later step (the blob) did not
        click.echo(f"warning: {text(reason)}", err=True)


def _show_test(fmt: str, test: dict[str, Any], found: dict[str, Any]) -> None:
    if fmt == "json":
        emit_json(test)
        return
    result = test.get("result") or {}
    # The API's steps carry the pages' labels; an older portal sends only the result's.
    steps = [s for s in test.get("steps") or result.get("steps") or [] if isinstance(s, dict)]
    if steps:
        click.echo(table(steps, STEP_COLUMNS))
        click.echo()
    facts = [
        Column("registry", lambda t: f"{found['name']} ({found['endpoint']})"),
        Column("image", "image"),
        Column(
            "result",
            lambda t: (
                f"{t.get('status')} (about the image; the credentials worked)"
                if t.get("image_finding")
                else t.get("status")
            ),
        ),
    ]
    if result.get("digest"):
        facts += [
            Column("digest", lambda t: result.get("digest")),
            Column("media type", lambda t: result.get("media_type")),
            Column("platforms", lambda t: result.get("platforms")),
        ]
    rate = result.get("rate_limit") or {}
    if rate.get("limit") is not None:
        facts.append(Column("rate limit", lambda t: _rate_limit(rate)))
    click.echo(record(test, facts))


def _rate_limit(rate: dict[str, Any]) -> str:
    window = f" per {rate['window_seconds']} s" if rate.get("window_seconds") else ""
    return f"{rate.get('remaining', '?')} of {rate['limit']} pulls left{window}"
