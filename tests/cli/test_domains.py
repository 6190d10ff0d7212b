"""`portal domain add|verify|ls|default|rm` against the live portal and a real dnsmasq."""

from __future__ import annotations

import json

import pytest

from accounts import domain_services
from accounts.models import AuditEvent, CustomDomain, Role
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _portal_hosts(settings):
    settings.PORTAL_URL = "https://portal.example.test"
    settings.REGISTRY_HOST = "registry.example.test:5000"


def _publish(dns_server, name: str) -> None:
    row = CustomDomain.objects.get(domain=name)
    dns_server.serve({**dns_server.records, row.challenge_name: row.challenge})


def test_add_prints_the_records_to_create(portal):
    result = portal("domain", "add", "Proxy.Vendor.test", "--kind", "proxy")
    assert result.returncode == 0, result.stderr
    challenge = CustomDomain.objects.get().challenge
    assert result.stdout.splitlines() == [
        "TYPE   NAME                                 VALUE",
        "CNAME  proxy.vendor.test                    portal.example.test",
        f"TXT    _portal-challenge.proxy.vendor.test  {challenge}",
    ]
    assert result.stderr == (
        "Added proxy.vendor.test (proxy, pending). Create these records at your DNS provider, "
        "then run: portal domain verify proxy.vendor.test\n"
    )


def test_add_json_is_the_api_object(portal):
    result = portal("domain", "add", "registry.vendor.test", "--kind", "registry", "-o", "json")
    body = json.loads(result.stdout)
    assert body["status"] == "pending" and body["records"][0] == {
        "type": "CNAME",
        "name": "registry.vendor.test",
        "value": "registry.example.test",
    }


def test_add_errors_name_the_field(portal):
    result = portal("domain", "add", "https://proxy.vendor.test", "--kind", "proxy")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (
        "error: domain: Enter the host name alone, without https:// or a path, like proxy.vendor.com.\n"
    )
    bad_kind = portal("domain", "add", "proxy.vendor.test", "--kind", "mirror")
    assert bad_kind.returncode == 2 and "'mirror' is not one of 'proxy', 'registry'" in bad_kind.stderr


def test_verify_exits_1_with_what_was_found_then_0_once_verified(portal, dns_server):
    portal("domain", "add", "proxy.vendor.test", "--kind", "proxy")
    missing = portal("domain", "verify", "proxy.vendor.test")
    assert (missing.returncode, missing.stdout) == (1, "proxy.vendor.test: pending\n")
    assert missing.stderr == (
        "error: proxy.vendor.test is pending: no TXT record at _portal-challenge.proxy.vendor.test; "
        "see its records: portal domain ls -o json\n"
    )
    dns_server.serve({"_portal-challenge.proxy.vendor.test": "not-it"})
    wrong = portal("domain", "verify", "proxy.vendor.test")
    assert wrong.returncode == 1
    assert "found other values at _portal-challenge.proxy.vendor.test: “not-it”" in wrong.stderr
    _publish(dns_server, "proxy.vendor.test")
    found = portal("domain", "verify", "proxy.vendor.test")
    assert (found.returncode, found.stdout, found.stderr) == (0, "proxy.vendor.test: verified\n", "")


def test_verify_with_the_name_server_down_names_it(portal, dns_server):
    portal("domain", "add", "proxy.vendor.test", "--kind", "proxy")
    dns_server.stop()
    result = portal("domain", "verify", "proxy.vendor.test", "-o", "json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["check_error"] == (
        f"the name server {dns_server.address} did not answer within 3 s"
    )
    assert result.stderr == (
        f"error: proxy.vendor.test is pending: the name server {dns_server.address} did not answer within 3 s\n"
    )


def test_ls_default_and_rm(portal, dns_server):
    assert portal("domain", "ls").stderr == (
        "No custom domains yet; add one with: portal domain add DOMAIN --kind proxy\n"
    )
    portal("domain", "add", "proxy.vendor.test", "--kind", "proxy")
    portal("domain", "add", "registry.vendor.test", "--kind", "registry")
    refused = portal("domain", "default", "proxy.vendor.test")
    assert refused.returncode == 1
    assert refused.stderr == (
        "error: domain: proxy.vendor.test is pending; only a verified domain can be the default. Verify it first.\n"
    )
    _publish(dns_server, "proxy.vendor.test")
    portal("domain", "verify", "proxy.vendor.test")
    made = portal("domain", "default", "PROXY.vendor.test")
    assert (made.returncode, made.stdout) == (0, "Customers are now shown proxy.vendor.test for the proxy.\n")

    lines = portal("domain", "ls").stdout.splitlines()
    assert lines[0].split() == ["DOMAIN", "KIND", "STATUS", "DEFAULT", "CHECKED", "LAST", "CHECK"]
    assert lines[1].split()[:4] == ["proxy.vendor.test", "proxy", "verified", "default"]
    assert lines[1].endswith("TXT record found")
    assert lines[2].split() == ["registry.vendor.test", "registry", "pending", "-", "never", "-"]

    no_terminal = portal("domain", "rm", "proxy.vendor.test")
    assert no_terminal.returncode == 2 and "pass --yes" in no_terminal.stderr
    said_no = portal.on_a_terminal(["domain", "rm", "proxy.vendor.test"], "n")
    assert said_no.returncode == 1 and "proxy.vendor.test was not removed" in said_no.stderr
    assert CustomDomain.objects.filter(domain="proxy.vendor.test").exists()
    removed = portal("domain", "rm", "proxy.vendor.test", "--yes")
    assert (removed.returncode, removed.stdout) == (0, "Removed proxy.vendor.test.\n")
    assert list(CustomDomain.objects.values_list("domain", flat=True)) == ["registry.vendor.test"]
    assert AuditEvent.objects.filter(action="domain.remove", target="proxy.vendor.test").exists()


def test_an_unknown_domain_is_named(portal, outsider_actor):
    domain_services.domain_add(actor=outsider_actor, domain="proxy.other.test", kind="proxy")
    for args in (["verify", "proxy.other.test"], ["default", "proxy.other.test"], ["rm", "proxy.other.test", "-y"]):
        result = portal("domain", *args)
        assert result.returncode == 1, args
        assert result.stderr == "error: no custom domain “proxy.other.test” in your team; see: portal domain ls\n"
    bad = portal("domain", "verify", "../tokens")
    assert bad.returncode == 2 and "is not a host name" in bad.stderr


def test_a_developer_token_cannot_change_domains(portal, team):
    developer = factories.add_member(team, Role.DEVELOPER, factories.make_user("dev@acme.test"))
    token = factories.user_token(developer, team)
    result = portal("domain", "add", "proxy.vendor.test", "--kind", "proxy", token=token)
    assert result.returncode == 1 and result.stderr == "error: Your role in this team does not allow this.\n"
    assert portal("domain", "ls", token=token).returncode == 0
