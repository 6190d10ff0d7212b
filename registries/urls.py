from django.urls import path

from registries import views

app_name = "registries"

urlpatterns = [
    path("images/", views.image_list, name="image-list"),
]
