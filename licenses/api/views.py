from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.response import Response

from licenses import services
from licenses.api.serializers import AppSerializer, AppUpdateSerializer
from licenses.models import App
from portal.api import TeamScopedMixin


class AppViewSet(TeamScopedMixin, viewsets.ModelViewSet):
    """The team's apps. The slug is unique across the portal and appears in image paths."""

    lookup_field = "slug"
    lookup_value_regex = "[^/]+"
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    queryset = App.objects.select_related("created_by")

    def get_serializer_class(self):
        return AppUpdateSerializer if self.action in ("update", "partial_update") else AppSerializer

    def create(self, request, *args, **kwargs):
        serializer = AppSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        app = services.app_create(actor=request.actor, **serializer.validated_data)
        return Response(AppSerializer(app).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AppUpdateSerializer)
    def update(self, request, *args, **kwargs):
        app = self.get_object()
        serializer = AppUpdateSerializer(app, data=request.data, partial=kwargs.pop("partial", False))
        serializer.is_valid(raise_exception=True)
        # One service, one transaction: a bad rule leaves the name unchanged too.
        services.app_update(
            actor=request.actor,
            app=app,
            name=serializer.validated_data.get("name"),
            repository_rules=serializer.validated_data.get("repository_rules"),
            airgap_platforms=serializer.validated_data.get("airgap_platforms"),
        )
        return Response(AppSerializer(app).data)

    @extend_schema(request=AppUpdateSerializer)
    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    def destroy(self, request, *args, **kwargs):
        services.app_delete(actor=request.actor, app=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
