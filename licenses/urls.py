from django.urls import path

from licenses import views

app_name = "licenses"

urlpatterns = [
    path("apps/", views.app_list, name="app-list"),
    path("apps/new/", views.app_create, name="app-create"),
    path("apps/slug-preview/", views.app_slug_preview, name="app-slug-preview"),
    path("apps/<str:slug>/", views.app_detail, name="app-detail"),
    path("apps/<str:slug>/delete/", views.app_delete, name="app-delete"),
    path("licenses/", views.license_list, name="license-list"),
]
