from __future__ import annotations

from rest_framework import serializers

from licenses.models import App

AIRGAP_PLATFORMS_HELP = (
    "The platforms (os/arch or os/arch/variant, like linux/amd64) an air-gap bundle keeps of each "
    "multi-arch image; empty: every platform."
)


class AppSerializer(serializers.ModelSerializer):
    slug = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Defaults from the name; never changes."
    )
    created_by = serializers.SlugRelatedField(slug_field="email", read_only=True)
    repository_rules = serializers.ListField(
        child=serializers.CharField(max_length=300, allow_blank=True),
        read_only=True,
        help_text="Repositories licenses may pull besides the images of the releases promoted to their channel: "
        "host/repo or host/prefix/*.",
    )
    airgap_platforms = serializers.ListField(
        child=serializers.CharField(max_length=100, allow_blank=True),
        read_only=True,
        help_text=AIRGAP_PLATFORMS_HELP,
    )

    class Meta:
        model = App
        fields = ["slug", "name", "repository_rules", "airgap_platforms", "created_at", "created_by"]
        read_only_fields = ["created_at", "created_by"]
        extra_kwargs = {
            "name": {
                "max_length": 200,
                "error_messages": {"blank": "Enter a name for the app.", "required": "Enter a name for the app."},
            }
        }


class AppUpdateSerializer(AppSerializer):
    repository_rules = serializers.ListField(
        child=serializers.CharField(max_length=300, allow_blank=True),
        required=False,
        max_length=500,
        help_text="Repositories licenses may pull besides the images of the releases promoted to their channel: "
        "host/repo or host/prefix/*.",
    )

    airgap_platforms = serializers.ListField(
        child=serializers.CharField(max_length=100, allow_blank=True),
        required=False,
        max_length=100,
        help_text=AIRGAP_PLATFORMS_HELP,
    )

    class Meta(AppSerializer.Meta):
        read_only_fields = ["slug", "created_at", "created_by"]
