from django.urls import path

from delivery import customer_views, views

app_name = "delivery"

urlpatterns = [
    path("licenses/<int:pk>/", views.license_detail, name="license-detail"),
    path("licenses/<int:pk>/pull-secret.yaml", views.license_pull_secret, name="license-pull-secret"),
    path("licenses/<int:pk>/install-kit.tar.gz", views.license_install_kit, name="license-install-kit"),
    path("customer/v1/install-kit.tar.gz", customer_views.install_kit, name="customer-install-kit"),
]
