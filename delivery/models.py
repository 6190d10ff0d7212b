"""What the customer-facing layer keeps: air-gap bundles and the license's download log."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from licenses.models import License, Release


class BundleStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    BUILDING = "building", "Building"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class AirgapBundle(models.Model):
    """Every image of a release by digest, its files and a signed SHA256SUMS, in one tar.

    One per release: building again replaces it. Progress is counted while it builds; a failed
    build says which image and why (`error`), and a retry reuses the blobs already fetched."""

    release = models.OneToOneField(Release, on_delete=models.CASCADE, related_name="airgap_bundle")
    status = models.CharField(max_length=16, choices=BundleStatus.choices, default=BundleStatus.QUEUED)
    # The platforms asked for (empty: every platform of each index).
    platforms = models.JSONField(default=list, blank=True)
    images_total = models.PositiveIntegerField(default=0)
    images_done = models.PositiveIntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0)  # of the blobs to fetch, once known
    bytes_done = models.BigIntegerField(default=0)
    bytes_reused = models.BigIntegerField(default=0)  # already fetched by an earlier attempt
    blob_count = models.PositiveIntegerField(default=0)  # distinct digests in the bundle
    size = models.BigIntegerField(null=True, blank=True)  # of the tar
    sha256 = models.CharField(max_length=64, blank=True)  # of the tar
    storage_key = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)  # which image failed and why
    attempts = models.PositiveIntegerField(default=0)
    requested_by = models.CharField(max_length=254, blank=True)  # who asked: an email or a job
    requested_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"air-gap bundle of {self.release} ({self.status})"

    @property
    def filename(self) -> str:
        return f"{self.release.app.slug}-{self.release.sequence}-airgap.tar"


class DownloadKind(models.TextChoices):
    AIRGAP = "airgap", "Air-gap bundle"
    INSTALL_KIT = "install-kit", "Install kit"


class Download(models.Model):
    """A customer's download with their license: what, which release, from where, how much."""

    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="downloads")
    kind = models.CharField(max_length=16, choices=DownloadKind.choices)
    release = models.ForeignKey(Release, on_delete=models.SET_NULL, null=True, blank=True, related_name="downloads")
    sequence = models.PositiveIntegerField(null=True, blank=True)  # kept if the release is deleted
    range = models.CharField(max_length=100, blank=True)  # the Range asked for, when one was
    status = models.PositiveSmallIntegerField()
    bytes = models.BigIntegerField(default=0)  # bytes sent (or, redirected to storage, offered)
    address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.kind} #{self.sequence} by {self.license_id} → {self.status}"


class CachedObject(models.Model):
    """A blob or a manifest the proxy keeps, by digest, for one team (delivery/proxy/cache.py).

    Its bytes are in the cache's storage under `team-<id>/…`; a row exists only once they are
    there and their digest checked out. `last_used_at` orders the eviction (least recently used
    first); it is moved at most once a minute per object, so a hit rarely writes."""

    BLOB = "blob"
    MANIFEST = "manifest"

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(max_length=71)
    kind = models.CharField(max_length=8, choices=[(BLOB, "blob"), (MANIFEST, "manifest")])
    size = models.BigIntegerField()
    media_type = models.CharField(max_length=100, blank=True)  # a manifest's, as served
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "digest"], name="cached_object_once_per_team")]

    def __str__(self) -> str:
        return f"{self.kind} {self.digest} (team {self.team_id})"


class CachedLink(models.Model):
    """That the upstream repository served this object: a cached object is served for a
    repository only when linked to it, as a registry serves a blob only from repositories
    that hold it (a license for one repository must not reach another's bytes by digest)."""

    object = models.ForeignKey(CachedObject, on_delete=models.CASCADE, related_name="links")
    registry = models.ForeignKey("registries.ExternalRegistry", on_delete=models.CASCADE, related_name="+")
    repository = models.CharField(max_length=255)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["object", "registry", "repository"], name="cached_link_once")]
        indexes = [models.Index(fields=["registry", "repository"])]

    def __str__(self) -> str:
        return f"{self.object_id} in {self.registry_id}/{self.repository}"


class CachedTag(models.Model):
    """The digest an upstream tag last named and when it was asked (PROXY_TAG_TTL)."""

    registry = models.ForeignKey("registries.ExternalRegistry", on_delete=models.CASCADE, related_name="+")
    repository = models.CharField(max_length=255)
    tag = models.CharField(max_length=128)
    digest = models.CharField(max_length=71)
    fetched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["registry", "repository", "tag"], name="cached_tag_once")]

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag} → {self.digest}"
