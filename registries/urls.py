from django.urls import path

from registries import views

app_name = "registries"

urlpatterns = [
    path("images/", views.image_list, name="image-list"),
    path("images/registries/new/", views.registry_create, name="create"),
    path("images/registries/<int:pk>/", views.registry_detail, name="detail"),
    path("images/registries/<int:pk>/edit/", views.registry_edit, name="edit"),
    path("images/registries/<int:pk>/delete/", views.registry_delete, name="delete"),
    path("images/registries/<int:pk>/test/", views.registry_test, name="test"),
    path("images/tests/<int:pk>/", views.test_result, name="test-result"),
]
