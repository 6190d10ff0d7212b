"""What the tests of customer-facing hosts share: the portal's own hosts, Acme's default
verified custom domains, and the domains that must never be shown (pending, lost, verified
but not the default, another team's default). Domains are rows made here, as the domain
services would leave them (the DNS check is tested with them); `forget()` after each change."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from accounts import domains
from accounts.models import CustomDomain, DomainKind, DomainStatus, Team

PORTAL_REGISTRY = "registry.example.test:5000"
PROXY_DOMAIN = "proxy.vendor.test"
REGISTRY_DOMAIN = "registry.vendor.test"
KINDS = {DomainKind.PROXY: PROXY_DOMAIN, DomainKind.REGISTRY: REGISTRY_DOMAIN}
# Never shown: each case makes a proxy and a registry domain of its own names.
HIDDEN = ["pending", "lost", "verified but not default", "another team's default"]


@pytest.fixture(autouse=True)
def portal_hosts(settings):
    """The portal's own hosts: the request's (testserver) or PORTAL_URL's, and REGISTRY_HOST."""
    settings.PORTAL_URL = "https://portal.example.test"
    settings.REGISTRY_HOST = PORTAL_REGISTRY
    yield
    domains.forget()


@pytest.fixture
def add_domain(db) -> Callable[..., CustomDomain]:
    def add(team: Team, domain: str, kind: str, *, status: str = DomainStatus.VERIFIED, is_default: bool = True):
        row = CustomDomain.objects.create(
            team=team, domain=domain, kind=kind, status=status, is_default=is_default, challenge="c" * 32
        )
        domains.forget()
        return row

    return add


@pytest.fixture
def custom_domains(team, add_domain) -> dict[str, CustomDomain]:
    """Acme's default verified domains: proxy.vendor.test and registry.vendor.test."""
    return {kind: add_domain(team, domain, kind) for kind, domain in KINDS.items()}


@pytest.fixture(params=HIDDEN)
def hidden_domains(request, team, other_team, add_domain) -> str:
    """Domains of both kinds that Acme's customers must not be shown; returns the case."""
    case = request.param
    for kind, domain in KINDS.items():
        if case == "pending":
            add_domain(team, domain, kind, status=DomainStatus.PENDING)
        elif case == "lost":
            add_domain(team, domain, kind, status=DomainStatus.LOST)
        elif case == "verified but not default":
            add_domain(team, domain, kind, is_default=False)
        else:
            add_domain(other_team, domain, kind)
    return case
