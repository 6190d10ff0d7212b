"""Services for the portal's private registry: record its notifications, refresh the list from
its API, delete tags and manifests. Pages, the API and the webhook all call these."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Prefetch, Q
from django.utils import timezone

from accounts import customer_hosts
from accounts.access import Actor
from accounts.models import ApiToken, Team, User
from accounts.services import audit
from licenses.models import App
from portal import ocispec
from portal.outbound.errors import ErrorCategory, RegistryError
from registries.clients.distribution import (
    Event,
    Manifest,
    PrivateRegistry,
    is_content_digest,
    is_repository,
    parse_event,
)
from registries.models import PrivateImage, PrivateTag, RegistryNotification

logger = logging.getLogger(__name__)

# Ids of applied notification events are kept this long to recognise redeliveries.
NOTIFICATION_MEMORY = timedelta(days=7)
# Tags a refresh looks up (one HEAD each) when notifications did not report them.
MAX_DISCOVERED_TAGS = 50
GONE = (ErrorCategory.MANIFEST_UNKNOWN, ErrorCategory.REPOSITORY_UNKNOWN)


class ImageUnknown(Exception):
    """The tag or manifest is not in the private registry (any stale listing was removed)."""


@dataclass(frozen=True)
class Deleted:
    repository: str
    digest: str
    tags: list[str]


def push_host(team: Team | int) -> str:
    """The private registry's host as the team's vendors push and its customers pull: the
    team's default custom registry domain, else REGISTRY_HOST."""
    return customer_hosts.registry_host(team)


def private_images(app: App) -> list[PrivateImage]:
    """The app's repositories that have tags, each with `.tags.all()` prefetched."""
    return private_images_by_app([app])[app.pk]


def private_images_by_app(apps: Iterable[App]) -> dict[int, list[PrivateImage]]:
    """private_images for several apps in two queries (the Images page lists every app)."""
    by_app: dict[int, list[PrivateImage]] = {app.pk: [] for app in apps}
    for image in (
        PrivateImage.objects.filter(app_id__in=by_app, tags__isnull=False)
        .distinct()
        .prefetch_related(Prefetch("tags", queryset=PrivateTag.objects.all()))
    ):
        by_app[image.app_id].append(image)
    return by_app


# --- notifications ---------------------------------------------------------------------


def registry_notifications_record(*, events: list[Any]) -> int:
    """Apply a notification envelope's events; returns how many changed something.

    Unknown apps, pulls and blobs are ignored; a redelivered event (same id) changes nothing,
    and an event older than what is recorded for its tag does not undo the newer state.
    """
    applied = 0
    for raw in events:
        event = parse_event(raw)
        if event is None or event.action == "pull":
            continue
        app = App.objects.filter(slug=event.repository.split("/", 1)[0]).first()
        if app is None:
            continue
        with transaction.atomic():
            if event.id:
                _, new = RegistryNotification.objects.get_or_create(event_id=event.id)
                if not new:
                    continue
            changed = _apply_push(app, event) if event.action == "push" else _apply_delete(app, event)
        applied += changed
    RegistryNotification.objects.filter(received_at__lt=timezone.now() - NOTIFICATION_MEMORY).delete()
    return applied


def _apply_push(app: App, event: Event) -> bool:
    if not event.tag:
        return False  # a manifest pushed by digest alone (e.g. a platform of an index)
    image, _ = PrivateImage.objects.get_or_create(repository=event.repository, defaults={"app": app})
    if image.app_id != app.pk:
        PrivateImage.objects.filter(pk=image.pk).update(app=app)
    current = PrivateTag.objects.select_for_update().filter(image=image, tag=event.tag).first()
    if current and current.pushed_at and event.timestamp and event.timestamp < current.pushed_at:
        return False
    values = {
        "digest": event.digest,
        "media_type": event.media_type,
        "size": event.size,
        "pushed_at": event.timestamp or timezone.now(),
        "pushed_by": actor_label(event.actor),
    }
    PrivateTag.objects.update_or_create(image=image, tag=event.tag, defaults=values)
    return True


def _apply_delete(app: App, event: Event) -> bool:
    image = PrivateImage.objects.filter(repository=event.repository, app=app).first()
    if image is None:
        return False
    tags = image.tags.all()
    if event.tag:
        tags = tags.filter(tag=event.tag)
    elif event.digest:
        tags = tags.filter(digest=event.digest)
    if event.timestamp:
        tags = tags.filter(Q(pushed_at__isnull=True) | Q(pushed_at__lte=event.timestamp))
    deleted, _ = tags.delete()
    _drop_empty(image.repository)
    return deleted > 0


def actor_label(subject: str) -> str:
    """Who a registry token's subject is: an email, a service account, or the subject itself."""
    kind, _, ident = subject.partition(":")
    if kind == "token" and ident.isdigit():
        token = ApiToken.objects.select_related("user").filter(pk=int(ident)).first()
        if token is not None:
            return token.user.email if token.user else f"service account {token.name}"
    if kind == "user" and ident.isdigit():
        user = User.objects.filter(pk=int(ident)).first()
        if user is not None:
            return user.email
    return subject[:254]


# --- refreshing from the registry's API -------------------------------------------------


def _refresh_key(app: App) -> str:
    return f"private-registry-refresh:{app.pk}:{app.slug}"


