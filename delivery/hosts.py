"""Which team a host may serve, and which doors answer on which host.

Three kinds of host name reach the portal:
- the portal's own: the configured ALLOWED_HOSTS (a `*` there counts for nothing here) and
  PORTAL_URL's host. They serve every team, as before custom domains.
- a team's verified custom domain (accounts.domains): a `proxy` domain serves that team's
  customer doors (/v2/: the proxy and the token service; /customer/v1/; the JWKS), a
  `registry` domain only the token service (/v2/token: Distribution serves the rest of that
  host's /v2/ behind the operator's front proxy, see docs/custom-domains.md). Only that team's
  licenses (and, at the registry, its members) are let in: customer_auth refuses another
  team's license exactly as it refuses a wrong one.
- with PORTAL_UI_HOST set, the UI host: it serves the pages and the API, and only it does;
  the customer doors never answer there, so upstream bytes never share an origin with a
  vendor's session.

A customer door on any other host (unknown, pending, lost, the UI host) answers 404 in that
door's shape; a page or API path on a host other than PORTAL_UI_HOST too. Without
PORTAL_UI_HOST the pages answer on the portal's own hosts, Django refusing others with 400.

HostRoutingMiddleware decides this once per request, second in both handlers' chains (after
portal/forwarded.py has settled which host the client asked for), and leaves the answer on
the request for customer_auth. A custom domain costs one look-up in the per-process map of
verified domains (a thread hop in the registry's async chain, which may not query the
database from the event loop); the portal's own hosts cost a comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.http import HttpResponse, HttpResponseNotFound, JsonResponse
from django.http.request import validate_host

from accounts import domains
from accounts.models import DomainKind
from licenses.models import App
from portal import hosts as allowed_hosts
from portal.lru import LRU
from portal.ocierrors import oci_error

CUSTOMER_PATHS = ("/v2/", "/customer/v1/", "/.well-known/jwks.json")
TOKEN_PATH = "/v2/token"
# Neither a page nor a customer door: the load balancer's probe answers on any host Django
# allows; Distribution's notifications and the Prometheus scrape on the portal's own hosts
# and the UI host (never a custom domain), whatever PORTAL_UI_HOST says.
HEALTH_PATH = "/healthz"
HOOKS_PATH = "/hooks/"
METRICS_PATH = "/metrics"


@dataclass(frozen=True)
class Served:
    """What a host serves at the customer doors: every team (team_id None, the portal's own
    host) or one team's licenses through a custom domain of `kind`."""

    host: str
    team_id: int | None = None
    kind: str = ""

    def serves_team(self, team_id: int | None) -> bool:
        return self.team_id is None or self.team_id == team_id

    @property
    def services(self) -> tuple[str, ...]:
        """The token services (`service=`) this host issues tokens for."""
        if self.kind == DomainKind.PROXY:
            return (settings.PROXY_SERVICE,)
        if self.kind == DomainKind.REGISTRY:
            return (settings.REGISTRY_SERVICE,)
        return (settings.PROXY_SERVICE, settings.REGISTRY_SERVICE)


def request_host(request) -> str:
    """The host the client asked for, bare (portal/forwarded.py has applied X-Forwarded-Host
    from a trusted proxy), without Django's validation, which is what this module decides."""
    meta = request.META
    return domains.bare_host(meta.get("HTTP_HOST") or meta.get("SERVER_NAME", ""))


def ui_host() -> str:
    return domains.bare_host(settings.PORTAL_UI_HOST) if settings.PORTAL_UI_HOST else ""


def is_own_host(host: str) -> bool:
    """One of the portal's own names for the customer doors (never the UI host)."""
    if not host or host == ui_host():
        return False
    configured = settings.ALLOWED_HOSTS
    if isinstance(configured, allowed_hosts.AllowedHosts):
        configured = configured.configured()
    patterns = [p for p in configured if p != "*"]
    patterns.append(urlsplit(settings.PORTAL_URL).hostname or "")
    return validate_host(host, [p for p in patterns if p])


def is_customer_path(path: str) -> bool:
    return path.startswith(CUSTOMER_PATHS)


def _custom(host: str, path: str) -> Served | None:
    owner = domains.domain_owner(host)
    if owner is None:
        return None
    if owner.kind == DomainKind.REGISTRY and path != TOKEN_PATH:
        return None
    return Served(host, owner.team_id, owner.kind)


def served(request) -> Served | None:
    """What the request's host serves at the customer doors (None: nothing, 404). Kept on the
    request by the middleware; worked out here for a request that skipped it."""
    if hasattr(request, "portal_served"):
        return request.portal_served
    host = request_host(request)
    return Served(host) if is_own_host(host) else _custom(host, request.path_info)


# An app never moves to another team, so a process may keep the answer (a Bearer token names
# the app, not the team; asking the database on every blob would cost the proxy a query).
_app_teams: LRU[int, int | None] = LRU(4096)


def app_team(app_id: int | None) -> int | None:
    if app_id is None:
        return None
    team_id = _app_teams.get(app_id)
    if team_id is None:
        team_id = App.objects.filter(pk=app_id).values_list("team_id", flat=True).first()
        if team_id is not None:
            _app_teams[app_id] = team_id
    return team_id


def _not_found(request) -> HttpResponse:
    """404 in the shape of the door asked for, naming nothing about the host."""
    path = request.path_info
    if path.startswith("/v2/"):
        return oci_error(404, "NAME_UNKNOWN", "nothing is served under /v2/ on this host")
    if path.startswith(("/customer/", "/api/", "/.well-known/")):
        return JsonResponse({"code": "not_found", "message": f"Nothing at {path} on this host."}, status=404)
    # A page: plain text, since the chain that would fill the page's template has not run.
    return HttpResponseNotFound("Not found on this host.\n", content_type="text/plain; charset=utf-8")


class HostRoutingMiddleware:
    """Second in MIDDLEWARE and REGISTRY_MIDDLEWARE (see the module's docstring)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _decide(self, request, host: str) -> HttpResponse | Served | None:
        """A 404, what a customer door serves, or None for a page (Django checks the host)."""
        path = request.path_info
        if path == HEALTH_PATH:
            return None
        if path.startswith(HOOKS_PATH) or path == METRICS_PATH:
            return None if is_own_host(host) or host == ui_host() else _not_found(request)
        if not is_customer_path(path):
            ui = ui_host()
            return _not_found(request) if ui and host != ui else None
        if is_own_host(host):
            return Served(host)
        return None  # a custom domain, maybe: the caller looks it up

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        host = request_host(request)
        decided = self._decide(request, host)
        if decided is None and is_customer_path(request.path_info):
            decided = _custom(host, request.path_info) or _not_found(request)
        return self._go_on(request, decided)

    async def _acall(self, request):
        host = request_host(request)
        decided = self._decide(request, host)
        if decided is None and is_customer_path(request.path_info):
            decided = await sync_to_async(_custom)(host, request.path_info) or _not_found(request)
        if isinstance(decided, HttpResponse):
            return decided
        if isinstance(decided, Served):
            request.portal_served = decided
            if decided.team_id is not None:
                with allowed_hosts.admitted(decided.host):
                    return await self.get_response(request)
        return await self.get_response(request)

    def _go_on(self, request, decided: HttpResponse | Served | None):
        if isinstance(decided, HttpResponse):
            return decided
        if isinstance(decided, Served):
            request.portal_served = decided
            if decided.team_id is not None:
                with allowed_hosts.admitted(decided.host):
                    return self.get_response(request)
        return self.get_response(request)
