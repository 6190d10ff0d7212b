"""`portal image`: an app's images in the portal's private registry (/api/v1/apps/{slug}/images/)."""

from __future__ import annotations

import re
from typing import Any

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
from portal_cli.output import Column, emit_json, emit_list, text, when

MANIFEST_KINDS = {
    "application/vnd.oci.image.index.v1+json": "OCI index",
    "application/vnd.oci.image.manifest.v1+json": "OCI image",
    "application/vnd.docker.distribution.manifest.list.v2+json": "Docker list",
    "application/vnd.docker.distribution.manifest.v2+json": "Docker image",
}
SHORT_DIGEST = 19  # "sha256:" and 12 hex digits, as docker shows image ids

TAG_COLUMNS = [
    Column("IMAGE", lambda r: f"{r['reference']}:{r['tag']}"),
    Column("DIGEST", lambda r: r["digest"][:SHORT_DIGEST]),
    Column("TYPE", lambda r: MANIFEST_KINDS.get(r.get("media_type") or "", r.get("media_type"))),
    Column("PUSHED", lambda r: when(r.get("pushed_at"))),
    Column("PUSHED BY", "pushed_by"),
]
IMAGE_REF = re.compile(
    r"^(?P<image>[a-z0-9._/-]+?)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]*)|@(?P<digest>[a-z0-9+._-]+:[A-Za-z0-9=_-]+))$"
)


@click.group()
@common_options
def image() -> None:
    """Images in the portal's private registry, pushed to <registry>/<app-slug>/<image>:<tag>."""


def _images(slug: str) -> dict[str, Any]:
    try:
        return client().get(f"apps/{segment(slug)}/images/")
    except ValueError:
        raise CliError(f"no app “{slug}” in your team; see: portal app ls") from None
    except PortalError as e:
        if e.status == 404:
            raise CliError(f"no app “{slug}” in your team; see: portal app ls") from None
        raise


@image.command("ls")
@click.option("--app", "slug", required=True, help="The app's slug.")
@common_options
def image_ls(slug: str) -> None:
    """List the app's repositories and tags (one row per tag)."""
    fmt = output_format()
    body = _images(slug)
    if fmt == "json":
        emit_json(body)
        return
    if body.get("refresh_error"):
        click.echo(f"warning: {text(body['refresh_error'])}", err=True)
    rows = [
        {**tag, "reference": repository["reference"]}
        for repository in body.get("repositories", [])
        for tag in repository.get("tags", [])
    ]
    host = text(body.get("registry"))
    emit_list(fmt, rows, TAG_COLUMNS, empty=f"Nothing pushed yet; push with: docker push {host}/{slug}/IMAGE:TAG")


@image.command("rm")
@click.argument("reference")
@click.option("--app", "slug", required=True, help="The app's slug.")
@click.option("--yes", "-y", is_flag=True, help="Delete without asking (needed when stdin is not a terminal).")
@common_options
def image_rm(reference: str, slug: str, yes: bool) -> None:
    """Delete IMAGE:TAG or IMAGE@DIGEST (the manifest, with every tag pointing to it)."""
    fmt = output_format()
    match = IMAGE_REF.match(reference.removeprefix(f"{slug}/"))
    if not match:
        raise CliError(f"“{reference}” is not IMAGE:TAG or IMAGE@DIGEST", exit_code=2)
    refuse_without_confirmation(yes, f"“{reference}”")
    confirm_or_stop(
        yes,
        f"Delete {slug}/{reference} and every tag pointing to the same manifest?",
        refused=f"“{reference}” was not deleted",
    )
    path = "/".join(segment(part) for part in match["image"].split("/"))
    if match["tag"]:
        path += f"/tags/{segment(match['tag'])}"
    else:
        path += f"/manifests/{match['digest']}"
    try:
        deleted = client().delete(f"apps/{segment(slug)}/images/{path}")
    except PortalError as e:
        if e.status == 404:
            raise CliError(f"{e.message}") from None
        raise
    if fmt == "json":
        emit_json(deleted)
    else:
        tags = ", ".join(deleted.get("tags") or []) or "none"
        click.echo(f"Deleted {text(deleted['repository'])}@{text(deleted['digest'])} (tags: {text(tags)}).")
