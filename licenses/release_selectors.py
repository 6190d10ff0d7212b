"""What the release and channel pages read: resolve progress, which channels a release is
current on, a diff between two releases, an app's released images, and the repository rules
that open a whole registry host."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from django.db.models import Count, Q

from licenses.models import App, Channel, Promotion, Release, ReleaseImage

DIFF_CONTEXT_LINES = 3
RELEASED_IMAGES_RELEASES = 20  # the Images page looks at an app's last releases, not its whole history


def release_progress(release: Release) -> tuple[int, int]:
    """(resolved, total) images; an image is done when it has a visibility or a finding."""
    images = release.images.annotate(finding_count=Count("findings"))
    total = images.count()
    done = images.filter(Q(visibility__gt="") | Q(finding_count__gt=0)).count()
    return done, total


def current_channels(app: App) -> dict[int, list[str]]:
    """release id -> the names of the app's channels whose current release it is."""
    current: dict[int, list[str]] = {}
    for channel in Channel.objects.filter(app=app):
        promotion = channel.promotions.first()
        if promotion is not None:
            current.setdefault(promotion.release_id, []).append(channel.name)
    return current


@dataclass
class ChannelSummary:
    channel: Channel
    current: Release | None
    history: list[Promotion]
    more: int  # promotions older than those in `history`
    licenses: int


def channel_summaries(app: App, *, history: int = 10) -> list[ChannelSummary]:
    summaries = []
    channels = Channel.objects.filter(app=app).annotate(license_count=Count("licenses"))
    for channel in channels:
        promotions = list(channel.promotions.select_related("release", "promoted_by")[: history + 1])
        total = channel.promotions.count() if len(promotions) > history else len(promotions)
        summaries.append(
            ChannelSummary(
                channel=channel,
                current=promotions[0].release if promotions else None,
                history=promotions[:history],
                more=total - min(total, history),
                licenses=channel.license_count,
            )
        )
    return summaries


def previous_release(release: Release) -> Release | None:
    return Release.objects.filter(app_id=release.app_id, sequence__lt=release.sequence).order_by("-sequence").first()


# --- diff ------------------------------------------------------------------------------------


@dataclass
class FileDiff:
    path: str
    change: str  # added, removed, changed
    lines: list[str]  # the unified diff, without line endings


@dataclass
class ImageChange:
    source: str
    name: str
    change: str  # added, removed, changed
    before: list[str] = field(default_factory=list)  # tag/digest references
    after: list[str] = field(default_factory=list)


@dataclass
class ReleaseDiff:
    old: Release
    new: Release
    files: list[FileDiff]
    images: list[ImageChange]
    unchanged_files: int

    @property
    def empty(self) -> bool:
        return not self.files and not self.images


def _image_ref(image: ReleaseImage) -> str:
    ref = f":{image.tag}" if image.tag else ""
    return ref + (f"@{image.digest}" if image.digest else "")


def release_diff(old: Release, new: Release) -> ReleaseDiff:
    """What changed from `old` to `new`: each added, removed or changed file as a unified diff,
    and the listed images grouped by (source, name)."""
    before = dict(old.files.values_list("path", "content"))
    after = dict(new.files.values_list("path", "content"))
    files, unchanged = [], 0
    for path in sorted(before.keys() | after.keys()):
        a, b = before.get(path), after.get(path)
        if a == b:
            unchanged += 1
            continue
        change = "added" if a is None else "removed" if b is None else "changed"
        lines = difflib.unified_diff(
            (a or "").splitlines(),
            (b or "").splitlines(),
            fromfile=f"#{old.sequence}/{path}" if a is not None else "/dev/null",
            tofile=f"#{new.sequence}/{path}" if b is not None else "/dev/null",
            n=DIFF_CONTEXT_LINES,
            lineterm="",
        )
        files.append(FileDiff(path=path, change=change, lines=list(lines)))
    return ReleaseDiff(old=old, new=new, files=files, images=_image_changes(old, new), unchanged_files=unchanged)


def _image_changes(old: Release, new: Release) -> list[ImageChange]:
    def grouped(release: Release) -> dict[tuple[str, str], list[str]]:
        groups: dict[tuple[str, str], list[str]] = {}
        for image in release.images.all():
            groups.setdefault((image.source, image.name), []).append(_image_ref(image))
        return groups

    before, after = grouped(old), grouped(new)
    changes = []
    for key in sorted(before.keys() | after.keys()):
        a, b = sorted(before.get(key, [])), sorted(after.get(key, []))
        if a == b:
            continue
        change = "added" if not a else "removed" if not b else "changed"
        changes.append(ImageChange(source=key[0], name=key[1], change=change, before=a, after=b))
    return changes


# --- the Images page -------------------------------------------------------------------------


@dataclass
class ReleasedImage:
    source: str
    reference: str  # where it lives: host/repository[:tag][@digest]
    digest: str  # resolved, or as listed
    visibility: str
    releases: list[int]  # sequences, newest first
    channels: list[str]  # channels whose current release lists it


def released_images(app: App, *, releases: int = RELEASED_IMAGES_RELEASES) -> tuple[list[ReleasedImage], int]:
    """The images listed by the app's last `releases` releases, one row per reference (the
    newest release that resolved it says its digest and visibility), and how many releases
    the app has in all."""
    total = app.releases.count()
    recent = list(app.releases.order_by("-sequence").values_list("pk", "sequence")[:releases])
    sequence_of = dict(recent)
    current = current_channels(app)
    rows: dict[str, ReleasedImage] = {}
    images = ReleaseImage.objects.filter(release_id__in=sequence_of).order_by("-release__sequence", "position")
    for image in images:
        row = rows.get(image.reference)
        if row is None:
            row = rows[image.reference] = ReleasedImage(
                source=image.source,
                reference=image.reference,
                digest=image.resolved_digest or image.digest,
                visibility=image.visibility,
                releases=[],
                channels=[],
            )
        if not row.visibility and image.visibility:  # a newer release may still be resolving
            row.visibility = image.visibility
            row.digest = image.resolved_digest or row.digest
        sequence = sequence_of[image.release_id]
        if sequence not in row.releases:
            row.releases.append(sequence)
        for name in current.get(image.release_id, []):
            if name not in row.channels:
                row.channels.append(name)
    return sorted(rows.values(), key=lambda r: r.reference), total


def broad_rule_hosts(app: App) -> list[str]:
    """Hosts a repository rule opens whole (`host/*`): the migration wrote these for apps that
    relied on "no rules = everything"."""
    return [rule[: -len("/*")] for rule in app.repository_rules or [] if rule.endswith("/*") and rule.count("/") == 1]
