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
