"""/api/v1/custom-domains/: list, create with records, retrieve by name, verify against a real
dnsmasq, default, delete; roles, teams and the error shape."""

from __future__ import annotations

import pytest

from accounts import domain_services as services
from accounts.models import AuditEvent, CustomDomain, DomainStatus
from tests import factories

pytestmark = pytest.mark.django_db

URL = "/api/v1/custom-domains/"


@pytest.fixture(autouse=True)
def _portal_hosts(settings):
    settings.PORTAL_URL = "https://portal.example.test"
    settings.REGISTRY_HOST = "registry.example.test:5000"


def test_create_answers_201_with_the_records(admin_api):
    response = admin_api.post(URL, {"domain": "Proxy.Vendor.test", "kind": "proxy"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    row = CustomDomain.objects.get()
    assert {k: body[k] for k in ("domain", "kind", "status", "is_default", "check_error", "created_by")} == {
        "domain": "proxy.vendor.test",
        "kind": "proxy",
        "status": "pending",
        "is_default": False,
        "check_error": "",
        "created_by": "admin@acme.test",
    }
    assert body["records"] == [
        {"type": "CNAME", "name": "proxy.vendor.test", "value": "portal.example.test"},
        {"type": "TXT", "name": "_portal-challenge.proxy.vendor.test", "value": row.challenge},
    ]
    assert body["checked_at"] is None and body["verified_at"] is None


def test_create_errors_name_the_field(admin_api):
    response = admin_api.post(URL, {"domain": "proxy.vendor.test:8443", "kind": "mirror"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["errors"] == {
        "kind": ["Choose one of: proxy, registry."],
        "domain": ["Enter the host name without a port: customers reach it on your front proxy's standard port."],
    }
    assert body["message"].startswith(("kind: ", "domain: "))


def test_create_with_a_missing_field_is_a_400(admin_api):
    response = admin_api.post(URL, {"domain": "proxy.vendor.test"}, format="json")
    assert response.status_code == 400 and response.json()["errors"] == {"kind": ["This field is required."]}


def test_a_domain_in_use_by_another_team_is_refused(admin_api, outsider_actor):
    services.domain_add(actor=outsider_actor, domain="proxy.vendor.test", kind="proxy")
    response = admin_api.post(URL, {"domain": "proxy.vendor.test", "kind": "proxy"}, format="json")
    assert response.status_code == 400
    assert response.json()["message"] == (
        "domain: proxy.vendor.test is already in use; a domain can be added once, by one team."
    )


def test_list_and_retrieve_by_name(admin_api, actor, outsider_actor):
    services.domain_add(actor=actor, domain="proxy.vendor.test", kind="proxy")
    services.domain_add(actor=actor, domain="xn--bcher-kva.vendor.test", kind="registry")
    services.domain_add(actor=outsider_actor, domain="proxy.other.test", kind="proxy")
    listed = admin_api.get(URL).json()["results"]
    assert [(d["domain"], d["kind"], d["status"]) for d in listed] == [
        ("proxy.vendor.test", "proxy", "pending"),
        ("xn--bcher-kva.vendor.test", "registry", "pending"),
    ]
    assert admin_api.get(f"{URL}proxy.vendor.test/").json()["domain"] == "proxy.vendor.test"
    assert admin_api.get(f"{URL}PROXY.vendor.test./").json()["domain"] == "proxy.vendor.test"
    assert admin_api.get(f"{URL}bücher.vendor.test/").json()["domain"] == "xn--bcher-kva.vendor.test"
    missing = admin_api.get(f"{URL}proxy.other.test/")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_verify_found_wrong_and_missing(admin_api, actor, dns_server):
    row = services.domain_add(actor=actor, domain="proxy.vendor.test", kind="proxy")
    missing = admin_api.post(f"{URL}proxy.vendor.test/verify/")
    assert missing.status_code == 200
    assert (missing.json()["status"], missing.json()["check_error"]) == (
        "pending",
        "no TXT record at _portal-challenge.proxy.vendor.test",
    )
    dns_server.serve({row.challenge_name: "something-else"})
    wrong = admin_api.post(f"{URL}proxy.vendor.test/verify/").json()
    assert wrong["status"] == "pending"
    assert wrong["check_error"] == "found other values at _portal-challenge.proxy.vendor.test: “something-else”"
    dns_server.serve({row.challenge_name: row.challenge})
    found = admin_api.post(f"{URL}proxy.vendor.test/verify").json()
    assert (found["status"], found["check_error"]) == ("verified", "")
    assert found["verified_at"] and found["checked_at"]


def test_verify_with_the_name_server_down_reports_it(admin_api, actor, dns_server):
    services.domain_add(actor=actor, domain="proxy.vendor.test", kind="proxy")
    dns_server.stop()
    body = admin_api.post(f"{URL}proxy.vendor.test/verify/").json()
    assert body["status"] == "pending"
    assert body["check_error"] == f"the name server {dns_server.address} did not answer within 3 s"


def test_default_needs_a_verified_domain_and_replaces_the_old_one(admin_api, actor, dns_server):
    first = services.domain_add(actor=actor, domain="a.vendor.test", kind="proxy")
    second = services.domain_add(actor=actor, domain="b.vendor.test", kind="proxy")
    refused = admin_api.post(f"{URL}a.vendor.test/default/")
    assert refused.status_code == 400
    assert refused.json()["errors"] == {
        "domain": ["a.vendor.test is pending; only a verified domain can be the default. Verify it first."]
    }
    dns_server.serve({first.challenge_name: first.challenge, second.challenge_name: second.challenge})
    for name in ("a", "b"):
        assert admin_api.post(f"{URL}{name}.vendor.test/verify/").json()["status"] == "verified"
    assert admin_api.post(f"{URL}a.vendor.test/default/").json()["is_default"] is True
    assert admin_api.post(f"{URL}b.vendor.test/default/").json()["is_default"] is True
    assert {d["domain"]: d["is_default"] for d in admin_api.get(URL).json()["results"]} == {
        "a.vendor.test": False,
        "b.vendor.test": True,
    }


def test_delete_removes_and_audits(admin_api, actor):
    services.domain_add(actor=actor, domain="proxy.vendor.test", kind="proxy")
    assert admin_api.delete(f"{URL}proxy.vendor.test/").status_code == 204
    assert not CustomDomain.objects.exists()
    assert AuditEvent.objects.filter(action="domain.remove", actor="admin@acme.test").exists()
    assert admin_api.delete(f"{URL}proxy.vendor.test/").status_code == 404


@pytest.mark.parametrize("who", ["developer_api", "viewer_api"])
def test_members_who_are_not_admins_read_but_do_not_change(request, who, actor, team):
    services.domain_add(actor=actor, domain="proxy.vendor.test", kind="proxy")
    client = request.getfixturevalue(who)
    assert [d["domain"] for d in client.get(URL).json()["results"]] == ["proxy.vendor.test"]
    assert client.get(f"{URL}proxy.vendor.test/").status_code == 200
    for method, path in [
        ("post", URL),
        ("post", f"{URL}proxy.vendor.test/verify/"),
        ("post", f"{URL}proxy.vendor.test/default/"),
        ("delete", f"{URL}proxy.vendor.test/"),
    ]:
        response = getattr(client, method)(path, {"domain": "x.vendor.test", "kind": "proxy"}, format="json")
        assert response.status_code == 403, (method, path)
        assert response.json() == {
            "code": "permission_denied",
            "message": "Your role in this team does not allow this.",
        }
    assert CustomDomain.objects.get().status == DomainStatus.PENDING


def test_a_read_write_service_account_is_no_admin(team, actor):
    client = factories.bearer_client(factories.service_token(team))
    response = client.post(URL, {"domain": "proxy.vendor.test", "kind": "proxy"}, format="json")
    assert response.status_code == 403 and not CustomDomain.objects.exists()


def test_another_team_s_domain_is_a_404_for_every_action(outsider_api, actor):
    services.domain_add(actor=actor, domain="proxy.vendor.test", kind="proxy")
    for method, path in [
        ("get", f"{URL}proxy.vendor.test/"),
        ("post", f"{URL}proxy.vendor.test/verify/"),
        ("post", f"{URL}proxy.vendor.test/default/"),
        ("delete", f"{URL}proxy.vendor.test/"),
    ]:
        assert getattr(outsider_api, method)(path).status_code == 404, (method, path)
    assert CustomDomain.objects.exists()


def test_the_schema_lists_the_endpoints(admin_api):
    schema = admin_api.get("/api/v1/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in ("/api/v1/custom-domains/{domain}/verify/", "/api/v1/custom-domains/{domain}/default/"):
        assert path in schema
