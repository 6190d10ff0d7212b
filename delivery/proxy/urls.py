"""The /v2/ namespace: Docker token auth and the registry proxy (OCI distribution API)."""

from django.urls import path, re_path

from delivery import token_views
from delivery.proxy import blobs, views

urlpatterns = [
    path("v2/token", token_views.token, name="registry-token"),
    re_path(r"^v2/$", views.v2_root, name="v2-root"),
    re_path(r"^v2/_catalog/?$", views.catalog),
    re_path(r"^v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)$", views.manifest),
    re_path(r"^v2/(?P<name>.+)/blobs/(?P<digest>[^/]+)$", blobs.blob),
    re_path(r"^v2/(?P<name>.+)/tags/list$", views.tags_list),
    re_path(r"^v2/", views.unknown),
    path(".well-known/jwks.json", token_views.jwks, name="jwks"),
]
