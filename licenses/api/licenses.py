"""Licenses, pull events and the license signing key in the REST API.

Lists never carry license IDs (the customers' credentials); a license's own page does, as
does the create response, so the vendor can hand the ID over or read it again later.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, time

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action, api_view, authentication_classes, permission_classes
from rest_framework.response import Response

from accounts.access import Perm
from licenses import licensefile, selectors, services
from licenses.api.scoping import AppScopedMixin
from licenses.models import App, License, LicenseType, PullEvent
from licenses.selectors import LICENSE_STATUSES
from licenses.services import ID_PREFIX_LENGTH
from portal.api import TeamScopedMixin
from portal.crypto import DecryptionError

logger = logging.getLogger(__name__)

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --- serializers -------------------------------------------------------------------------


class LicenseSerializer(serializers.ModelSerializer):
    """A license as listed: everything but the license ID."""

    app = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    status = serializers.CharField(read_only=True, help_text="active, expired or revoked")
    created_by = serializers.SlugRelatedField(slug_field="email", read_only=True)
    channel = serializers.SlugRelatedField(
        slug_field="name", read_only=True, help_text="The channel whose releases the customer gets."
    )

    class Meta:
        model = License
        fields = [
            "id", "app", "customer_name", "customer_email", "type", "channel", "status", "expires_at", "revoked_at",
            "id_prefix", "created_at", "created_by", "updated_at", "last_pull_at",
        ]  # fmt: skip
        read_only_fields = fields


class LicenseDetailSerializer(LicenseSerializer):
    """One license, with its license ID (null when the stored copy cannot be decrypted)."""

    license_id = serializers.SerializerMethodField(help_text="The customer's credential; keep it private.")

    class Meta(LicenseSerializer.Meta):
        fields = [*LicenseSerializer.Meta.fields, "license_id"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    @sensitive_variables()
    def get_license_id(self, license: License) -> str | None:
        known = getattr(license, "plain_license_id", None)  # just created: no need to decrypt
        if known:
            return known
        try:
            return services.license_id_of(license)
        except DecryptionError as e:
            logger.warning("license %s: the stored license ID cannot be decrypted (%s)", license.pk, e)
            return None


class ExpiryField(serializers.DateTimeField):
    """ISO 8601; a date alone means the license works through that whole day (UTC), as on the pages."""

    def to_internal_value(self, value):
        if isinstance(value, str) and DATE_RE.match(value.strip()):
            try:
                day = date.fromisoformat(value.strip())
            except ValueError:
                self.fail("invalid", format="YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss][+HH:MM|Z]")
            return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
        return super().to_internal_value(value)


class LicenseWriteSerializer(serializers.Serializer):
    """What a vendor may set; the service checks values and names the field of any problem."""

    customer_name = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    customer_email = serializers.CharField(required=False, allow_blank=True)
    type = serializers.CharField(
        required=False, allow_blank=True, help_text=f"One of {', '.join(LicenseType.values)}; default paid."
    )
    expires_at = ExpiryField(
        required=False, allow_null=True, help_text="ISO 8601; a date alone: through that day (UTC). Null: never."
    )
    channel = serializers.CharField(
        required=False, help_text="The app's channel the license follows, by name; default stable."
    )


class LicenseLookupSerializer(serializers.Serializer):
    license_id = serializers.CharField(max_length=200, trim_whitespace=True)


class PullEventSerializer(serializers.ModelSerializer):
    customer_name = serializers.CharField(source="license.customer_name", read_only=True)

    class Meta:
        model = PullEvent
        fields = [
            "id", "license", "customer_name", "repository", "kind", "reference", "status", "bytes", "reason",
            "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class LicenseIdUnreadable(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "credential_corrupt"
    default_detail = (
        "This license's ID cannot be decrypted with the configured encryption keys; "
        "restore the key that sealed it, or issue the customer a new license."
    )


class LicenseFileUnavailable(exceptions.APIException):
    """The portal cannot sign license files now (the signing key is misconfigured); the page
    says the same and makes no file."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "license_file_unavailable"
    default_detail = "The license file cannot be signed; the operator must fix LICENSE_SIGNING_KEY_FILE."


# --- views -------------------------------------------------------------------------------


LIST_PARAMETERS = [
    OpenApiParameter(
        "search",
        str,
        description="Customer name or email contains it, or the license ID: its first "
        f"{ID_PREFIX_LENGTH} characters or fewer, or the whole ID.",
    ),
    OpenApiParameter("status", str, enum=LICENSE_STATUSES),
    OpenApiParameter("app", str, description="Only this app's licenses (by slug)."),
]


