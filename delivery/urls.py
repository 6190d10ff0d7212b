from django.urls import path

from delivery import customer_views, views
from delivery.airgap import views as airgap_views

app_name = "delivery"

urlpatterns = [
    path("licenses/<int:pk>/", views.license_detail, name="license-detail"),
    path("licenses/<int:pk>/pull-secret.yaml", views.license_pull_secret, name="license-pull-secret"),
    path("licenses/<int:pk>/install-kit.tar.gz", views.license_install_kit, name="license-install-kit"),
    path("customer/v1/install-kit.tar.gz", customer_views.install_kit, name="customer-install-kit"),
    path("customer/v1/airgap/latest.tar", customer_views.airgap_bundle, name="customer-airgap-latest"),
    path("customer/v1/airgap/<int:sequence>.tar", customer_views.airgap_bundle, name="customer-airgap"),
    path("apps/<str:slug>/releases/<int:sequence>/airgap/build/", airgap_views.bundle_build, name="airgap-build"),
    path("apps/<str:slug>/releases/<int:sequence>/airgap/status/", airgap_views.bundle_status, name="airgap-status"),
]
