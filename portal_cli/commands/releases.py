"""`portal release` and `portal channel`: an app's releases and channels
(/api/v1/apps/<slug>/releases/, /api/v1/apps/<slug>/channels/).

A release is uploaded as a .tar.gz of a folder's YAML files (made here, in memory); the
portal lints it (errors refuse it, nothing stored) and resolves its images in the background.
"""

from __future__ import annotations

import io
import itertools
import os
import tarfile
import time
from pathlib import Path
from typing import Any

import click

from portal_cli.client import PortalClient, PortalError, segment
from portal_cli.context import CliError, client, common_options, output_format
from portal_cli.output import Column, emit_json, emit_list, emit_record, emit_value, table, text, when

YAML_SUFFIXES = (".yaml", ".yml")
RESOLVING = "resolving"
POLL_SECONDS = (0.5, 1.0, 2.0)  # then every 2 s

RELEASE_COLUMNS = [
    Column("SEQ", "sequence"),
    Column("VERSION", "version"),
    Column("STATUS", "status"),
    Column("CHANNELS", "channels"),
    Column("CREATED", lambda r: when(r.get("created_at"))),
    Column("CREATED BY", "created_by"),
]


def size_text(size: Any) -> str | None:
    """Bytes as the pages show them (Django's filesizeformat: 1 KB = 1024 B), so the CLI and
    the release page give the same figure."""
    if not isinstance(size, int):
        return None
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return None


RELEASE_FIELDS = [
    Column("sequence", "sequence"),
    Column("version", "version"),
    Column("status", "status"),
    Column("channels", "channels"),
    Column("notes", "notes"),
    Column("created", lambda r: when(r.get("created_at"))),
    Column("created by", "created_by"),
    Column("resolved", lambda r: when(r.get("resolved_at"))),
    Column("namespaces", "additional_namespaces"),
    Column("files", "files"),
]

IMAGE_COLUMNS = [
    Column("SOURCE", "source"),
    Column("NAME", "name"),
    Column("TAG", "tag"),
    Column("DIGEST", lambda i: i["digest"][:19] + "…" if len(i.get("digest") or "") > 20 else i.get("digest")),
    Column("VISIBILITY", "visibility"),
    Column("PLATFORMS", "platforms"),
    Column("SIZE", lambda i: size_text(i.get("size"))),
]

CHANNEL_COLUMNS = [
    Column("NAME", "name"),
    Column("CURRENT", "current_release"),
    Column("VERSION", "current_version"),
    Column("LICENSES", "license_count"),
    Column("AIR GAP", "airgap"),
    Column("CREATED", lambda c: when(c.get("created_at"))),
]


# --- shared ------------------------------------------------------------------------------

# Every release and channel command but create (whose --app has its own help) names the app so.
app_option = click.option("--app", "app_slug", required=True, metavar="SLUG")


def _no_app(app_slug: str) -> CliError:
    return CliError(f"no app “{text(app_slug)}” in your team; see: portal app ls")


def _app_path(app_slug: str) -> str:
    try:
        return f"apps/{segment(app_slug)}"
    except ValueError:
        raise _no_app(app_slug) from None


def _not_found(api: PortalClient, app_slug: str, what: str, hint: str) -> CliError:
    """A 404 below an app: the app is not the team's, or `what` is not in it."""
    try:
        api.get(_app_path(app_slug) + "/")
    except PortalError as e:
        if e.status == 404:
            return _no_app(app_slug)
        raise
    return CliError(f"no {what} in app {text(app_slug)}; see: {hint}")


def _call(api: PortalClient, app_slug: str, call: Any, *, what: str = "", hint: str = "") -> Any:
    """`call(app path)`; a 404 becomes one clear error naming the app or `what`."""
    path = _app_path(app_slug)
    try:
        return call(path)
    except PortalError as e:
        if e.status != 404:
            raise
        if not what:
            raise _no_app(app_slug) from None
        raise _not_found(api, app_slug, what, hint) from None


def yaml_archive(directory: str) -> tuple[bytes, int]:
    """(a .tar.gz of the directory's .yaml/.yml files, their count); hidden files and folders
    are left out, and paths are relative to the directory."""
    root = Path(directory)
    found: list[tuple[str, Path]] = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or not name.lower().endswith(YAML_SUFFIXES):
                continue
            path = Path(folder) / name
            found.append((path.relative_to(root).as_posix(), path))
    if not found:
        raise CliError(f"no .yaml or .yml files in {directory}")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for relative, path in found:
            try:
                data = path.read_bytes()  # a symlink's target: the portal accepts plain files only
            except OSError as e:
                raise CliError(f"cannot read {path}: {e.strerror}") from None
            info = tarfile.TarInfo(relative)
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue(), len(found)


