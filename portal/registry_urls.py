"""The URLs of a web process that serves only the registry (PORTAL_WEB_ROLE=registry): the token
service and the proxy under /v2/, the health probe and /metrics. Nothing of the vendor's pages
or API is imported, so such a process holds ~30 MB less (README, "Benchmark")."""

from django.urls import include, path

from portal import basic_views

urlpatterns = [
    path("healthz", basic_views.healthz, name="healthz"),
    path("metrics", basic_views.metrics, name="metrics"),
    path("", include("delivery.proxy.urls")),
]

handler404 = "portal.basic_views.not_found"
handler403 = "portal.basic_views.forbidden"
handler500 = "portal.basic_views.server_error"