def private_registry_refresh(*, apps: Iterable[App]) -> str:
    """Bring the apps' listings in line with the registry's API; '' or why it could not.

    Each app is refreshed at most every REGISTRY_REFRESH_SECONDS (the outcome is shared through
    the cache); the listing from notifications stays as it is when the registry is unreachable.
    """
    apps = list(apps)
    if not apps:
        return ""
    interval = settings.REGISTRY_REFRESH_SECONDS
    known: dict[str, str] = {}
    if interval > 0:
        try:
            known = cache.get_many([_refresh_key(a) for a in apps])
        except Exception:
            logger.warning("cache unavailable; refreshing the private registry listing")
    due = [a for a in apps if _refresh_key(a) not in known]
    problem = next((m for m in known.values() if m), "")
    if due:
        error = _refresh(due)
        problem = error or problem
        if interval > 0:
            try:
                cache.set_many({_refresh_key(a): error for a in due}, timeout=interval)
            except Exception:
                logger.warning("cache unavailable; the next page refreshes the private registry listing again")
    return problem


def _refresh(apps: list[App]) -> str:
    started = timezone.now()
    by_slug = {a.slug: a for a in apps}
    found: dict[str, tuple[set[str], dict[str, Manifest]]] = {}
    budget = MAX_DISCOVERED_TAGS
    try:
        with PrivateRegistry(settings.REGISTRY_URL) as registry:
            for name in registry.catalog():
                if name.split("/", 1)[0] not in by_slug or not is_repository(name):
                    continue
                tags = set(registry.tags(name))
                known = set(PrivateTag.objects.filter(image__repository=name).values_list("tag", flat=True))
                new: dict[str, Manifest] = {}
                for tag in sorted(tags - known)[:budget]:
                    try:
                        new[tag] = registry.manifest(name, tag)
                    except RegistryError as e:
                        if e.category not in GONE:
                            raise
                    budget -= 1
                found[name] = (tags, new)
    except RegistryError as e:
        logger.warning("private registry listing not refreshed: %s", e)
        return f"Not refreshed from the private registry ({e.message}): this is what its notifications reported."
    for name, (tags, new) in found.items():
        with transaction.atomic():
            if new:
                image, _ = PrivateImage.objects.get_or_create(
                    repository=name, defaults={"app": by_slug[name.split("/", 1)[0]]}
                )
                for tag, manifest in new.items():
                    PrivateTag.objects.get_or_create(
                        image=image,
                        tag=tag,
                        defaults={"digest": manifest.digest, "media_type": manifest.media_type, "size": manifest.size},
                    )
            # Gone from the registry; a tag a notification touched meanwhile stays.
            PrivateTag.objects.filter(image__repository=name, updated_at__lt=started).exclude(tag__in=tags).delete()
    PrivateTag.objects.filter(image__app__in=apps, updated_at__lt=started).exclude(
        image__repository__in=list(found)
    ).delete()
    PrivateImage.objects.filter(app__in=apps, tags__isnull=True).delete()
    return ""


# --- deleting ------------------------------------------------------------------------


def _repository(app: App, image: str) -> str:
    repository = f"{app.slug}/{image}"
    if not is_repository(repository):
        raise ValidationError({"repository": f"“{image}” is not an image name like api or team/api."})
    return repository


def private_tag_delete(*, actor: Actor, app: App, image: str, tag: str, digest: str = "") -> Deleted:
    """Delete the manifest `tag` points to, and so every tag pointing to it.

    With `digest` (what the person confirming saw), nothing is deleted if the tag has moved since.
    """
    repository = _repository(app, image)
    if not ocispec.is_tag(tag):
        raise ValidationError({"tag": f"“{tag}” is not a tag."})
    with PrivateRegistry(settings.REGISTRY_URL) as registry:
        try:
            manifest = registry.manifest(repository, tag, actions=("pull", "delete"))
        except RegistryError as e:
            if e.category in GONE:
                PrivateTag.objects.filter(image__repository=repository, tag=tag).delete()
                _drop_empty(repository)
                raise ImageUnknown(f"{repository}:{tag} is not in the private registry.") from None
            raise
        if digest and manifest.digest != digest:
            raise ValidationError(
                {"digest": f"{repository}:{tag} now points to {manifest.digest}, not {digest}; nothing was deleted."}
            )
        going = _tags_of(repository, manifest.digest) | {tag}
        registry.delete_manifest(repository, manifest.digest)
    return _forget(actor, repository, manifest.digest, going)


def private_manifest_delete(*, actor: Actor, app: App, image: str, digest: str) -> Deleted:
    """Delete a manifest by digest, with every tag pointing to it."""
    repository = _repository(app, image)
    if not is_content_digest(digest):
        raise ValidationError({"digest": f"“{digest}” is not a digest like sha256:…"})
    with PrivateRegistry(settings.REGISTRY_URL) as registry:
        going = _tags_of(repository, digest)
        try:
            registry.delete_manifest(repository, digest)
        except RegistryError as e:
            if e.category in GONE:
                PrivateTag.objects.filter(image__repository=repository, digest=digest).delete()
                _drop_empty(repository)
                raise ImageUnknown(f"{repository}@{digest} is not in the private registry.") from None
            raise
    return _forget(actor, repository, digest, going)


def _tags_of(repository: str, digest: str) -> set[str]:
    return set(PrivateTag.objects.filter(image__repository=repository, digest=digest).values_list("tag", flat=True))


def _forget(actor: Actor, repository: str, digest: str, going: set[str]) -> Deleted:
    """Drop the deleted manifest's tags here. `going` was read before the registry deleted it:
    Distribution's delete notification may be handled first and remove the rows already."""
    with transaction.atomic():
        tags = PrivateTag.objects.filter(image__repository=repository, digest=digest)
        removed = going | set(tags.values_list("tag", flat=True))
        tags.delete()
        _drop_empty(repository)
    audit(actor=actor, action="private_image.delete", target=f"{repository}@{digest}", tags=sorted(removed))
    return Deleted(repository=repository, digest=digest, tags=sorted(removed))


def _drop_empty(repository: str) -> None:
    PrivateImage.objects.filter(repository=repository, tags__isnull=True).delete()