def _upload(yaml_dir: str) -> dict[str, tuple[str, bytes, str]]:
    data, _ = yaml_archive(yaml_dir)
    return {"archive": ("release.tar.gz", data, "application/gzip")}


def _lines(findings: Any) -> list[str]:
    return [text(f.get("text")) for f in findings or [] if isinstance(f, dict)]


def _lint_refusal(error: PortalError) -> CliError | None:
    """A 400 with lint findings: print every finding on stderr, then one error line."""
    findings = error.body.get("findings")
    if error.status != 400 or not isinstance(findings, list):
        return None
    for line in _lines(findings):
        click.echo(line, err=True)
    errors = sum(1 for f in findings if isinstance(f, dict) and f.get("level") == "error")
    return CliError(f"the release has {errors} lint error{'s' if errors != 1 else ''}; nothing was stored")


# --- portal release ---------------------------------------------------------------------------


@click.group()
@common_options
def release() -> None:
    """Releases: numbered sets of YAML (the images: list and Kubernetes manifests) of an app."""


@release.command("create")
@click.option("--app", "app_slug", required=True, metavar="SLUG", help="The app the release is of.")
@click.option(
    "--yaml-dir",
    required=True,
    metavar="DIR",
    type=click.Path(exists=True, file_okay=False, readable=True),
    help="The folder holding the release's .yaml/.yml files (subfolders too).",
)
@click.option("--version", "version_label", metavar="V", help="A version label such as 1.4.2.")
@click.option("--notes", metavar="TEXT", help="Release notes.")
@click.option("--promote", metavar="CHANNEL", help="Promote the release to this channel once it is stored.")
@click.option("--wait", is_flag=True, help="Wait until its images are resolved; exit 1 if resolving fails.")
@click.option(
    "--wait-timeout", default=600, show_default=True, metavar="SECONDS", type=click.IntRange(1), help="With --wait."
)
@common_options
def release_create(
    app_slug: str,
    yaml_dir: str,
    version_label: str | None,
    notes: str | None,
    promote: str | None,
    wait: bool,
    wait_timeout: int,
) -> None:
    """Upload a release; prints its sequence number (or the release with --output json).

    The portal lints the files first: errors refuse the release (each finding is printed,
    one per line) and nothing is stored.
    """
    fmt = output_format()
    form = {k: v for k, v in (("version", version_label), ("notes", notes), ("promote", promote)) if v is not None}
    files = _upload(yaml_dir)
    api = client()
    try:
        created = _call(api, app_slug, lambda path: api.post_files(f"{path}/releases/", form, files))
    except PortalError as e:
        raise _lint_refusal(e) or e from None
    if fmt != "json":
        for line in _lines(created.get("findings")):
            click.echo(line, err=True)
    if wait and created.get("status") == RESOLVING:
        created = _wait(api, app_slug, created["sequence"], wait_timeout)
    emit_value(fmt, created, str(created["sequence"]))
    if wait and created.get("status") == "failed":
        for line in _lines(f for f in created.get("findings") or [] if f.get("level") == "error"):
            click.echo(line, err=True)
        raise CliError(f"release {created['sequence']} failed: its images could not all be resolved")


def _wait(api: PortalClient, app_slug: str, sequence: int, timeout: int) -> dict[str, Any]:
    """The release once its status is no longer `resolving`."""
    deadline = time.monotonic() + timeout
    for attempt in itertools.count():
        time.sleep(POLL_SECONDS[min(attempt, len(POLL_SECONDS) - 1)])
        found = _call(api, app_slug, lambda path: api.get(f"{path}/releases/{sequence}/"))
        if found.get("status") != RESOLVING:
            return found
        if time.monotonic() > deadline:
            break
    raise CliError(
        f"release {sequence} is still resolving its images after {timeout} s; "
        f"see: portal release show --app {text(app_slug)} {sequence}"
    )


@release.command("ls")
@app_option
@common_options
def release_ls(app_slug: str) -> None:
    """List an app's releases, newest first."""
    fmt = output_format()
    api = client()
    rows = _call(api, app_slug, lambda path: api.list_all(f"{path}/releases/"))
    emit_list(
        fmt,
        rows,
        RELEASE_COLUMNS,
        empty="No releases yet; upload one with: portal release create --app SLUG --yaml-dir DIR",
    )


