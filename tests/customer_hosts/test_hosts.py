"""accounts/customer_hosts.py: the one answer to "which host does a customer of this team use"."""

from __future__ import annotations

import pytest

from accounts import customer_hosts, domains
from accounts.models import CustomDomain, DomainKind, DomainStatus
from tests.customer_hosts.conftest import PORTAL_REGISTRY, PROXY_DOMAIN, REGISTRY_DOMAIN

pytestmark = pytest.mark.django_db


def test_without_a_custom_domain_the_portal_hosts_are_used_as_before(team, rf):
    request = rf.get("/", HTTP_HOST="testserver")
    assert customer_hosts.proxy_host(team) == "portal.example.test"
    assert customer_hosts.proxy_host(team, request) == "testserver"
    assert customer_hosts.registry_host(team) == PORTAL_REGISTRY
    assert customer_hosts.customer_url(team, "/customer/v1/x") == "https://portal.example.test/customer/v1/x"
    assert customer_hosts.customer_url(team, "/customer/v1/x", request) == "http://testserver/customer/v1/x"


def test_the_default_verified_domains_are_used_with_https_and_no_port(team, custom_domains, rf):
    request = rf.get("/", HTTP_HOST="testserver")
    for given in (None, request):
        assert customer_hosts.proxy_host(team, given) == PROXY_DOMAIN
        assert customer_hosts.customer_url(team, "/customer/v1/x", given) == f"https://{PROXY_DOMAIN}/customer/v1/x"
    assert customer_hosts.registry_host(team) == REGISTRY_DOMAIN
    assert customer_hosts.registry_host(team.pk) == REGISTRY_DOMAIN  # an id works as the team


def test_each_kind_is_independent(team, add_domain):
    add_domain(team, REGISTRY_DOMAIN, DomainKind.REGISTRY)
    assert customer_hosts.proxy_host(team) == "portal.example.test"
    assert customer_hosts.registry_host(team) == REGISTRY_DOMAIN


def test_a_hidden_domain_is_never_used(team, hidden_domains, rf):
    request = rf.get("/", HTTP_HOST="testserver")
    assert customer_hosts.proxy_host(team, request) == "testserver"
    assert customer_hosts.registry_host(team) == PORTAL_REGISTRY
    assert customer_hosts.customer_url(team, "/p", request) == "http://testserver/p"


def test_another_teams_default_is_used_for_that_team_only(team, other_team, add_domain):
    add_domain(other_team, PROXY_DOMAIN, DomainKind.PROXY)
    assert customer_hosts.proxy_host(other_team) == PROXY_DOMAIN
    assert customer_hosts.proxy_host(team) == "portal.example.test"


def test_a_domain_that_is_lost_or_no_longer_default_stops_being_used_at_once(team, custom_domains):
    CustomDomain.objects.filter(kind=DomainKind.PROXY).update(status=DomainStatus.LOST)
    domains.forget()
    assert customer_hosts.proxy_host(team) == "portal.example.test"
    CustomDomain.objects.filter(kind=DomainKind.REGISTRY).update(is_default=False)
    domains.forget()
    assert customer_hosts.registry_host(team) == PORTAL_REGISTRY


def test_with_the_ui_on_its_own_host_customers_are_shown_portal_urls_host_not_the_uis(team, rf, settings):
    """PORTAL_UI_HOST keeps /v2/ and /customer/v1/ off the UI's host: a page seen there must
    not tell customers to pull or download from it."""
    settings.PORTAL_UI_HOST = "ui.example.test"
    request = rf.get("/", HTTP_HOST="ui.example.test")
    assert customer_hosts.proxy_host(team, request) == "portal.example.test"
    assert customer_hosts.customer_url(team, "/customer/v1/x", request) == "https://portal.example.test/customer/v1/x"
