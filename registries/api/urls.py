"""The private registry's API routes, included under /api/v1/ (namespace `api`)."""

from django.urls import re_path

from registries.api import private_images
from registries.urls import DIGEST, IMAGE, TAG

APP = r"^apps/(?P<app_slug>[^/]+)/images"

urlpatterns = [
    re_path(rf"{APP}/?$", private_images.app_images, name="app-images"),
    re_path(rf"{APP}/(?P<image>{IMAGE})/tags/(?P<tag>{TAG})/?$", private_images.app_image_tag, name="app-image-tag"),
    re_path(
        rf"{APP}/(?P<image>{IMAGE})/manifests/(?P<digest>{DIGEST})/?$",
        private_images.app_image_manifest,
        name="app-image-manifest",
    ),
]
