"""The vendor's catalogue: apps (what a vendor ships, and which upstream repositories its
licenses may pull), the customer licenses to them, each pull through the proxy (the pull
log), and the slugs of deleted apps, never handed out again."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Team


class App(models.Model):
    """A product a vendor ships, owned by one team. Its slug is part of every image path (and
    of the private registry's repositories), so it never changes and is unique portal-wide;
    its registries are the team's that serve all apps or name this one."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="apps")
    name = models.CharField(max_length=100)
    slug = models.CharField(max_length=63, unique=True)
    # Which upstream repositories this app's licenses may pull: "host/repo" exactly, or
    # "host/prefix/*" for everything below. Empty: everything its registries hold.
    repository_rules = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class LicenseType(models.TextChoices):
    DEV = "dev", "Development"
    TRIAL = "trial", "Trial"
    PAID = "paid", "Paid"
    COMMUNITY = "community", "Community"


class License(models.Model):
    """A customer's right to pull an app's images. The license ID is the customer's credential:
    the database keeps a keyed hash to find it and an encrypted copy the vendor can show."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="licenses")
    customer_name = models.CharField(max_length=200)
    customer_email = models.EmailField(blank=True)
    type = models.CharField(max_length=16, choices=LicenseType.choices, default=LicenseType.PAID)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    lookup_hash = models.CharField(max_length=64, unique=True)
    license_id_encrypted = models.TextField()
    id_prefix = models.CharField(max_length=8)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_pull_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.customer_name} ({self.id_prefix}…) for {self.app}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_valid(self) -> bool:
        return not self.is_revoked and not self.is_expired

    @property
    def status(self) -> str:
        if self.is_revoked:
            return "revoked"
        if self.is_expired:
            return "expired"
        return "active"


class Refusal:
    """Why a pull was refused, as the license's pull log says it."""

    LICENSE_REVOKED = "license revoked"
    LICENSE_EXPIRED = "license expired"
    OTHER_APP = "other app"
    NOT_ALLOWED = "repository not allowed"
    UNKNOWN_REPOSITORY = "unknown repository"


class PullEvent(models.Model):
    """One manifest or blob request through the proxy: who, what, how much, and the outcome."""

    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="pulls")
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="pulls")
    repository = models.CharField(max_length=300)
    kind = models.CharField(max_length=10)  # manifest, blob, tags
    reference = models.CharField(max_length=200)
    status = models.PositiveSmallIntegerField()
    bytes = models.BigIntegerField(default=0)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.repository}@{self.reference} → {self.status}"


class RetiredSlug(models.Model):
    """The slug of a deleted app. Never handed out again: image paths, pull secrets and the
    private registry's repositories still name it, and a new owner would inherit them."""

    slug = models.CharField(max_length=63, unique=True)
    retired_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug
