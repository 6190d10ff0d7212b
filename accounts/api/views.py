from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import api_view
from rest_framework.response import Response

from accounts import services
from accounts.access import Perm
from accounts.api.serializers import (
    AuditEventSerializer,
    InviteSerializer,
    MembershipSerializer,
    NewInviteSerializer,
    NewTokenSerializer,
    ServiceAccountCreateSerializer,
    TeamSerializer,
    TokenCreateSerializer,
    TokenSerializer,
)
from accounts.audit_log import audit_events
from accounts.models import ApiToken, AuditEvent, Invite, Membership, TokenKind
from portal.api import Pagination, TeamScopedMixin


class _RevokeMixin:
    def destroy(self, request, *args, **kwargs):
        services.token_revoke(actor=request.actor, token=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenViewSet(
    TeamScopedMixin,
    _RevokeMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your personal API tokens in the current team; they act as you, with your role."""

    serializer_class = TokenSerializer
    write_perm = Perm.READ  # anyone may manage their own tokens; they never exceed their role

    queryset = ApiToken.objects.filter(kind=TokenKind.USER).select_related("created_by")

    def get_queryset(self):
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):
            return queryset
        if self.request.actor.user is None:
            raise exceptions.PermissionDenied("Service accounts have no personal tokens.")
        return queryset.filter(user=self.request.actor.user)

    @extend_schema(request=TokenCreateSerializer, responses={201: NewTokenSerializer})
    def create(self, request):
        self.get_queryset()  # the same refusal for service accounts
        data = TokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, secret = services.token_create(actor=request.actor, kind=TokenKind.USER, **data.validated_data)
        token.token = secret
        return Response(NewTokenSerializer(token).data, status=status.HTTP_201_CREATED)


class ServiceAccountViewSet(
    TeamScopedMixin,
    _RevokeMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The team's service accounts: named tokens for automation, read-only or read/write."""

    serializer_class = TokenSerializer
    write_perm = Perm.ADMIN

    queryset = ApiToken.objects.filter(kind=TokenKind.SERVICE).select_related("created_by")

    @extend_schema(request=ServiceAccountCreateSerializer, responses={201: NewTokenSerializer})
    def create(self, request):
        data = ServiceAccountCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, secret = services.token_create(actor=request.actor, kind=TokenKind.SERVICE, **data.validated_data)
        token.token = secret
        return Response(NewTokenSerializer(token).data, status=status.HTTP_201_CREATED)


class MembershipViewSet(TeamScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The team's members and their roles."""

    serializer_class = MembershipSerializer
    write_perm = Perm.ADMIN
    http_method_names = ["get", "patch", "delete", "head", "options"]

    queryset = Membership.objects.select_related("user")

    def partial_update(self, request, *args, **kwargs):
        membership = self.get_object()
        data = MembershipSerializer(membership, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        if "role" in data.validated_data:
            membership = services.membership_set_role(
                actor=request.actor, membership=membership, role=data.validated_data["role"]
            )
        return Response(MembershipSerializer(membership).data)

    def destroy(self, request, *args, **kwargs):
        services.membership_remove(actor=request.actor, membership=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class InviteViewSet(TeamScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Invite links to join the team with a role."""

    serializer_class = InviteSerializer
    read_perm = Perm.ADMIN
    write_perm = Perm.ADMIN
    http_method_names = ["get", "post", "delete", "head", "options"]

    queryset = Invite.objects.select_related("created_by")

    @extend_schema(request=InviteSerializer, responses={201: NewInviteSerializer})
    def create(self, request):
        data = InviteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invite, secret = services.invite_create(actor=request.actor, **data.validated_data)
        invite.url = request.build_absolute_uri(reverse("accounts:invite-accept", args=[secret]))
        return Response(NewInviteSerializer(invite).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        services.invite_revoke(actor=request.actor, invite=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("action", description="Exact action, or a prefix ending in a dot: `registry.`"),
            OpenApiParameter("actor", description="Who acted, as shown (an email or `service account NAME`)"),
            OpenApiParameter("since", description="ISO date or date-time; events at or after it"),
            OpenApiParameter("until", description="ISO date (inclusive) or date-time; events before it"),
        ]
    )
)
class AuditEventViewSet(TeamScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The team's audit trail, newest first. Admins only: service accounts are never admins."""

    serializer_class = AuditEventSerializer
    pagination_class = Pagination
    read_perm = Perm.ADMIN
    write_perm = Perm.ADMIN

    queryset = AuditEvent.objects.all()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False) or self.action != "list":
            return super().get_queryset()
        params = self.request.query_params
        return audit_events(
            self.request.actor.team,
            **{key: params.get(key, "") for key in ("action", "actor", "since", "until")},
        )


@extend_schema(responses=TeamSerializer)
@api_view(["GET"])
def team_detail(request):
    """The team the caller acts for, their role, and who they are."""
    actor = request.actor
    return Response(
        TeamSerializer(
            {"name": actor.team.name, "slug": actor.team.slug, "role": actor.role, "acting_as": actor.label}
        ).data
    )
