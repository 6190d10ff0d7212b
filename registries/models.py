"""External registries a team connects, with write-only encrypted credentials, and their tests."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Team
from licenses.models import App
from registries import providers, steps
from registries.providers import Provider


class Health(models.TextChoices):
    """The registry's credential health: can the portal reach it and log in. What one image's
    test found (a missing tag) is the test's, shown beside it (`last_image_test`)."""

    UNKNOWN = "unknown", "Not tested"
    HEALTHY = "healthy", "Healthy"
    UNHEALTHY = "unhealthy", "Unhealthy"
    CREDENTIALS_CHANGED = "credentials_changed", "Untested since the credentials changed"


class ExternalRegistry(models.Model):
    """A vendor's private registry. Its secret is stored only encrypted and never shown again."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="registries")
    name = models.CharField(max_length=63)
    provider = models.CharField(max_length=16, choices=Provider.choices)
    endpoint = models.CharField(max_length=255, help_text="host[:port][/prefix]; http://… for plain HTTP")
    username = models.CharField(max_length=255, blank=True)
    region = models.CharField(max_length=32, blank=True)
    realm_host = models.CharField(max_length=255, blank=True, help_text="A token realm host the vendor trusts")
    all_apps = models.BooleanField(default=True)
    apps = models.ManyToManyField(App, blank=True, related_name="registries")

    secret = models.TextField(blank=True)  # ciphertext of a JSON object; see providers.RULES (secrets)
    secret_updated_at = models.DateTimeField(null=True, blank=True)

    # Minted ECR/GCR tokens, encrypted like the secret and reused until shortly before expiry.
    minted_token = models.TextField(blank=True)
    minted_token_expires_at = models.DateTimeField(null=True, blank=True)

    health = models.CharField(max_length=32, choices=Health.choices, default=Health.UNKNOWN)
    health_reason = models.CharField(max_length=500, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_good_image = models.CharField(max_length=500, blank=True)
    # The last finished test, whatever it found about its image.
    last_image_test = models.ForeignKey(
        "RegistryTest", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # When the secret, user name, endpoint, region or realm last changed: a test requested
    # before then says nothing about the credentials stored now.
    credentials_changed_at = models.DateTimeField(null=True, blank=True)

    # The upstream's pull limit as it last said it (Docker Hub's `ratelimit-limit` and
    # `ratelimit-remaining` headers), seen by a connection test or a proxied request.
    rate_limit_limit = models.PositiveIntegerField(null=True, blank=True)
    rate_limit_remaining = models.PositiveIntegerField(null=True, blank=True)
    rate_limit_window = models.PositiveIntegerField(null=True, blank=True, help_text="seconds")
    rate_limit_seen_at = models.DateTimeField(null=True, blank=True)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "external registries"
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="registry_name_unique_per_team"),
            models.UniqueConstraint(fields=["team", "endpoint"], name="registry_endpoint_unique_per_team"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.endpoint})"

    @property
    def has_secret(self) -> bool:
        return bool(self.secret)

    @property
    def insecure(self) -> bool:
        return self.endpoint.startswith("http://")

    @property
    def mints_tokens(self) -> bool:
        return providers.mints_tokens(self.provider, self.username)

    @property
    def rate_limit(self) -> dict | None:
        """The pull limit last seen (limit, remaining, window in seconds, when), or None."""
        if self.rate_limit_seen_at is None:
            return None
        return {
            "limit": self.rate_limit_limit,
            "remaining": self.rate_limit_remaining,
            "window_seconds": self.rate_limit_window,
            "seen_at": self.rate_limit_seen_at,
        }


class CheckStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class RegistryTest(models.Model):
    """One connection test of a registry with one image; the history of a registry's health."""

    registry = models.ForeignKey(ExternalRegistry, on_delete=models.CASCADE, related_name="tests")
    image = models.CharField(max_length=500)
    status = models.CharField(max_length=16, choices=CheckStatus.choices, default=CheckStatus.QUEUED)
    category = models.CharField(max_length=32, blank=True)
    message = models.CharField(max_length=500, blank=True)
    result = models.JSONField(default=dict, blank=True)
    requested_by = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"test of {self.registry} with {self.image}: {self.status}"

    @property
    def done(self) -> bool:
        return self.status in (CheckStatus.SUCCEEDED, CheckStatus.FAILED)

    @property
    def image_finding(self) -> bool:
        """Failed on the image (not found, no access to it) while the credentials worked."""
        return self.status == CheckStatus.FAILED and steps.is_image_finding(self.category, self.result)

    @property
    def labelled_steps(self) -> list[dict]:
        return steps.labelled_steps(self.result)


class PrivateImage(models.Model):
    """A repository in the portal's private registry, `<app-slug>/<image>`, as its notifications
    (and refreshes from its API) reported it. Shown only while it has tags."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="private_images")
    repository = models.CharField(max_length=255, unique=True)  # the full name Distribution uses
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["repository"]

    def __str__(self) -> str:
        return self.repository

    @property
    def image(self) -> str:
        """The name below the app's slug: `api` for `acme-api/api`."""
        return self.repository.split("/", 1)[1]


class PrivateTag(models.Model):
    """A tag in the private registry and the manifest it points to."""

    image = models.ForeignKey(PrivateImage, on_delete=models.CASCADE, related_name="tags")
    tag = models.CharField(max_length=128)
    digest = models.CharField(max_length=200)
    media_type = models.CharField(max_length=255, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    # The push notification's time; null when a refresh from the registry's API found the tag.
    pushed_at = models.DateTimeField(null=True, blank=True)
    pushed_by = models.CharField(max_length=254, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = [models.F("pushed_at").desc(nulls_last=True), "tag"]
        constraints = [models.UniqueConstraint(fields=["image", "tag"], name="private_tag_unique_per_image")]

    def __str__(self) -> str:
        return f"{self.image.repository}:{self.tag}@{self.digest}"


class RegistryNotification(models.Model):
    """The id of a notification event already applied, so a redelivery changes nothing."""

    event_id = models.CharField(max_length=100, unique=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return self.event_id
