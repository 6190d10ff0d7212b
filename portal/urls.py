from csp.decorators import csp_update
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from accounts.api import domains as domains_api
from accounts.api import views as accounts_api
from delivery import api as delivery_api
from insights import api as insights_api
from insights import views as insights_views
from licenses.api import licenses as license_api
from licenses.api import releases as release_api
from licenses.api import views as licenses_api
from portal import basic_views, views
from registries.api import views as registries_api

router = DefaultRouter()
router.trailing_slash = "/?"  # the constructor turns any truthy value into "/"
router.register("apps", licenses_api.AppViewSet, basename="app")
router.register(r"apps/(?P<app_slug>[^/]+)/licenses", license_api.AppLicenseViewSet, basename="app-license")
router.register(r"apps/(?P<app_slug>[^/]+)/channels", release_api.ChannelViewSet, basename="app-channel")
router.register(r"apps/(?P<app_slug>[^/]+)/releases", release_api.ReleaseViewSet, basename="app-release")
router.register(r"apps/(?P<app_slug>[^/]+)/pull-events", license_api.PullEventViewSet, basename="app-pull-event")
router.register("licenses", license_api.LicenseViewSet, basename="license")
router.register("tokens", accounts_api.TokenViewSet, basename="token")
router.register("service-accounts", accounts_api.ServiceAccountViewSet, basename="service-account")
router.register("members", accounts_api.MembershipViewSet, basename="member")
router.register("invites", accounts_api.InviteViewSet, basename="invite")
router.register("audit-events", accounts_api.AuditEventViewSet, basename="audit-event")
router.register("custom-domains", domains_api.CustomDomainViewSet, basename="custom-domain")
router.register("external-registries", registries_api.ExternalRegistryViewSet, basename="external-registry")
router.register("registry-tests", registries_api.RegistryTestViewSet, basename="registry-test")

api_urls = [
    re_path(
        r"^licenses/(?P<pk>\d+)/pull-secret/?$",
        delivery_api.LicensePullSecretViewSet.as_view({"get": "retrieve"}),
        name="license-pull-secret",
    ),
    re_path(
        r"^licenses/(?P<pk>\d+)/install-kit\.tar\.gz$",
        delivery_api.LicenseInstallKitViewSet.as_view({"get": "retrieve"}),
        name="license-install-kit",
    ),
    re_path(
        r"^licenses/(?P<pk>\d+)/downloads/?$",
        delivery_api.LicenseDownloadViewSet.as_view({"get": "list"}),
        name="license-downloads",
    ),
    re_path(
        r"^apps/(?P<app_slug>[^/]+)/releases/(?P<sequence>\d+)/airgap/?$",
        delivery_api.ReleaseAirgapView.as_view(),
        name="release-airgap",
    ),
    path("", include("registries.api.urls")),
    path("", include(router.urls)),
    path("team/", accounts_api.team_detail, name="team"),
    re_path(
        r"^apps/(?P<app_slug>[^/]+)/repository-rules/?$",
        release_api.RepositoryRulesView.as_view(),
        name="app-repository-rules",
    ),
    re_path(r"^analytics/pulls/?$", insights_api.pull_analytics, name="pull-analytics"),
    re_path(r"^health/?$", views.health_detail, name="health"),
    re_path(r"^license-signing-key/?$", license_api.license_signing_key, name="license-signing-key"),
    path("schema/", SpectacularAPIView.as_view(permission_classes=[], authentication_classes=[]), name="schema"),
    # The split view loads its start-up script from a URL (the CSP runs no inline script);
    # Swagger UI's page and bundle still style inline and draw icons from data: URLs, on this page only.
    path(
        "docs/",
        csp_update({"style-src": ["'unsafe-inline'"], "img-src": ["data:"]})(
            SpectacularSwaggerSplitView.as_view(
                url_name="api:schema",
                template_name="portal/api_docs.html",  # with a way back to the portal
                permission_classes=[],
                authentication_classes=[],
            )
        ),
        name="docs",
    ),
]

urlpatterns = [
    path("", insights_views.home, name="home"),
    path("healthz", basic_views.healthz, name="healthz"),
    path("metrics", basic_views.metrics, name="metrics"),
    path("", include("delivery.proxy.urls")),
    path("api/v1/", include((api_urls, "api"))),
    re_path(r"^api/", views.api_not_found),
    path("", include("accounts.urls")),
    path("", include("licenses.urls")),
    path("", include("delivery.urls")),
    path("", include("registries.urls")),
    path("", include("insights.urls")),
]

handler404 = "portal.basic_views.not_found"
handler403 = "portal.basic_views.forbidden"
handler500 = "portal.basic_views.server_error"
