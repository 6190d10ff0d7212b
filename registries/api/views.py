from __future__ import annotations

from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from portal.api import TeamScopedMixin
from registries import services
from registries.api.serializers import (
    ExternalRegistrySerializer,
    ExternalRegistryUpdateSerializer,
    ExternalRegistryWriteSerializer,
    RegistryTestRequestSerializer,
    RegistryTestSerializer,
)
from registries.models import ExternalRegistry, RegistryTest


@method_decorator(sensitive_post_parameters(), name="dispatch")  # error reports show no form secrets
class ExternalRegistryViewSet(TeamScopedMixin, viewsets.ModelViewSet):
    """The team's external registries. Secrets are write-only: send them, never see them again."""

    queryset = ExternalRegistry.objects.select_related("last_image_test").prefetch_related("apps")
    serializer_class = ExternalRegistrySerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @extend_schema(request=ExternalRegistryWriteSerializer, responses={201: ExternalRegistrySerializer})
    @sensitive_variables("data")  # the serializer's repr holds the secrets it was given
    def create(self, request, *args, **kwargs):
        data = ExternalRegistryWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        registry = services.registry_create(actor=request.actor, **data.validated_data)
        return Response(ExternalRegistrySerializer(registry).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ExternalRegistryUpdateSerializer, responses=ExternalRegistrySerializer)
    @sensitive_variables("data")
    def partial_update(self, request, *args, **kwargs):
        registry = self.get_object()
        data = ExternalRegistryUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        registry = services.registry_update(actor=request.actor, registry=registry, **data.validated_data)
        return Response(ExternalRegistrySerializer(registry).data)

    def destroy(self, request, *args, **kwargs):
        services.registry_delete(actor=request.actor, registry=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=RegistryTestRequestSerializer, responses={202: RegistryTestSerializer, 429: None})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Queue a connection test with an image. Only `image` is accepted: a stored registry is
        always tested at its stored endpoint with its stored credentials."""
        registry = self.get_object()
        extra = sorted(set(request.data) - {"image"})
        if extra:
            raise exceptions.ValidationError(
                {extra[0]: ["override_not_allowed: a test uses the stored registry as saved; send only image."]}
            )
        data = RegistryTestRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            test = services.registry_test_request(
                actor=request.actor, registry=registry, image=data.validated_data["image"]
            )
        except services.TooManyTests as e:
            return Response(
                {"code": "rate_limited", "message": str(e)},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(e.retry_after)},
            )
        body = RegistryTestSerializer(test).data
        body["url"] = request.build_absolute_uri(reverse("api:registry-test-detail", args=[test.pk]))
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=RegistryTestSerializer(many=True))
    @action(detail=True, methods=["get"])
    def tests(self, request, pk=None):
        """The registry's test history, newest first."""
        page = self.paginate_queryset(self.get_object().tests.all())
        return self.get_paginated_response(RegistryTestSerializer(page, many=True).data)


class RegistryTestViewSet(TeamScopedMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A connection test's status and structured result."""

    queryset = RegistryTest.objects.select_related("registry")
    serializer_class = RegistryTestSerializer
    team_field = "registry__team"
