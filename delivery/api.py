"""The API's customer-delivery endpoints: a license's Kubernetes image pull secret, a preview
of its install kit, its download log, and a release's air-gap bundle (built by the same
service as the release page's button)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import customer_hosts
from delivery import downloads, installkit, pullsecret
from delivery.airgap import download
from delivery.airgap.bundles import bundle_of, bundle_request
from delivery.models import AirgapBundle, Download, DownloadKind
from licenses import services
from licenses.api.licenses import LicenseIdUnreadable
from licenses.models import License, Release
from portal.api import TeamScopedMixin
from portal.crypto import DecryptionError

RELEASE_DOWNLOADS_SHOWN = 20


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


# --- the download log and air-gap bundles ------------------------------------------------------


class DownloadSerializer(serializers.ModelSerializer):
    license = serializers.IntegerField(source="license_id", read_only=True)
    customer = serializers.CharField(source="license.customer_name", read_only=True)

    class Meta:
        model = Download
        fields = ["created_at", "kind", "license", "customer", "sequence", "range", "status", "bytes",
                  "address", "user_agent"]  # fmt: skip
        read_only_fields = fields


class BundleProgressSerializer(serializers.Serializer):
    images_done = serializers.IntegerField()
    images_total = serializers.IntegerField()
    bytes_done = serializers.IntegerField()
    bytes_total = serializers.IntegerField(help_text="Of the blobs to fetch, once known (0 before).")
    bytes_reused = serializers.IntegerField(help_text="Fetched by an earlier attempt, not again.")
    percent = serializers.IntegerField()


class AirgapBundleSerializer(serializers.ModelSerializer):
    """A release's air-gap bundle: its build's state and, once ready, what a customer downloads."""

    sequence = serializers.IntegerField(source="release.sequence", read_only=True)
    progress = serializers.SerializerMethodField()
    download_path = serializers.SerializerMethodField(
        help_text="Where a license on a channel this release was promoted to downloads it."
    )
    download_url = serializers.SerializerMethodField(
        help_text="The same on the host the team's customers are shown (its default custom proxy domain, if any)."
    )
    downloads = serializers.SerializerMethodField(help_text=f"The latest {RELEASE_DOWNLOADS_SHOWN}, newest first.")

    class Meta:
        model = AirgapBundle
        fields = [
            "sequence", "status", "progress", "platforms", "size", "sha256", "blob_count", "error", "attempts",
            "requested_by", "requested_at", "started_at", "finished_at", "download_path", "download_url", "downloads",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(BundleProgressSerializer)
    def get_progress(self, bundle: AirgapBundle) -> dict:
        fields = ("images_done", "images_total", "bytes_done", "bytes_total", "bytes_reused")
        return {**{f: getattr(bundle, f) for f in fields}, "percent": download.progress_percent(bundle)}

    def get_download_path(self, bundle: AirgapBundle) -> str:
        return download.customer_path(bundle.release.sequence)

    def get_download_url(self, bundle: AirgapBundle) -> str:
        path = download.customer_path(bundle.release.sequence)
        return customer_hosts.customer_url(bundle.release.app.team_id, path, self.context.get("request"))

    @extend_schema_field(DownloadSerializer(many=True))
    def get_downloads(self, bundle: AirgapBundle) -> list[dict]:
        rows = bundle.release.downloads.filter(kind=DownloadKind.AIRGAP).select_related("license")
        return DownloadSerializer(rows[:RELEASE_DOWNLOADS_SHOWN], many=True).data


class ReleaseAirgapView(APIView):
    """A release's air-gap bundle: GET its state, POST to build it (again)."""

    def release(self, request, app_slug: str, sequence: int) -> Release:
        return get_object_or_404(
            Release.objects.select_related("app"), app__slug=app_slug, app__team=request.actor.team, sequence=sequence
        )

    @extend_schema(responses=AirgapBundleSerializer)
    def get(self, request, app_slug: str, sequence: int):
        release = self.release(request, app_slug, sequence)
        bundle = bundle_of(release)
        if bundle is None:
            raise exceptions.NotFound(
                f"Release {release.sequence} has no air-gap bundle yet; build it with POST (or: "
                f"portal airgap build --app {release.app.slug} --release {release.sequence}).",
                code="no_bundle",
            )
        bundle.release = release
        return Response(AirgapBundleSerializer(bundle, context={"request": request}).data)

    @extend_schema(request=None, responses={202: AirgapBundleSerializer})
    def post(self, request, app_slug: str, sequence: int):
        """Build the bundle (again); a build queued or under way is answered as it is. 400
        naming `release` when the release is not ready."""
        release = self.release(request, app_slug, sequence)
        bundle = bundle_request(actor=request.actor, release=release)
        bundle.refresh_from_db()  # the queue may have refused the job once the request committed
        bundle.release = release
        return Response(
            AirgapBundleSerializer(bundle, context={"request": request}).data, status=status.HTTP_202_ACCEPTED
        )


class LicenseDownloadViewSet(TeamScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """A license's download log, newest first: air-gap bundles and install kits."""

    queryset = Download.objects.select_related("license")
    serializer_class = DownloadSerializer
    team_field = "license__app__team"

    def get_queryset(self):
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):
            return queryset
        license = get_object_or_404(License, pk=self.kwargs["pk"], app__team=self.request.actor.team)
        return downloads.license_downloads(license).select_related("license")
