"""The API's customer-delivery endpoints: a license's Kubernetes image pull secret and a
preview of its install kit."""

from __future__ import annotations

from django.views.decorators.debug import sensitive_variables
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, viewsets

from delivery import installkit, pullsecret
from licenses import services
from licenses.api.licenses import LicenseIdUnreadable
from licenses.models import License
from portal.api import TeamScopedMixin
from portal.crypto import DecryptionError


class LicensePullSecretViewSet(TeamScopedMixin, viewsets.GenericViewSet):
    queryset = License.objects.select_related("app")
    team_field = "app__team"
    lookup_value_regex = r"\d+"

    @extend_schema(
        parameters=[
            OpenApiParameter("namespace", str, description="Kubernetes namespace for the Secret (a DNS-1123 label).")
        ],
        responses={(200, "application/yaml"): OpenApiTypes.STR},
    )
    @sensitive_variables("license_id")
    def retrieve(self, request, *args, **kwargs):
        """The customer's Kubernetes image pull secret (YAML) for the proxy and the private registry;
        it holds the license ID."""
        license = self.get_object()
        namespace = pullsecret.validate_namespace(request.query_params.get("namespace"))
        try:
            license_id = services.license_id_of(license)
        except DecryptionError:
            raise LicenseIdUnreadable() from None
        return pullsecret.download(request, license, license_id, namespace=namespace)


class LicenseInstallKitViewSet(TeamScopedMixin, viewsets.GenericViewSet):
    queryset = License.objects.select_related("app", "channel")
    team_field = "app__team"
    lookup_value_regex = r"\d+"

    def perform_content_negotiation(self, request, force=False):
        """A client may ask for the kit by its type (Accept: application/gzip); errors still go out as JSON."""
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "sequence",
                int,
                description="A release ever promoted to the license's channel (default: its current release).",
            ),
            OpenApiParameter(
                "secret_name",
                str,
                description="The pull secret's name (a DNS-1123 subdomain; default: <app>-registry).",
            ),
        ],  # fmt: skip
        responses={(200, "application/gzip"): OpenApiTypes.BINARY},
    )
    @sensitive_variables("license_id")
    def retrieve(self, request, *args, **kwargs):
        """The license's install kit (.tar.gz), byte for byte what its customer downloads from
        /customer/v1/install-kit.tar.gz; it holds the license ID."""
        license = self.get_object()
        sequence, secret_name = installkit.kit_options(request.query_params)
        try:
            license_id = services.license_id_of(license)
        except DecryptionError:
            raise LicenseIdUnreadable() from None
        try:
            return installkit.download(request, license, license_id, sequence=sequence, secret_name=secret_name)
        except installkit.NoRelease as e:
            raise exceptions.NotFound(str(e)) from None
