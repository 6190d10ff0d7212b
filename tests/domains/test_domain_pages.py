"""Team → Custom domains: the list, add, verify against a real dnsmasq, default, remove, and
what members who are not admins see."""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages

from accounts import domain_services as services
from accounts.models import AuditEvent, CustomDomain, DomainKind, DomainStatus

pytestmark = pytest.mark.django_db

URL = "/team/domains/"


@pytest.fixture(autouse=True)
def _portal_hosts(settings):
    settings.PORTAL_URL = "https://portal.example.test"
    settings.REGISTRY_HOST = "registry.example.test"


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _text(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


def _verified(actor, dns_server, name="proxy.vendor.test", kind=DomainKind.PROXY) -> CustomDomain:
    row = services.domain_add(actor=actor, domain=name, kind=kind)
    dns_server.serve({**dns_server.records, row.challenge_name: row.challenge})
    return services.domain_verify(actor=actor, domain=row)


def test_the_team_page_links_to_custom_domains(viewer_client):
    assert 'href="/team/domains/"' in viewer_client.get("/team/").content.decode()


def test_the_empty_page_explains_custom_domains_and_offers_the_form_to_admins(admin_client):
    response = admin_client.get(URL)
    text = _text(response)
    assert response.status_code == 200
    assert "No custom domains yet" in text and "security reviews" in text and "Add one below" in text
    assert 'name="domain"' in response.content.decode() and "Add domain" in text


def test_adding_shows_the_two_records_to_create(admin_client, team):
    response = admin_client.post(URL, {"domain": "Proxy.Vendor.test", "kind": "proxy"})
    row = CustomDomain.objects.get()
    assert response.status_code == 302 and response["Location"] == f"{URL}#domain-{row.pk}"
    assert _messages(response) == ["Added proxy.vendor.test. Create its two DNS records, then press Verify."]
    page = admin_client.get(URL)
    html, text = page.content.decode(), _text(page)
    assert f'id="domain-{row.pk}"' in html and 'data-status="pending"' in html
    assert "Type CNAME Name proxy.vendor.test Copy Value portal.example.test Copy" in text
    assert f"Type TXT Name _portal-challenge.proxy.vendor.test Copy Value {row.challenge} Copy" in text
    assert f'data-copy="rec-{row.pk}-2-value"' in html and f'id="rec-{row.pk}-2-value">{row.challenge}</code>' in html
    assert "press Verify" in text and ">default<" not in html


def test_a_registry_domain_points_at_the_registry_host(admin_client):
    admin_client.post(URL, {"domain": "registry.vendor.test", "kind": "registry"})
    assert "Type CNAME Name registry.vendor.test Copy Value registry.example.test Copy" in _text(admin_client.get(URL))


def test_a_refused_domain_is_shown_on_its_field(admin_client):
    response = admin_client.post(URL, {"domain": "https://proxy.vendor.test/", "kind": "proxy"})
    assert response.status_code == 200 and not CustomDomain.objects.exists()
    assert response.context["form"].errors == {
        "domain": ["Enter the host name alone, without https:// or a path, like proxy.vendor.com."]
    }
    assert 'id="id_domain-error"' in response.content.decode()


def test_an_unknown_kind_is_refused_on_its_field(admin_client):
    response = admin_client.post(URL, {"domain": "proxy.vendor.test", "kind": "mirror"})
    assert response.status_code == 200 and "kind" in response.context["form"].errors


def test_verify_with_the_record_in_place_makes_it_verified(admin_client, actor, dns_server):
    row = services.domain_add(actor=actor, domain="proxy.vendor.test", kind="proxy")
    dns_server.serve({row.challenge_name: row.challenge})
    response = admin_client.post(f"{URL}{row.pk}/verify/")
    assert response.status_code == 302 and response["Location"] == f"{URL}#domain-{row.pk}"
    assert _messages(response) == ["proxy.vendor.test is verified: the portal answers on it."]
    page = admin_client.get(URL)
    assert 'data-status="verified"' in page.content.decode()
    assert "Make default" in _text(page) and "the TXT record was found" in _text(page)


def test_verify_without_the_record_says_what_was_missing(admin_client, actor, dns_server):
    row = services.domain_add(actor=actor, domain="proxy.vendor.test", kind="proxy")
    response = admin_client.post(f"{URL}{row.pk}/verify/")
    assert _messages(response) == [
        "proxy.vendor.test is pending: no TXT record at _portal-challenge.proxy.vendor.test."
    ]
    page = admin_client.get(URL)
    assert "no TXT record at _portal-challenge.proxy.vendor.test" in _text(page)
    assert "Make default" not in _text(page)


def test_verify_with_the_name_server_down_names_it(admin_client, actor, dns_server):
    row = _verified(actor, dns_server)
    dns_server.stop()
    response = admin_client.post(f"{URL}{row.pk}/verify/")
    assert _messages(response) == [
        f"proxy.vendor.test stays verified; it could not be checked now: the name server {dns_server.address} "
        "did not answer within 3 s."
    ]


def test_make_default_and_the_default_badge(admin_client, actor, dns_server):
    row = _verified(actor, dns_server)
    response = admin_client.post(f"{URL}{row.pk}/default/")
    assert _messages(response) == ["Customers are now shown proxy.vendor.test for the proxy."]
    html = admin_client.get(URL).content.decode()
    assert '<span class="badge default">default</span>' in html and "Make default" not in html
    assert CustomDomain.objects.get().is_default


def test_make_default_of_a_pending_domain_is_refused_with_the_reason(admin_client, actor):
    row = services.domain_add(actor=actor, domain="proxy.vendor.test", kind="proxy")
    response = admin_client.post(f"{URL}{row.pk}/default/")
    assert _messages(response) == [
        "proxy.vendor.test is pending; only a verified domain can be the default. Verify it first."
    ]
    assert not CustomDomain.objects.get().is_default


def test_a_lost_domain_says_so_and_what_to_do(admin_client, actor, dns_server):
    row = _verified(actor, dns_server)
    services.domain_set_default(actor=actor, domain=row)
    dns_server.serve({})
    services.domains_recheck()
    page = admin_client.get(URL)
    assert 'data-status="lost"' in page.content.decode()
    text = _text(page)
    assert "customers are shown portal.example.test again" in text and "Put the record back" in text


def test_remove_asks_first_then_removes(admin_client, actor, dns_server):
    row = services.domain_set_default(actor=actor, domain=_verified(actor, dns_server))
    confirm = admin_client.get(f"{URL}{row.pk}/remove/")
    assert confirm.status_code == 200 and CustomDomain.objects.exists()
    assert "Remove proxy.vendor.test?" in _text(confirm)
    assert "customers are shown portal.example.test again" in _text(confirm)
    response = admin_client.post(f"{URL}{row.pk}/remove/")
    assert response.status_code == 302 and response["Location"] == URL
    assert not CustomDomain.objects.exists()
    assert AuditEvent.objects.filter(action="domain.remove", target="proxy.vendor.test").exists()


@pytest.mark.parametrize("who", ["developer_client", "viewer_client"])
def test_members_who_are_not_admins_see_the_list_read_only(request, who, actor, dns_server):
    row = _verified(actor, dns_server)
    client = request.getfixturevalue(who)
    page = client.get(URL)
    html, text = page.content.decode(), _text(page)
    assert page.status_code == 200 and "proxy.vendor.test" in text and row.challenge in text
    assert "Verify" not in text and "Make default" not in text and "Remove" not in text
    assert 'name="domain"' not in html and "Only a team admin can add, verify or remove custom domains." in text
    for method, path in [
        ("post", URL),
        ("post", f"{URL}{row.pk}/verify/"),
        ("post", f"{URL}{row.pk}/default/"),
        ("get", f"{URL}{row.pk}/remove/"),
        ("post", f"{URL}{row.pk}/remove/"),
    ]:
        data = {"domain": "x.vendor.test", "kind": "proxy"} if path == URL else {}
        assert getattr(client, method)(path, data).status_code == 403, (method, path)
    assert list(CustomDomain.objects.values_list("domain", "is_default")) == [("proxy.vendor.test", False)]


def test_non_admin_empty_page_points_to_an_admin(viewer_client):
    assert "An admin of this team can add one." in _text(viewer_client.get(URL))


def test_another_team_s_domain_is_a_404(outsider_client, actor, dns_server):
    row = _verified(actor, dns_server)
    for method, path in [
        ("post", f"{URL}{row.pk}/verify/"),
        ("post", f"{URL}{row.pk}/default/"),
        ("get", f"{URL}{row.pk}/remove/"),
        ("post", f"{URL}{row.pk}/remove/"),
    ]:
        assert getattr(outsider_client, method)(path).status_code == 404, (method, path)
    assert "proxy.vendor.test" not in outsider_client.get(URL).content.decode()
    assert CustomDomain.objects.get().status == DomainStatus.VERIFIED


def test_logged_out_visitors_are_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/login/")