@extend_schema_view(list=extend_schema(parameters=LIST_PARAMETERS))
class LicenseViewSet(TeamScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The team's licenses across its apps; licenses are revoked, never deleted."""

    queryset = License.objects.select_related("app", "created_by", "channel")
    team_field = "app__team"
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_serializer_class(self):
        return LicenseSerializer if self.action == "list" else LicenseDetailSerializer

    def initial(self, request, *args, **kwargs):
        if self.action == "lookup":  # a read, sent as POST to keep the license ID out of URLs and logs
            self.write_perm = Perm.READ
        super().initial(request, *args, **kwargs)

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        params = self.request.query_params
        if params.get("app"):
            queryset = queryset.filter(app__slug=params["app"])
        wanted = params.get("status", "").strip()
        if wanted and wanted not in LICENSE_STATUSES:
            raise exceptions.ValidationError({"status": [f"Choose one of: {', '.join(LICENSE_STATUSES)}."]})
        return selectors.license_search(queryset, params.get("search", ""), wanted)

    @extend_schema(request=LicenseWriteSerializer, responses=LicenseDetailSerializer)
    def partial_update(self, request, *args, **kwargs):
        license = self.get_object()
        data = LicenseWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        if data.validated_data:
            license = services.license_update(actor=request.actor, license=license, **data.validated_data)
        return Response(LicenseDetailSerializer(license).data)

    @extend_schema(request=None, responses=LicenseDetailSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, *args, **kwargs):
        """Revoke: the customer's pulls fail within seconds. Revoking twice changes nothing."""
        license = self.get_object()
        if not license.is_revoked:
            services.license_revoke(actor=request.actor, license=license)
        return Response(LicenseDetailSerializer(license).data)

    @extend_schema(request=None, responses=LicenseDetailSerializer)
    @action(detail=True, methods=["post"])
    def unrevoke(self, request, *args, **kwargs):
        """Restore a revoked license (an expired one stays expired until its expiry is extended)."""
        license = self.get_object()
        if license.is_revoked:
            services.license_unrevoke(actor=request.actor, license=license)
        return Response(LicenseDetailSerializer(license).data)

    @extend_schema(responses={(200, "application/yaml"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"], url_path="license-file")
    @sensitive_variables("license_id")
    def license_file(self, request, *args, **kwargs):
        """The signed license file (YAML) to hand the customer; it holds the license ID."""
        license = self.get_object()
        try:
            license_id = services.license_id_of(license)
        except DecryptionError:
            raise LicenseIdUnreadable() from None
        try:
            text = licensefile.render_license_file(license, license_id)
        except licensefile.LicenseFileError as e:  # the signing key is misconfigured
            logger.warning("license %s: the license file cannot be signed: %s", license.pk, e)
            raise LicenseFileUnavailable(f"The license file cannot be signed: {e}.") from None
        response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{license_file_name(license)}"'
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(request=LicenseLookupSerializer, responses=LicenseDetailSerializer)
    @action(detail=False, methods=["post"])
    def lookup(self, request, *args, **kwargs):
        """The license with this license ID, if it belongs to one of the team's apps."""
        data = LicenseLookupSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        found = services.license_find(data.validated_data["license_id"])
        license = get_object_or_404(self.get_queryset(), pk=found.pk if found else None)
        return Response(LicenseDetailSerializer(license).data)


class AppLicenseViewSet(AppScopedMixin, LicenseViewSet):
    """One app's licenses: create them here; list with `search` and `status`."""

    @extend_schema(request=LicenseWriteSerializer, responses={201: LicenseDetailSerializer})
    def create(self, request, *args, **kwargs):
        app = self.app()
        data = LicenseWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = {k: v for k, v in data.validated_data.items() if v is not None}
        values.setdefault("customer_name", "")
        license, license_id = services.license_create(actor=request.actor, app=app, **values)
        license.plain_license_id = license_id
        return Response(LicenseDetailSerializer(license).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(parameters=[OpenApiParameter("license", int, description="Only this license's pulls.")])
)
class PullEventViewSet(TeamScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """An app's pull log, newest first: each manifest and blob request through the proxy."""

    queryset = PullEvent.objects.select_related("license").order_by("-created_at", "-pk")
    serializer_class = PullEventSerializer
    team_field = "app__team"

    def get_queryset(self):
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):
            return queryset
        app = get_object_or_404(App, slug=self.kwargs["app_slug"], team=self.request.actor.team)
        queryset = queryset.filter(app=app)
        wanted = self.request.query_params.get("license", "").strip()
        if wanted:
            if not wanted.isdigit():
                raise exceptions.ValidationError({"license": ["Give a license's numeric id."]})
            queryset = queryset.filter(license_id=int(wanted))
        return queryset


def license_file_name(license: License) -> str:
    return f"{license.app.slug}-{license.id_prefix}.license.yaml"


@extend_schema(responses={(200, "application/x-pem-file"): OpenApiTypes.STR}, auth=[])
@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
def license_signing_key(request):
    """The public Ed25519 key (PEM) license files are signed with; anyone may fetch it."""
    try:
        pem = licensefile.public_key_pem()
    except licensefile.LicenseFileError as e:
        logger.warning("the license signing key is unusable: %s", e)
        # Anyone may ask: say what is wrong, not where the key file lives.
        raise LicenseFileUnavailable("The license signing key is not available; tell the portal's operator.") from None
    return HttpResponse(pem, content_type="application/x-pem-file")
