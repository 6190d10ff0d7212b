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
    # Upstream repositories this app's licenses may pull besides the images of the releases
    # promoted to their channel: "host/repo" exactly, or "host/prefix/*" for everything below.
    repository_rules = models.JSONField(default=list, blank=True)
    # The platforms air-gap bundles carry of each multi-arch image (["linux/amd64"]); empty: all.
    airgap_platforms = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        """A new app starts with the default channels (however it is created)."""
        new = self._state.adding
        super().save(*args, **kwargs)
        if new:
            Channel.objects.bulk_create(Channel(app=self, name=name) for name in DEFAULT_CHANNELS)


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
    # Which releases the customer gets: those promoted to this channel of the license's app.
    channel = models.ForeignKey("Channel", on_delete=models.PROTECT, related_name="licenses")

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


# --- releases and channels ------------------------------------------------------------------

DEFAULT_CHANNELS = ("stable", "beta", "unstable")


class Channel(models.Model):
    """A line of releases of an app (stable, beta, …). A license follows one channel; its
    current release is the last one promoted, and every release ever promoted stays pullable."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="channels")
    name = models.CharField(max_length=40)
    # Every release promoted here gets its air-gap bundle built at once.
    airgap = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["app", "pk"]
        constraints = [models.UniqueConstraint(fields=["app", "name"], name="channel_unique_name_per_app")]

    def __str__(self) -> str:
        return f"{self.app.slug}/{self.name}"


class ReleaseStatus(models.TextChoices):
    RESOLVING = "resolving", "Resolving images"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class Release(models.Model):
    """An immutable, numbered set of YAML files of an app: its settings (the `images:` list,
    `additionalNamespaces`) and its Kubernetes manifests."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="releases")
    sequence = models.PositiveIntegerField()
    version = models.CharField(max_length=64, blank=True)
    notes = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=ReleaseStatus.choices, default=ReleaseStatus.RESOLVING)
    additional_namespaces = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["app", "-sequence"]
        constraints = [models.UniqueConstraint(fields=["app", "sequence"], name="release_unique_sequence_per_app")]

    def __str__(self) -> str:
        return f"{self.app.slug} #{self.sequence}" + (f" ({self.version})" if self.version else "")


class ReleaseFile(models.Model):
    """One YAML file of a release, as uploaded (path relative to the release's folder)."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=255)
    content = models.TextField()

    class Meta:
        ordering = ["release", "path"]
        constraints = [models.UniqueConstraint(fields=["release", "path"], name="release_file_unique_path")]

    def __str__(self) -> str:
        return self.path


class ImageSource:
    """The two `source` values that are not a registry's name."""

    PUBLIC = "public"  # anonymous pulls; a name without a host is Docker Hub
    PRIVATE = "replicated"  # the portal's own registry: <registry>/<app>/<name>


class Visibility(models.TextChoices):
    UNKNOWN = "", "Not resolved"
    PUBLIC = "public", "Public"
    PRIVATE = "private", "Private"


class ReleaseImage(models.Model):
    """One entry of a release's `images:` list, and what resolving it found upstream.

    `host` and `repository` are where the image lives (`host` canonical, `host:port` for a
    port); for a registry source they are the registry's host and the listed name, for
    `public` the name's own host or Docker Hub, for `replicated` the portal's registry."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="images")
    position = models.PositiveIntegerField()
    source = models.CharField(max_length=100)
    name = models.CharField(max_length=255)
    tag = models.CharField(max_length=128, blank=True)
    digest = models.CharField(max_length=100, blank=True)  # as listed
    host = models.CharField(max_length=255, blank=True)
    repository = models.CharField(max_length=255, blank=True)
    # Found by resolving:
    resolved_digest = models.CharField(max_length=100, blank=True)
    media_type = models.CharField(max_length=100, blank=True)
    platforms = models.JSONField(default=list, blank=True)  # ["linux/amd64", …]
    size = models.BigIntegerField(null=True, blank=True)  # compressed: config + layers (largest platform)
    visibility = models.CharField(max_length=8, choices=Visibility.choices, blank=True, default="")

    class Meta:
        ordering = ["release", "position"]

    def __str__(self) -> str:
        return self.reference

    @property
    def reference(self) -> str:
        ref = f"{self.host}/{self.repository}" if self.host else self.name
        if self.tag:
            ref += f":{self.tag}"
        if self.digest:
            ref += f"@{self.digest}"
        return ref


class FindingLevel(models.TextChoices):
    ERROR = "error", "Error"
    WARNING = "warning", "Warning"
    INFO = "info", "Info"


class ReleaseFinding(models.Model):
    """A lint or resolve finding about a release: `LEVEL RULE FILE[:LINE] message`."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="findings")
    level = models.CharField(max_length=8, choices=FindingLevel.choices)
    rule = models.CharField(max_length=40)
    file = models.CharField(max_length=255, blank=True)
    line = models.PositiveIntegerField(null=True, blank=True)
    message = models.TextField()
    image = models.ForeignKey(ReleaseImage, on_delete=models.CASCADE, null=True, blank=True, related_name="findings")

    class Meta:
        ordering = ["release", "pk"]

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        return f"{self.level.upper()} {self.rule} {where} {self.message}"


class Promotion(models.Model):
    """A release promoted to a channel: the channel's history, newest first; the newest is
    its current release."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="promotions")
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="promotions")
    promoted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    promoted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["channel", "-promoted_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.release} → {self.channel.name}"
