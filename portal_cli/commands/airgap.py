"""`portal airgap`: air-gap bundles, every image of a release by digest in one verifiable tar
(/api/v1/apps/<slug>/releases/<sequence>/airgap/). `build` and `show` talk to the portal;
the offline commands (`verify`, `push`) live in their own modules and join this group."""

from __future__ import annotations

import itertools
import time
from typing import Any

import click

from portal_cli.client import PortalClient, PortalError, segment
from portal_cli.commands import airgap_install
from portal_cli.commands.releases import app_option, size_text
from portal_cli.context import CliError, client, common_options, output_format
from portal_cli.output import Column, emit_json, emit_record, emit_value, table, text, when

BUSY = ("queued", "building")
POLL_SECONDS = (0.5, 1.0, 2.0)  # then every 2 s

release_option = click.option(
    "--release", "sequence", required=True, type=click.IntRange(1), metavar="SEQ", help="The release's sequence."
)


def _progress(bundle: dict[str, Any]) -> str:
    """One line of how far a build is: images, bytes, percent."""
    p = bundle.get("progress") or {}
    line = f"{bundle.get('status')}: images {p.get('images_done', 0)}/{p.get('images_total', 0)}"
    if p.get("bytes_total"):
        line += f", {size_text(p.get('bytes_done', 0))} of {size_text(p['bytes_total'])}"
        if p.get("bytes_reused"):
            line += f" ({size_text(p['bytes_reused'])} reused)"
    return line + f" ({p.get('percent', 0)} %)"


BUNDLE_FIELDS = [
    Column("release", "sequence"),
    Column("status", "status"),
    Column("progress", lambda b: _progress(b) if b.get("status") in BUSY else None),
    Column("size", lambda b: f"{size_text(b['size'])} ({b['size']} bytes)" if b.get("size") else None),
    Column("sha256", "sha256"),
    Column("blobs", "blob_count"),
    Column("platforms", lambda b: b.get("platforms") or "all"),
    Column("download", lambda b: b.get("download_url") or b.get("download_path")),
    Column("error", "error"),
    Column("attempts", "attempts"),
    Column("requested by", "requested_by"),
    Column("requested", lambda b: when(b.get("requested_at"))),
    Column("finished", lambda b: when(b.get("finished_at"))),
]

DOWNLOAD_COLUMNS = [
    Column("TIME", lambda d: when(d.get("created_at"))),
    Column("CUSTOMER", "customer"),
    Column("LICENSE", "license"),
    Column("RANGE", "range"),
    Column("STATUS", "status"),
    Column("BYTES", "bytes"),
]


def _path(app_slug: str, sequence: int) -> str:
    try:
        return f"apps/{segment(app_slug)}/releases/{sequence}/airgap/"
    except ValueError:
        raise CliError(f"no app “{text(app_slug)}” in your team; see: portal app ls") from None


def _call(app_slug: str, sequence: int, call: Any) -> Any:
    """`call(path)`; a 404 says which of the app, the release or the bundle is missing."""
    try:
        return call(_path(app_slug, sequence))
    except PortalError as e:
        if e.status != 404 or e.code == "no_bundle":
            raise
        raise CliError(
            f"no release {sequence} in app {text(app_slug)} (or no such app in your team); "
            f"see: portal release ls --app {text(app_slug)}"
        ) from None


@click.group()
@common_options
def airgap() -> None:
    """Air-gap bundles: every image of a release by digest, its files and a signed SHA256SUMS."""


@airgap.command("build")
@app_option
@release_option
@click.option("--wait", is_flag=True, help="Print progress until the bundle is built; exit 1 if it fails.")
@click.option(
    "--wait-timeout", default=3600, show_default=True, metavar="SECONDS", type=click.IntRange(1), help="With --wait."
)
@common_options
def airgap_build(app_slug: str, sequence: int, wait: bool, wait_timeout: int) -> None:
    """Build a release's air-gap bundle (again); prints its status (or the bundle with --wait).

    A build already queued or under way is left as it is.
    """
    fmt = output_format()
    api = client()
    bundle = _call(app_slug, sequence, lambda path: api.post(path, {}))
    if not wait:
        emit_value(fmt, bundle, bundle["status"])
        return
    bundle = _wait(api, app_slug, sequence, bundle, wait_timeout)
    emit_record(fmt, bundle, BUNDLE_FIELDS)
    if bundle.get("status") == "failed":
        raise CliError(f"the air-gap bundle of release {sequence} failed: {text(bundle.get('error'))}")


def _wait(api: PortalClient, app_slug: str, sequence: int, bundle: dict[str, Any], timeout: int) -> dict[str, Any]:
    """The bundle once it is ready or failed; each change of progress as a line on stderr."""
    deadline = time.monotonic() + timeout
    last = ""
    for attempt in itertools.count():
        if bundle.get("status") not in BUSY:
            return bundle
        line = _progress(bundle)
        if line != last:
            click.echo(line, err=True)
            last = line
        if time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS[min(attempt, len(POLL_SECONDS) - 1)])
        bundle = _call(app_slug, sequence, api.get)
    raise CliError(
        f"the air-gap bundle of release {sequence} is still {bundle.get('status')} after {timeout} s; "
        f"see: portal airgap show --app {text(app_slug)} --release {sequence}"
    )


@airgap.command("show")
@app_option
@release_option
@common_options
def airgap_show(app_slug: str, sequence: int) -> None:
    """Show a release's bundle: status and progress, size, sha256, digests, its download path
    and the customers' downloads."""
    fmt = output_format()
    api = client()
    bundle = _call(app_slug, sequence, api.get)
    if fmt == "json":
        emit_json(bundle)
        return
    emit_record(fmt, bundle, BUNDLE_FIELDS)
    if bundle.get("downloads"):
        click.echo("\n" + table(bundle["downloads"], DOWNLOAD_COLUMNS))


# The customer's offline commands (no portal token: they run inside the air gap).
airgap.add_command(airgap_install.verify)
airgap.add_command(airgap_install.push)
