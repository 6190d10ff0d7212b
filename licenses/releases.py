"""Releases and channels: creating a release from its YAML files (linted first; errors block
it), promoting it to a channel, and the channels of an app. Each write takes the actor and
records an audit entry."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from accounts.access import Actor
from accounts.services import audit
from licenses import signals
from licenses.findings import Finding, has_errors
from licenses.imagerefs import endpoint_host, listed_location
from licenses.lint import LintResult, lint
from licenses.models import (
    App,
    Channel,
    ImageSource,
    Promotion,
    Release,
    ReleaseFile,
    ReleaseFinding,
    ReleaseImage,
    ReleaseStatus,
)
from licenses.release_spec import ImageSpec

CHANNEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
VERSION_MAX = 64
NOTES_MAX = 10_000


class LintFailed(ValidationError):
    """The release's files have lint errors; nothing was stored."""

    def __init__(self, findings: list[Finding]):
        errors = [f for f in findings if f.level == "error"]
        super().__init__({"files": [str(f) for f in errors]})
        self.findings = findings


def team_sources(app: App) -> set[str]:
    """The names an image's `source` may take besides public/replicated: the team's
    registries (read through the reverse relation; registries sit above the catalogue)."""
    return set(app.team.registries.values_list("name", flat=True))


def team_source_hosts(app: App) -> dict[str, str]:
    """The team's registries: name → canonical host, where an image of that source lives."""
    return {name: endpoint_host(endpoint) for name, endpoint in app.team.registries.values_list("name", "endpoint")}


def lint_files(app: App, files: dict[str, str]) -> LintResult:
    return lint(files, sources=team_source_hosts(app), registry_host=settings.REGISTRY_HOST, app_slug=app.slug)


def image_location(app: App, image: ImageSpec) -> tuple[str, str]:
    """(host, repository) where a listed image lives; host canonical, `host:port` for a port."""
    return listed_location(
        image, source_hosts=team_source_hosts(app), registry_host=settings.REGISTRY_HOST, app_slug=app.slug
    )


def _clean_meta(version: str, notes: str) -> tuple[str, str]:
    version = " ".join((version or "").split())
    notes = (notes or "").strip()
    errors = {}
    if len(version) > VERSION_MAX:
        errors["version"] = [f"A version label has at most {VERSION_MAX} characters."]
    if len(notes) > NOTES_MAX:
        errors["notes"] = [f"Release notes have at most {NOTES_MAX} characters."]
    if errors:
        raise ValidationError(errors)
    return version, notes


def release_create(
    *, actor: Actor, app: App, files: dict[str, str], version: str = "", notes: str = "", promote_to: str = ""
) -> tuple[Release, LintResult]:
    """A new release numbered after the app's last; raises LintFailed (lint errors) or
    ValidationError (version, notes, files, channel) with nothing stored."""
    version, notes = _clean_meta(version, notes)
    if not files:
        raise ValidationError({"files": ["A release needs at least one YAML file."]})
    channel = channel_get(app, promote_to) if promote_to else None
    result = lint_files(app, files)
    if has_errors(result.findings):
        raise LintFailed(result.findings)
    with transaction.atomic():
        App.objects.select_for_update().filter(pk=app.pk).first()  # one sequence at a time per app
        sequence = (app.releases.aggregate(last=Max("sequence"))["last"] or 0) + 1
        release = Release.objects.create(
            app=app, sequence=sequence, version=version, notes=notes, created_by=actor.user,
            additional_namespaces=result.settings.additional_namespaces,
            status=ReleaseStatus.RESOLVING if result.settings.images else ReleaseStatus.READY,
        )  # fmt: skip
        ReleaseFile.objects.bulk_create(ReleaseFile(release=release, path=p, content=t) for p, t in files.items())
        images = []
        hosts = team_source_hosts(app)
        for position, spec in enumerate(result.settings.images):
            host, repository = listed_location(
                spec, source_hosts=hosts, registry_host=settings.REGISTRY_HOST, app_slug=app.slug
            )
            images.append(
                ReleaseImage(
                    release=release,
                    position=position,
                    source=spec.source,
                    name=spec.name,
                    tag=spec.tag,
                    digest=spec.digest,
                    host=host,
                    repository=repository,
                )  # fmt: skip
            )
        ReleaseImage.objects.bulk_create(images)
        ReleaseFinding.objects.bulk_create(
            ReleaseFinding(release=release, level=f.level, rule=f.rule, file=f.file, line=f.line, message=f.message)
            for f in result.findings
        )
        audit(actor=actor, action="release.create", target=f"{app.slug}#{sequence}", version=version)
        transaction.on_commit(lambda: signals.release_created.send(sender=Release, release=release))
        if channel is not None:
            release_promote(actor=actor, release=release, channel=channel)
    return release, result


