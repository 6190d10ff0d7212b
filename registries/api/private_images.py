"""The private registry in the REST API: an app's images, deleting a tag or a manifest."""

from __future__ import annotations

from dataclasses import asdict

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import api_view
from rest_framework.response import Response

from licenses.models import App
from portal.outbound.errors import RegistryError
from registries import private_images
from registries.models import PrivateImage, PrivateTag


class PrivateTagSerializer(serializers.ModelSerializer):
    size = serializers.IntegerField(allow_null=True, help_text="The manifest's size in bytes.")
    pushed_at = serializers.DateTimeField(allow_null=True, help_text="Null when found by a refresh, not a push.")

    class Meta:
        model = PrivateTag
        fields = ["tag", "digest", "media_type", "size", "pushed_at", "pushed_by"]
        read_only_fields = fields


class PrivateImageSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="image", help_text="The image below the app's slug, e.g. api.")
    repository = serializers.CharField(help_text="The full name in the registry: <app-slug>/<image>.")
    reference = serializers.SerializerMethodField(help_text="What docker pull and push take, without a tag.")
    tags = PrivateTagSerializer(many=True)

    class Meta:
        model = PrivateImage
        fields = ["name", "repository", "reference", "tags"]
        read_only_fields = fields

    def get_reference(self, image: PrivateImage) -> str:
        return f"{self.context['registry']}/{image.repository}"


class PrivateImagesSerializer(serializers.Serializer):
    app = serializers.CharField()
    registry = serializers.CharField(help_text="The private registry's host, as vendors and customers use it.")
    refresh_error = serializers.CharField(help_text="Empty, or why the list comes from notifications alone.")
    repositories = PrivateImageSerializer(many=True)


class DeletedSerializer(serializers.Serializer):
    repository = serializers.CharField()
    digest = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField(), help_text="The tags that pointed to it.")


class RegistryUnavailable(exceptions.APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_code = "registry_unavailable"
    default_detail = "The private registry could not be reached."


def _app(request, app_slug: str) -> App:
    return get_object_or_404(App, slug=app_slug, team=request.actor.team)


@extend_schema(responses=PrivateImagesSerializer)
@api_view(["GET"])
def app_images(request, app_slug: str):
    """The app's repositories and tags in the private registry, from its notifications,
    refreshed from the registry's API when it answers."""
    app = _app(request, app_slug)
    problem = private_images.private_registry_refresh(apps=[app])
    registry = private_images.push_host(app.team_id)
    images = private_images.private_images(app)
    body = {
        "app": app.slug,
        "registry": registry,
        "refresh_error": problem,
        "repositories": PrivateImageSerializer(images, many=True, context={"registry": registry}).data,
    }
    return Response(body)


def _deleted(call) -> Response:
    try:
        deleted = call()
    except private_images.ImageUnknown as e:
        raise exceptions.NotFound(str(e)) from None
    except RegistryError as e:
        raise RegistryUnavailable(f"Nothing was deleted: {e.message}.") from None
    return Response(asdict(deleted))


@extend_schema(
    request=None,
    responses=DeletedSerializer,
    parameters=[OpenApiParameter("digest", str, description="Delete only if the tag still points to this digest.")],
)
@api_view(["DELETE"])
def app_image_tag(request, app_slug: str, image: str, tag: str):
    """Delete the manifest the tag points to, and so every tag pointing to the same manifest
    (Distribution deletes by digest)."""
    app = _app(request, app_slug)
    digest = request.query_params.get("digest", "")
    return _deleted(
        lambda: private_images.private_tag_delete(actor=request.actor, app=app, image=image, tag=tag, digest=digest)
    )


@extend_schema(request=None, responses=DeletedSerializer)
@api_view(["DELETE"])
def app_image_manifest(request, app_slug: str, image: str, digest: str):
    """Delete a manifest by digest, with every tag pointing to it."""
    app = _app(request, app_slug)
    return _deleted(
        lambda: private_images.private_manifest_delete(actor=request.actor, app=app, image=image, digest=digest)
    )
