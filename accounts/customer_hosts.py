"""The hosts a team's customers are shown, the one answer every page, download, API answer and
license file gives: the team's default verified custom domain of that kind (accounts/domains.py
`team_host`), else the portal's own host, as before custom domains:

- the proxy (and the customer's downloads under /customer/v1/): the host the request came in
  on, else PORTAL_URL's (always PORTAL_URL's when PORTAL_UI_HOST keeps the UI apart);
- the private registry: REGISTRY_HOST.

A custom domain is served by the operator's front proxy on https's standard port, so its URLs
are `https://<domain>/…` with no port. A pending, lost or non-default domain is never shown.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings

from accounts.domains import PROXY, REGISTRY, team_host
from accounts.models import Team


def host_of(url: str) -> str:
    """`host[:port]` of a URL, without any user info."""
    return urlsplit(url).netloc.rpartition("@")[2]


def own_proxy_host(request=None) -> str:
    """The portal's own proxy host: the one this request came in on, else PORTAL_URL's. With
    PORTAL_UI_HOST set, always PORTAL_URL's: the UI's host never answers `/v2/`."""
    if request is not None and not settings.PORTAL_UI_HOST:
        return request.get_host()
    return host_of(settings.PORTAL_URL)


def own_registry_host() -> str:
    """The portal's own private registry host (REGISTRY_HOST)."""
    return settings.REGISTRY_HOST


def proxy_host(team: Team | int, request=None) -> str:
    """Where the team's customers pull through the proxy (`docker login`, image names, Secrets)."""
    return team_host(team, PROXY, "") or own_proxy_host(request)


def registry_host(team: Team | int) -> str:
    """Where the team's private registry images are pushed and pulled."""
    return team_host(team, REGISTRY, "") or own_registry_host()


def customer_url(team: Team | int, path: str, request=None) -> str:
    """The absolute URL of a customer download (`/customer/v1/…`) on the team's proxy host:
    https on its custom domain; otherwise as the request came in, else under PORTAL_URL."""
    domain = team_host(team, PROXY, "")
    if domain:
        return f"https://{domain}{path}"
    if request is not None and not settings.PORTAL_UI_HOST:
        return request.build_absolute_uri(path)
    return settings.PORTAL_URL + path
