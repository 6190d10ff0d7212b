from __future__ import annotations

from rest_framework import serializers

from accounts.models import ApiToken, AuditEvent, Invite, Membership, Role, TokenAccess


class TokenSerializer(serializers.ModelSerializer):
    """A token as listed: never its secret, only the prefix that identifies it."""

    created_by = serializers.SlugRelatedField(slug_field="email", read_only=True)
    active = serializers.BooleanField(source="is_active", read_only=True, help_text="Neither revoked nor expired.")

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "kind",
            "access",
            "prefix",
            "active",
            "created_at",
            "created_by",
            "last_used_at",
            "revoked_at",
            "expires_at",
        ]
        read_only_fields = fields


class NewTokenSerializer(TokenSerializer):
    """The create response: the only time the token itself is ever shown."""

    token = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="Refused from then on; omit or null: never expires."
    )


class ServiceAccountCreateSerializer(TokenCreateSerializer):
    access = serializers.ChoiceField(choices=TokenAccess.choices, default=TokenAccess.READ_ONLY)


class MembershipSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.name", read_only=True)
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta:
        model = Membership
        fields = ["id", "email", "name", "role", "created_at"]
        read_only_fields = ["id", "email", "name", "created_at"]


class InviteSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="email", read_only=True)
    usable = serializers.BooleanField(source="is_usable", read_only=True)
    role = serializers.ChoiceField(choices=Role.choices)
    email = serializers.CharField(required=False, allow_blank=True, max_length=254)

    class Meta:
        model = Invite
        fields = [
            "id",
            "role",
            "email",
            "usable",
            "created_by",
            "created_at",
            "expires_at",
            "accepted_at",
            "revoked_at",
        ]
        read_only_fields = ["id", "usable", "created_by", "created_at", "expires_at", "accepted_at", "revoked_at"]


class NewInviteSerializer(InviteSerializer):
    url = serializers.CharField(read_only=True, help_text="The invite link; shown once.")

    class Meta(InviteSerializer.Meta):
        fields = [*InviteSerializer.Meta.fields, "url"]


class TeamSerializer(serializers.Serializer):
    name = serializers.CharField()
    slug = serializers.CharField()
    role = serializers.CharField()
    acting_as = serializers.CharField()


class AuditEventSerializer(serializers.ModelSerializer):
    """An audit entry; `detail` is written without secrets by the services that record it."""

    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "actor", "action", "target", "detail", "address"]
        read_only_fields = fields