@release.command("show")
@app_option
@click.argument("sequence", type=click.IntRange(1))
@common_options
def release_show(app_slug: str, sequence: int) -> None:
    """Show a release: its status, images (digest, visibility, platforms, size) and findings."""
    fmt = output_format()
    api = client()
    found = _call(
        api,
        app_slug,
        lambda path: api.get(f"{path}/releases/{sequence}/"),
        what=f"release {sequence}",
        hint=f"portal release ls --app {text(app_slug)}",
    )
    if fmt == "json":
        emit_json(found)
        return
    emit_record(fmt, found, RELEASE_FIELDS)
    if found.get("images"):
        click.echo("\n" + table(found["images"], IMAGE_COLUMNS))
    lines = _lines(found.get("findings"))
    if lines:
        click.echo("\n" + "\n".join(lines))


@release.command("lint")
@app_option
@click.option(
    "--yaml-dir",
    required=True,
    metavar="DIR",
    type=click.Path(exists=True, file_okay=False, readable=True),
    help="The folder holding the release's .yaml/.yml files.",
)
@common_options
def release_lint(app_slug: str, yaml_dir: str) -> None:
    """Lint a folder as a release upload would, storing nothing.

    Prints one finding per line (LEVEL RULE FILE[:LINE] message); exit 1 when there are errors.
    """
    fmt = output_format()
    files = _upload(yaml_dir)
    api = client()
    answer = _call(api, app_slug, lambda path: api.post_files(f"{path}/releases/lint/", {}, files))
    if fmt == "json":
        emit_json(answer)
    else:
        lines = _lines(answer.get("findings"))
        if lines:
            click.echo("\n".join(lines))
        else:
            click.echo("No findings.", err=True)
    if not answer.get("ok"):
        errors = sum(1 for f in answer.get("findings") or [] if f.get("level") == "error")
        raise CliError(f"{errors} lint error{'s' if errors != 1 else ''}: the portal would refuse this release")


@release.command("promote")
@app_option
@click.argument("sequence", type=click.IntRange(1))
@click.option("--channel", required=True, metavar="CHANNEL", help="stable, beta, unstable or one of yours.")
@common_options
def release_promote(app_slug: str, sequence: int, channel: str) -> None:
    """Make a release its channel's current one: licenses on the channel get it."""
    fmt = output_format()
    api = client()
    promoted = _call(
        api,
        app_slug,
        lambda path: api.post(f"{path}/releases/{sequence}/promote/", {"channel": channel}),
        what=f"release {sequence}",
        hint=f"portal release ls --app {text(app_slug)}",
    )
    if fmt == "json":
        emit_json(promoted)
    else:
        click.echo(f"Promoted release {sequence} of {text(app_slug)} to {text(channel)}.")


# --- portal channel ---------------------------------------------------------------------------


@click.group()
@common_options
def channel() -> None:
    """Channels: lines of releases (stable, beta, …); each license follows one."""


@channel.command("ls")
@app_option
@common_options
def channel_ls(app_slug: str) -> None:
    """List an app's channels with their current release and how many licenses follow them."""
    fmt = output_format()
    api = client()
    rows = _call(api, app_slug, lambda path: api.list_all(f"{path}/channels/"))
    emit_list(fmt, rows, CHANNEL_COLUMNS, empty="No channels.")


@channel.command("create")
@app_option
@click.argument("name")
@click.option("--airgap", is_flag=True, help="Build the air-gap bundle of each release promoted to it.")
@common_options
def channel_create(app_slug: str, name: str, airgap: bool) -> None:
    """Add a channel (lowercase letters, digits and hyphens, like lts-2026); prints its name."""
    fmt = output_format()
    api = client()
    created = _call(api, app_slug, lambda path: api.post(f"{path}/channels/", {"name": name, "airgap": airgap}))
    emit_value(fmt, created, created["name"])


@channel.command("edit")
@app_option
@click.argument("name")
@click.option(
    "--airgap/--no-airgap",
    default=None,
    help="Build (or stop building) the air-gap bundle of each release promoted to it.",
)
@common_options
def channel_edit(app_slug: str, name: str, airgap: bool | None) -> None:
    """Change a channel: whether it is an air-gap channel."""
    if airgap is None:
        raise CliError("nothing to change: give --airgap or --no-airgap", exit_code=2)
    fmt = output_format()
    api = client()
    try:
        channel_path = segment(name)
    except ValueError:
        raise CliError(f"no channel “{text(name)}” in app {text(app_slug)}; see: portal channel ls") from None
    changed = _call(
        api,
        app_slug,
        lambda path: api.patch(f"{path}/channels/{channel_path}/", {"airgap": airgap}),
        what=f"channel {text(name)}",
        hint=f"portal channel ls --app {text(app_slug)}",
    )
    if fmt == "json":
        emit_json(changed)
    else:
        state = "an air-gap channel" if changed.get("airgap") else "not an air-gap channel"
        click.echo(f"Channel {text(changed['name'])} of {text(app_slug)} is {state}.")
