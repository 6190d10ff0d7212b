from __future__ import annotations

from rest_framework import serializers

from registries.models import ExternalRegistry, Health, RegistryTest
from registries.providers import Provider


def _secret_field(help_text: str) -> serializers.CharField:
    """Write-only: accepted on create/update, never part of any response."""
    return serializers.CharField(
        write_only=True, required=False, allow_blank=True, trim_whitespace=False, max_length=70_000, help_text=help_text
    )


class StepSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="ping, auth, manifest or blob")
    label = serializers.CharField(help_text="The step's name as the pages show it, e.g. “Log in”.")
    outcome = serializers.CharField(help_text="ok, failed or skipped")
    latency_ms = serializers.IntegerField(allow_null=True)
    detail = serializers.CharField(allow_blank=True)
    category = serializers.CharField(allow_null=True)


class ImageResultSerializer(serializers.ModelSerializer):
    """The last finished test: what it found about its image, apart from the registry's health."""

    test = serializers.IntegerField(source="pk")
    image_finding = serializers.BooleanField(
        help_text="Failed on the image (e.g. not found) while the credentials worked: the registry stays healthy."
    )

    class Meta:
        model = RegistryTest
        fields = ["test", "image", "status", "category", "message", "image_finding", "finished_at"]
        read_only_fields = fields


class RateLimitSerializer(serializers.Serializer):
    """The pull limit the upstream last stated in its headers (Docker Hub's `ratelimit-*`)."""

    limit = serializers.IntegerField(allow_null=True, help_text="Pulls allowed per window.")
    remaining = serializers.IntegerField(allow_null=True, help_text="Pulls left in the window when it was seen.")
    window_seconds = serializers.IntegerField(allow_null=True, help_text="The window's length in seconds.")
    seen_at = serializers.DateTimeField(help_text="When a connection test or a proxied pull saw it.")


class ExternalRegistrySerializer(serializers.ModelSerializer):
    apps = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    token_expires_at = serializers.DateTimeField(source="minted_token_expires_at", read_only=True)
    health = serializers.ChoiceField(
        choices=Health.choices,
        help_text="The credentials' health (can the portal reach the registry and log in), not one image's.",
    )
    health_label = serializers.CharField(source="get_health_display", help_text="The health as the pages say it.")
    last_image_result = ImageResultSerializer(source="last_image_test", allow_null=True)
    rate_limit = RateLimitSerializer(
        allow_null=True, help_text="The upstream's pull limit as last seen; null when it never stated one."
    )

    class Meta:
        model = ExternalRegistry
        fields = [
            "id", "name", "provider", "endpoint", "username", "region", "realm_host", "all_apps", "apps",
            "insecure", "has_secret", "secret_updated_at", "health", "health_label", "health_reason",
            "last_checked_at", "last_image_result", "last_good_image", "credentials_changed_at",
            "token_expires_at", "rate_limit", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class ExternalRegistryWriteSerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=Provider.choices)
    endpoint = serializers.CharField(required=False, allow_blank=True, max_length=300)
    name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    username = serializers.CharField(
        required=False, allow_blank=True, max_length=300, help_text="ECR: the access key ID; GCR/GAR: leave blank."
    )
    region = serializers.CharField(required=False, allow_blank=True, max_length=40, help_text="ECR only")
    realm_host = serializers.CharField(required=False, allow_blank=True, max_length=300)
    apps = serializers.ListField(
        child=serializers.CharField(max_length=63), required=False, help_text="App slugs; empty serves all apps."
    )
    password = _secret_field("Registry password")
    token = _secret_field("Access token (Docker Hub, GHCR, GAR)")
    secret_access_key = _secret_field("ECR: the AWS secret access key")
    service_account_key = _secret_field("GCR/GAR: the service-account JSON key")
    skip_validation = serializers.BooleanField(required=False, default=False)


class ExternalRegistryUpdateSerializer(ExternalRegistryWriteSerializer):
    provider = None  # a registry keeps its provider

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        values.pop("provider", None)
        return values


class RegistryTestRequestSerializer(serializers.Serializer):
    image = serializers.CharField(max_length=500, help_text="e.g. acme/api:1.0.0 or acme/api@sha256:…")


class RegistryTestSerializer(serializers.ModelSerializer):
    registry = serializers.CharField(source="registry.name", read_only=True)
    done = serializers.BooleanField(read_only=True)
    image_finding = serializers.BooleanField(
        read_only=True, help_text="Failed on the image while the credentials worked (the registry stays healthy)."
    )
    steps = StepSerializer(source="labelled_steps", many=True, read_only=True, help_text="The steps, in order.")

    class Meta:
        model = RegistryTest
        fields = [
            "id", "registry", "image", "status", "done", "category", "message", "image_finding", "steps",
            "result", "requested_by", "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields
