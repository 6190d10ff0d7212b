from django.urls import path

from licenses import release_views, views

app_name = "licenses"

urlpatterns = [
    path("apps/", views.app_list, name="app-list"),
    path("apps/new/", views.app_create, name="app-create"),
    path("apps/slug-preview/", views.app_slug_preview, name="app-slug-preview"),
    path("apps/<str:slug>/", views.app_detail, name="app-detail"),
    path("apps/<str:slug>/delete/", views.app_delete, name="app-delete"),
    path("apps/<str:slug>/licenses/", views.app_licenses, name="app-licenses"),
    path("apps/<str:slug>/repository-access/", views.app_repository_rules, name="app-repository-rules"),
    path("apps/<str:slug>/airgap-platforms/", views.app_airgap_platforms, name="app-airgap-platforms"),
    path("apps/<str:slug>/releases/", release_views.release_list, name="release-list"),
    path("apps/<str:slug>/releases/new/", release_views.release_create, name="release-create"),
    path("apps/<str:slug>/releases/<int:sequence>/", release_views.release_detail, name="release-detail"),
    path("apps/<str:slug>/releases/<int:sequence>/status/", release_views.release_status, name="release-status"),
    path("apps/<str:slug>/releases/<int:sequence>/promote/", release_views.release_promote, name="release-promote"),
    path("apps/<str:slug>/releases/<int:sequence>/diff/", release_views.release_diff, name="release-diff"),
    path("apps/<str:slug>/channels/", release_views.channel_list, name="channel-list"),
    path("apps/<str:slug>/channels/<str:name>/edit/", release_views.channel_edit, name="channel-edit"),
    path("licenses/", views.license_list, name="license-list"),
    path("licenses/new/", views.license_create, name="license-create"),
    path("licenses/<int:pk>/edit/", views.license_edit, name="license-edit"),
    path("licenses/<int:pk>/revoke/", views.license_revoke, name="license-revoke"),
    path("licenses/<int:pk>/unrevoke/", views.license_unrevoke, name="license-unrevoke"),
    path("licenses/<int:pk>/license.yaml", views.license_file, name="license-file"),
]