def release_promote(*, actor: Actor, release: Release, channel: Channel | str) -> Promotion:
    """Make `release` the channel's current release (the channel keeps its history)."""
    if isinstance(channel, str):
        channel = channel_get(release.app, channel)
    if release.status == ReleaseStatus.FAILED:
        raise ValidationError(
            {"release": [f"Release {release.sequence} failed to resolve its images; fix them and upload a new one."]}
        )
    with transaction.atomic():
        promotion = Promotion.objects.create(channel=channel, release=release, promoted_by=actor.user)
        audit(
            actor=actor, action="release.promote", target=f"{release.app.slug}#{release.sequence}", channel=channel.name
        )
        transaction.on_commit(lambda: signals.release_promoted.send(sender=Promotion, promotion=promotion))
    return promotion


def channel_get(app: App, name: str) -> Channel:
    """The app's channel with this name; ValidationError naming `channel` and the choices."""
    channel = Channel.objects.filter(app=app, name=(name or "").strip()).first()
    if channel is None:
        names = ", ".join(app.channels.values_list("name", flat=True)) or "none yet"
        raise ValidationError({"channel": [f"No channel “{name}” in {app.slug}; choose one of: {names}."]})
    return channel


def channel_create(*, actor: Actor, app: App, name: str, airgap: bool = False) -> Channel:
    """A new channel; `airgap`: each release promoted to it gets its air-gap bundle built."""
    name = (name or "").strip().lower()
    if not CHANNEL_RE.match(name):
        raise ValidationError(
            {"name": ["A channel name is 1–40 lowercase letters, digits and hyphens, like stable or lts-2026."]}
        )
    if app.channels.filter(name=name).exists():
        raise ValidationError({"name": [f"{app.slug} already has a channel “{name}”."]})
    with transaction.atomic():
        channel = Channel.objects.create(app=app, name=name, airgap=airgap)
        audit(actor=actor, action="channel.create", target=f"{app.slug}/{name}", airgap=airgap)
    return channel


def channel_update(*, actor: Actor, channel: Channel, airgap: bool | None = None) -> Channel:
    """Mark a channel air gap or not (None: leave as is). Marking it builds nothing by itself:
    the next promotion to it does (or a Build on a release's page)."""
    if airgap is not None and airgap != channel.airgap:
        with transaction.atomic():
            channel.airgap = airgap
            channel.save(update_fields=["airgap"])
            audit(actor=actor, action="channel.update", target=f"{channel.app.slug}/{channel.name}", airgap=airgap)
    return channel


def channel_current(channel: Channel) -> Release | None:
    """The release last promoted to the channel."""
    promotion = channel.promotions.select_related("release").first()
    return promotion.release if promotion else None


def channel_release(channel: Channel, sequence: int | None = None) -> Release | None:
    """The channel's current release, or release `sequence` if it was ever promoted to it."""
    if sequence is None:
        return channel_current(channel)
    return Release.objects.filter(app_id=channel.app_id, sequence=sequence, promotions__channel=channel).first()


def external_image_refs(app_id: int) -> dict[int, set[str]]:
    """`host/repository` of the external images (not the portal's own registry's, which are
    never pulled through the proxy) of every release ever promoted to each channel of the app,
    by channel id, in one query."""
    rows = (
        ReleaseImage.objects.filter(release__app_id=app_id, release__promotions__isnull=False)
        .exclude(source=ImageSource.PRIVATE)
        .values_list("release__promotions__channel_id", "host", "repository")
        .distinct()
    )
    refs: dict[int, set[str]] = {}
    for channel_id, host, repository in rows:
        refs.setdefault(channel_id, set()).add(f"{host}/{repository}")
    return refs
