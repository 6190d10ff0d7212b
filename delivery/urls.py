from django.urls import path

from delivery import views

app_name = "delivery"

urlpatterns = [
    path("licenses/<int:pk>/", views.license_detail, name="license-detail"),
    path("licenses/<int:pk>/pull-secret.yaml", views.license_pull_secret, name="license-pull-secret"),
]
