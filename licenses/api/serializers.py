from __future__ import annotations

from rest_framework import serializers

from licenses.models import App


class AppSerializer(serializers.ModelSerializer):
    slug = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Defaults from the name; never changes."
    )
    created_by = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = App
        fields = ["slug", "name", "created_at", "created_by"]
        read_only_fields = ["created_at", "created_by"]
        extra_kwargs = {
            "name": {
                "max_length": 200,
                "error_messages": {"blank": "Enter a name for the app.", "required": "Enter a name for the app."},
            }
        }


class AppUpdateSerializer(AppSerializer):
    class Meta(AppSerializer.Meta):
        read_only_fields = ["slug", "created_at", "created_by"]
