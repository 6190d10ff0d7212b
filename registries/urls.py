from django.urls import path, re_path

from registries import hooks, views

app_name = "registries"

# Private registry references in paths: an image below the app's slug, a tag, a digest.
IMAGE = r"[a-z0-9._-]+(?:/[a-z0-9._-]+)*"
TAG = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
DIGEST = r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+"

urlpatterns = [
    path("images/", views.image_list, name="image-list"),
    path("images/registries/new/", views.registry_create, name="create"),
    path("images/registries/<int:pk>/", views.registry_detail, name="detail"),
    path("images/registries/<int:pk>/edit/", views.registry_edit, name="edit"),
    path("images/registries/<int:pk>/delete/", views.registry_delete, name="delete"),
    path("images/registries/<int:pk>/test/", views.registry_test, name="test"),
    path("images/tests/<int:pk>/", views.test_result, name="test-result"),
    re_path(
        rf"^images/private/(?P<app_slug>[^/]+)/(?P<image>{IMAGE})/tags/(?P<tag>{TAG})/delete/$",
        views.private_tag_delete,
        name="private-tag-delete",
    ),
    re_path(
        rf"^images/private/(?P<app_slug>[^/]+)/(?P<image>{IMAGE})/manifests/(?P<digest>{DIGEST})/delete/$",
        views.private_manifest_delete,
        name="private-manifest-delete",
    ),
    path("hooks/registry", hooks.registry_notifications, name="registry-notifications"),
]
