"""The API's customer-delivery endpoints: a license's Kubernetes image pull secret."""

from __future__ import annotations

from django.views.decorators.debug import sensitive_variables
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets

from delivery import pullsecret
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
