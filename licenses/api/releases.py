"""Releases, channels and repository rules of an app in the REST API.

A release is uploaded as multipart/form-data (an `archive` .tar.gz, or `files` parts) or as
JSON (`{"files": {"path": "text"}}`); the same services as the pages lint it, store it and
promote it. Lint errors answer 400 with every finding, and nothing is stored. These upload
endpoints are the only ones of the API that read multipart bodies.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, OuterRef, Prefetch, Subquery
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import Perm
from licenses import releases, services
from licenses.api.scoping import AppScopedMixin
from licenses.findings import ERROR, Finding, has_errors
from licenses.lint import LintResult
from licenses.models import App, Channel, Promotion, Release, ReleaseFile, ReleaseFinding, ReleaseImage
from licenses.release_files import MAX_ARCHIVE_BYTES, MAX_FILE_BYTES, MAX_FILES, read_files, read_tarball
from portal.api import JSONParser

# --- serializers -------------------------------------------------------------------------


class FindingSerializer(serializers.ModelSerializer):
    image = serializers.IntegerField(
        source="image.position", read_only=True, allow_null=True, help_text="The image's position in images[]."
    )
    text = serializers.SerializerMethodField(help_text="The finding as one line: LEVEL RULE FILE[:LINE] message.")

    class Meta:
        model = ReleaseFinding
        fields = ["level", "rule", "file", "line", "message", "image", "text"]
        read_only_fields = fields

    def get_text(self, finding: ReleaseFinding) -> str:
        return str(finding)


class ImageSerializer(serializers.ModelSerializer):
    digest = serializers.SerializerMethodField(help_text="As listed, else as resolved (empty until resolved).")
    listed_digest = serializers.CharField(source="digest", read_only=True, help_text="The digest the list gave.")
    findings = FindingSerializer(many=True, read_only=True)

    class Meta:
        model = ReleaseImage
        fields = [
            "position", "source", "name", "tag", "digest", "listed_digest", "resolved_digest", "host", "repository",
            "visibility", "platforms", "size", "media_type", "findings",
        ]  # fmt: skip
        read_only_fields = fields

    def get_digest(self, image: ReleaseImage) -> str:
        return image.digest or image.resolved_digest


class ReleaseSerializer(serializers.ModelSerializer):
    """A release as listed."""

    created_by = serializers.SlugRelatedField(slug_field="email", read_only=True)
    channels = serializers.SerializerMethodField(help_text="The channels it was promoted to, most recent first.")

    class Meta:
        model = Release
        fields = ["sequence", "version", "notes", "status", "created_by", "created_at", "resolved_at", "channels"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_channels(self, release: Release) -> list[str]:
        # promotions are prefetched newest first; a channel it was promoted to twice appears once
        return list(dict.fromkeys(p.channel.name for p in release.promotions.all()))


class ReleaseDetailSerializer(ReleaseSerializer):
    """One release: its images (with what resolving found), its findings and its files."""

    images = ImageSerializer(many=True, read_only=True)
    findings = FindingSerializer(many=True, read_only=True)
    files = serializers.SerializerMethodField(help_text="The paths of its YAML files.")

    class Meta(ReleaseSerializer.Meta):
        fields = [*ReleaseSerializer.Meta.fields, "additional_namespaces", "images", "findings", "files"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_files(self, release: Release) -> list[str]:
        return [f.path for f in release.files.all()]


class ReleaseMetaSerializer(serializers.Serializer):
    """What a release carries besides its files; the service checks lengths and the channel."""

    version = serializers.CharField(required=False, allow_blank=True, help_text="A label such as 1.4.2.")
    notes = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    promote = serializers.CharField(
        required=False, allow_blank=True, help_text="A channel to promote the release to once it is stored."
    )


class ReleaseMultipartSerializer(ReleaseMetaSerializer):
    """For the schema: the multipart form (the view reads the file parts itself)."""

    archive = serializers.FileField(
        required=False, help_text=f"A .tar.gz of the YAML files, at most {MAX_ARCHIVE_BYTES // 2**20} MiB."
    )
    files = serializers.ListField(
        child=serializers.FileField(),
        required=False,
        help_text=f"The YAML files, one part each (at most {MAX_FILES}); folders are dropped from their names, "
        "so send an archive to keep them.",
    )


class ReleaseJSONSerializer(ReleaseMetaSerializer):
    """For the schema: the JSON form."""

    files = serializers.DictField(child=serializers.CharField(), help_text='{"path.yaml": "its text", …}')


class LintFindingSerializer(serializers.Serializer):
    level = serializers.CharField()
    rule = serializers.CharField()
    file = serializers.CharField()
    line = serializers.IntegerField(allow_null=True)
    message = serializers.CharField()
    image = serializers.IntegerField(allow_null=True)
    text = serializers.CharField()


class LintSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="No errors: a release of these files would be accepted.")
    findings = LintFindingSerializer(many=True)
    lines = serializers.ListField(child=serializers.CharField(), help_text="The findings, one line each.")
    images = serializers.ListField(child=serializers.DictField(), help_text="The images: list as read.")
    additional_namespaces = serializers.ListField(child=serializers.CharField())


class PromoteSerializer(serializers.Serializer):
    channel = serializers.CharField(help_text="The channel's name, such as stable.")


class ChannelSerializer(serializers.ModelSerializer):
    current_release = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The sequence of the release last promoted to it."
    )
    current_version = serializers.CharField(read_only=True, allow_null=True)
    license_count = serializers.IntegerField(read_only=True, help_text="Licenses that follow this channel.")
    airgap = serializers.BooleanField(
        read_only=True, help_text="Each release promoted to it gets its air-gap bundle built."
    )

    class Meta:
        model = Channel
        fields = ["name", "airgap", "current_release", "current_version", "license_count", "created_at"]
        read_only_fields = fields


class PromotionSerializer(serializers.ModelSerializer):
    sequence = serializers.IntegerField(source="release.sequence", read_only=True)
    version = serializers.CharField(source="release.version", read_only=True)
    promoted_by = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = Promotion
        fields = ["sequence", "version", "promoted_by", "promoted_at"]
        read_only_fields = fields


class ChannelDetailSerializer(ChannelSerializer):
    history = PromotionSerializer(source="promotions", many=True, read_only=True, help_text="Newest first.")

    class Meta(ChannelSerializer.Meta):
        fields = [*ChannelSerializer.Meta.fields, "history"]
        read_only_fields = fields


class ChannelCreateSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="Lowercase letters, digits and hyphens, like lts-2026.")
    airgap = serializers.BooleanField(
        required=False, default=False, help_text="Build the air-gap bundle of each release promoted to it."
    )


class ChannelUpdateSerializer(serializers.Serializer):
    airgap = serializers.BooleanField(help_text="Build the air-gap bundle of each release promoted to it.")


class RepositoryRulesSerializer(serializers.Serializer):
    repository_rules = serializers.ListField(
        child=serializers.CharField(max_length=300, allow_blank=True),
        max_length=500,
        help_text="Repositories licenses may pull besides the images of the releases promoted to their "
        "channel: host/repo or host/prefix/*. An empty list: only released images.",
    )


# --- reading an upload -------------------------------------------------------------------


def release_files_from(request) -> dict[str, str]:
    """{path: text} of an upload: multipart `archive` or `files` parts, or JSON `files`."""
    if request.content_type.startswith("multipart/"):
        archive = request.FILES.get("archive")
        parts = request.FILES.getlist("files")
        if archive is not None and parts:
            raise ValidationError({"files": ["Send an archive or files, not both."]})
        if archive is not None:
            # One byte past the limit is enough for read_tarball to say the archive is too large.
            return read_tarball(archive.read(MAX_ARCHIVE_BYTES + 1))
        if parts:
            if len(parts) > MAX_FILES:
                raise ValidationError({"files": [f"A release holds at most {MAX_FILES} YAML files."]})
            return read_files([(part.name, part.read(MAX_FILE_BYTES + 1)) for part in parts])
        raise ValidationError(
            {"files": ["Send the release's YAML as an `archive` part (.tar.gz) or as `files` parts."]}
        )
    files = request.data.get("files") if isinstance(request.data, dict) else None
    if files is None:
        raise ValidationError({"files": ['Send {"files": {"path.yaml": "its text", …}}, or a multipart upload.']})
    if not isinstance(files, dict) or not all(isinstance(text, str) for text in files.values()):
        raise ValidationError({"files": ['"files" maps each path to its text: {"app.yaml": "images: …"}.']})
    return read_files([(path, text.encode()) for path, text in files.items()])


def finding_dict(finding: Finding) -> dict[str, Any]:
    """A finding not stored (a lint's) in the shape of a stored one."""
    return {**finding.as_dict(), "image": None, "text": str(finding)}


def lint_answer(result: LintResult) -> dict[str, Any]:
    return {
        "ok": not has_errors(result.findings),
        "findings": [finding_dict(f) for f in result.findings],
        "lines": [str(f) for f in result.findings],
        "images": [
            {"source": i.source, "name": i.name, "tag": i.tag, "digest": i.digest, "file": i.file, "line": i.line}
            for i in result.settings.images
        ],
        "additional_namespaces": result.settings.additional_namespaces,
    }


def lint_failed_response(findings: list[Finding]) -> Response:
    """400 in the API's error shape, with every finding (warnings too) as objects and as lines."""
    errors = [str(f) for f in findings if f.level == ERROR]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    body = {
        "code": "invalid",
        "message": f"files: {errors[0]}{more}",
        "errors": {"files": errors},
        "findings": [finding_dict(f) for f in findings],
        "lines": [str(f) for f in findings],
    }
    return Response(body, status=status.HTTP_400_BAD_REQUEST)


# --- views -------------------------------------------------------------------------------


class ChannelViewSet(AppScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """An app's channels (stable, beta, unstable, and any the vendor adds), each with its current release."""

    queryset = Channel.objects.all()
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_serializer_class(self):
        return ChannelDetailSerializer if self.action == "retrieve" else ChannelSerializer

    def get_queryset(self):
        last = Promotion.objects.filter(channel=OuterRef("pk")).order_by("-promoted_at", "-pk")
        queryset = (
            super()
            .get_queryset()
            .annotate(
                current_release=Subquery(last.values("release__sequence")[:1]),
                current_version=Subquery(last.values("release__version")[:1]),
                license_count=Count("licenses"),
            )
            .order_by("pk")  # the aggregate drops Meta.ordering; stable, beta, unstable, then the vendor's
        )
        if self.action == "retrieve":
            queryset = queryset.prefetch_related(
                Prefetch("promotions", queryset=Promotion.objects.select_related("release", "promoted_by"))
            )
        return queryset

    @extend_schema(request=ChannelCreateSerializer, responses={201: ChannelSerializer})
    def create(self, request, *args, **kwargs):
        data = ChannelCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        channel = releases.channel_create(
            actor=request.actor, app=self.app(), name=data.validated_data["name"], airgap=data.validated_data["airgap"]
        )
        return Response(ChannelSerializer(self.get_queryset().get(pk=channel.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ChannelUpdateSerializer, responses=ChannelSerializer)
    def partial_update(self, request, *args, **kwargs):
        """Mark the channel air gap (its promoted releases get their bundles built) or not."""
        channel = self.get_object()
        data = ChannelUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        releases.channel_update(actor=request.actor, channel=channel, airgap=data.validated_data["airgap"])
        return Response(ChannelSerializer(self.get_queryset().get(pk=channel.pk)).data)


class ReleaseViewSet(AppScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """An app's releases, newest first: create (upload and lint), promote, and lint without storing."""

    queryset = Release.objects.select_related("created_by")
    lookup_field = "sequence"
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "post", "head", "options"]
    parser_classes = [JSONParser, MultiPartParser]

    def initial(self, request, *args, **kwargs):
        if self.action == "lint":  # stores nothing: a read, open to viewers
            self.write_perm = Perm.READ
        super().initial(request, *args, **kwargs)

    def get_serializer_class(self):
        return ReleaseSerializer if self.action == "list" else ReleaseDetailSerializer

    def get_queryset(self):
        queryset = (
            super()
            .get_queryset()
            .prefetch_related(Prefetch("promotions", queryset=Promotion.objects.select_related("channel")))
        )
        if self.action != "list":
            findings = ReleaseFinding.objects.select_related("image")
            queryset = queryset.prefetch_related(
                Prefetch("images", queryset=ReleaseImage.objects.prefetch_related(Prefetch("findings", findings))),
                Prefetch("findings", queryset=findings),
                Prefetch("files", queryset=ReleaseFile.objects.only("pk", "release_id", "path")),
            )
        return queryset

    @extend_schema(
        request={"multipart/form-data": ReleaseMultipartSerializer, "application/json": ReleaseJSONSerializer},
        responses={201: ReleaseDetailSerializer},
    )
    def create(self, request, *args, **kwargs):
        """Upload a release: linted first; lint errors answer 400 with every finding, and nothing is stored."""
        app = self.app()
        meta = ReleaseMetaSerializer(data=request.data)
        meta.is_valid(raise_exception=True)
        files = release_files_from(request)
        try:
            release, _ = releases.release_create(
                actor=request.actor,
                app=app,
                files=files,
                version=meta.validated_data.get("version", ""),
                notes=meta.validated_data.get("notes", ""),
                promote_to=meta.validated_data.get("promote", ""),
            )
        except releases.LintFailed as e:
            return lint_failed_response(e.findings)
        return Response(
            ReleaseDetailSerializer(self.get_queryset().get(pk=release.pk)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=PromoteSerializer, responses=ReleaseDetailSerializer)
    @action(detail=True, methods=["post"], parser_classes=[JSONParser])
    def promote(self, request, *args, **kwargs):
        """Make this release the channel's current one; licenses on the channel get it."""
        release = self.get_object()
        data = PromoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        releases.release_promote(actor=request.actor, release=release, channel=data.validated_data["channel"])
        return Response(ReleaseDetailSerializer(self.get_queryset().get(pk=release.pk)).data)

    @extend_schema(
        request={"multipart/form-data": ReleaseMultipartSerializer, "application/json": ReleaseJSONSerializer},
        responses=LintSerializer,
    )
    @action(detail=False, methods=["post"])
    def lint(self, request, *args, **kwargs):
        """Lint files as a release upload would, storing nothing; `ok` is false when there are errors."""
        app = self.app()
        files = release_files_from(request)
        return Response(lint_answer(releases.lint_files(app, files)))


class RepositoryRulesView(APIView):
    """The repositories an app's licenses may pull besides its released images; PUT replaces the list."""

    def app(self, request, app_slug: str) -> App:
        return get_object_or_404(App, slug=app_slug, team=request.actor.team)

    @extend_schema(responses=RepositoryRulesSerializer)
    def get(self, request, app_slug: str):
        return Response({"repository_rules": self.app(request, app_slug).repository_rules})

    @extend_schema(request=RepositoryRulesSerializer, responses=RepositoryRulesSerializer)
    def put(self, request, app_slug: str):
        app = self.app(request, app_slug)
        data = RepositoryRulesSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        app = services.app_set_repository_rules(
            actor=request.actor, app=app, rules=data.validated_data["repository_rules"]
        )
        return Response({"repository_rules": app.repository_rules})
