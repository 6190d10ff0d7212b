"""accounts/domain_services.py: validation, verification over a real dnsmasq, default rules,
removal, the daily re-check and the audit trail."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts import domain_services as services
from accounts import domains
from accounts.access import Actor
from accounts.models import AuditEvent, CustomDomain, DomainKind, DomainStatus, Role
from accounts.tasks import domains_recheck_task
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _portal_hosts(settings):
    settings.PORTAL_URL = "https://portal.example.test"
    settings.REGISTRY_HOST = "registry.example.test:5000"


def _errors(call) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as error:
        call()
    return error.value.message_dict


def _add(actor, domain="proxy.vendor.test", kind=DomainKind.PROXY) -> CustomDomain:
    return services.domain_add(actor=actor, domain=domain, kind=kind)


def _publish(dns_server, *rows: CustomDomain, **extra) -> None:
    dns_server.serve({**{row.challenge_name: row.challenge for row in rows}, **extra})


def _actions(team) -> list[tuple[str, str, str]]:
    return list(AuditEvent.objects.filter(team=team).order_by("pk").values_list("actor", "action", "target"))


# Adding -----------------------------------------------------------------------------


def test_adding_a_domain_makes_it_pending_with_a_random_challenge_and_audits_it(actor, team):
    row = _add(actor, " Proxy.Vendor.TEST. ")
    other = _add(actor, "registry.vendor.test", DomainKind.REGISTRY)
    assert (row.domain, row.kind, row.status, row.is_default) == ("proxy.vendor.test", "proxy", "pending", False)
    assert row.team == team and row.created_by == actor.user
    assert len(row.challenge) >= 40 and row.challenge != other.challenge
    assert row.checked_at is None and row.verified_at is None
    assert _actions(team)[-2:] == [
        ("admin@acme.test", "domain.add", "proxy.vendor.test"),
        ("admin@acme.test", "domain.add", "registry.vendor.test"),
    ]
    assert AuditEvent.objects.get(action="domain.add", target="proxy.vendor.test").detail == {"kind": "proxy"}


def test_an_international_name_is_stored_as_its_a_labels(actor):
    assert _add(actor, "Bücher.Vendor.test").domain == "xn--bcher-kva.vendor.test"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Enter a host name, like proxy.vendor.com."),
        ("   ", "Enter a host name, like proxy.vendor.com."),
        ("vendor", "A custom domain has at least two labels, like proxy.vendor.com."),
        ("https://proxy.vendor.com", "Enter the host name alone, without https:// or a path, like proxy.vendor.com."),
        ("proxy.vendor.com/v2/", "Enter the host name alone, without https:// or a path, like proxy.vendor.com."),
        ("*.vendor.com", "A wildcard cannot be verified; enter one host name, like proxy.vendor.com."),
        ("proxy.vendor.com:443", "Enter the host name without a port: customers reach it on your front proxy's "
         "standard port."),
        ("192.0.2.10", "Enter a host name, not an IP address, like proxy.vendor.com."),
        ("[2001:db8::1]", "Enter a host name, not an IP address, like proxy.vendor.com."),
        ("2001:db8::1", "Enter a host name, not an IP address, like proxy.vendor.com."),
        ("proxy..vendor.com", "“proxy..vendor.com” is not a valid host name: it has an empty label (two dots in a "
         "row, or a leading dot)."),
        ("-proxy.vendor.com", "“-proxy.vendor.com” is not a valid host name: it has a label that starts or ends with "
         "a hyphen (-proxy)."),
        ("pro_xy.vendor.com", "“pro_xy.vendor.com” is not a valid host name: it has a character a host name cannot "
         "hold in “pro_xy” (letters, digits and hyphens only)."),
        ("proxy.vendor.123", "“proxy.vendor.123” ends in a number; enter a host name, like proxy.vendor.com."),
        ("a" * 64 + ".vendor.com", f"“{'a' * 64}.vendor.com” is not a valid host name: it has a label longer than 63 "
         f"characters ({'a' * 20}…)."),
        (".".join(["abcdefghi"] * 26), "A host name has at most 253 characters."),
        ("portal.example.test", "portal.example.test is this portal's own host; enter a domain of yours, like "
         "proxy.vendor.com."),
        ("Registry.Example.test", "registry.example.test is this portal's own host; enter a domain of yours, like "
         "proxy.vendor.com."),
    ],
)  # fmt: skip
def test_each_bad_domain_is_refused_naming_the_field_and_why(actor, value, message):
    assert _errors(lambda: _add(actor, value)) == {"domain": [message]}
    assert not CustomDomain.objects.exists()


def test_an_unknown_kind_is_refused_with_the_domain_s_error_too(actor):
    assert _errors(lambda: _add(actor, "vendor", "mirror")) == {
        "kind": ["Choose one of: proxy, registry."],
        "domain": ["A custom domain has at least two labels, like proxy.vendor.com."],
    }


def test_a_domain_added_by_any_team_is_already_in_use(actor, outsider_actor):
    _add(outsider_actor, "proxy.vendor.test")
    message = {"domain": ["proxy.vendor.test is already in use; a domain can be added once, by one team."]}
    assert _errors(lambda: _add(actor, "PROXY.vendor.test")) == message
    assert _errors(lambda: _add(outsider_actor, "proxy.vendor.test", DomainKind.REGISTRY)) == message


@pytest.mark.parametrize("role", [Role.DEVELOPER, Role.READ_ONLY])
def test_only_admins_change_domains(team, member_with, actor, dns_server, role):
    row = _add(actor)
    _publish(dns_server, row)
    someone = factories.actor_of(member_with(role), team)
    for call in (
        lambda: _add(someone, "other.vendor.test"),
        lambda: services.domain_verify(actor=someone, domain=row),
        lambda: services.domain_set_default(actor=someone, domain=row),
        lambda: services.domain_remove(actor=someone, domain=row),
    ):
        with pytest.raises(PermissionDenied):
            call()
    row.refresh_from_db()
    assert row.status == DomainStatus.PENDING and CustomDomain.objects.count() == 1


def test_another_team_s_admin_cannot_touch_a_domain(actor, outsider_actor, dns_server):
    row = _add(actor)
    _publish(dns_server, row)
    for call in (
        lambda: services.domain_verify(actor=outsider_actor, domain=row),
        lambda: services.domain_set_default(actor=outsider_actor, domain=row),
        lambda: services.domain_remove(actor=outsider_actor, domain=row),
    ):
        with pytest.raises(PermissionDenied, match="That belongs to another team."):
            call()
    assert CustomDomain.objects.get().status == DomainStatus.PENDING


def test_the_system_actor_cannot_add(team):
    with pytest.raises(PermissionDenied):
        _add(Actor.for_system(team, "daily domain check"))


# Records ----------------------------------------------------------------------------


def test_the_records_point_each_kind_at_the_portal_s_own_host(actor):
    proxy, registry = _add(actor), _add(actor, "registry.vendor.test", DomainKind.REGISTRY)
    assert [(r.type, r.name, r.value) for r in services.domain_records(proxy)] == [
        ("CNAME", "proxy.vendor.test", "portal.example.test"),
        ("TXT", "_portal-challenge.proxy.vendor.test", proxy.challenge),
    ]
    assert [(r.type, r.name, r.value) for r in services.domain_records(registry)] == [
        ("CNAME", "registry.vendor.test", "registry.example.test"),
        ("TXT", "_portal-challenge.registry.vendor.test", registry.challenge),
    ]


def test_a_portal_on_a_bare_address_asks_for_an_address_record(actor, settings):
    settings.PORTAL_URL = "http://192.0.2.7:8000"
    settings.REGISTRY_HOST = "[2001:db8::5]:5000"
    proxy, registry = _add(actor), _add(actor, "registry.vendor.test", DomainKind.REGISTRY)
    assert (services.domain_records(proxy)[0].type, services.domain_records(proxy)[0].value) == ("A", "192.0.2.7")
    assert (services.domain_records(registry)[0].type, services.domain_records(registry)[0].value) == (
        "AAAA",
        "2001:db8::5",
    )


# Verifying --------------------------------------------------------------------------


def test_verify_finds_the_record_and_the_portal_answers_on_the_domain(actor, team, dns_server):
    row = _add(actor)
    assert domains.domain_owner("proxy.vendor.test") is None
    _publish(dns_server, row)
    row = services.domain_verify(actor=actor, domain=row)
    assert (row.status, row.check_error) == ("verified", "")
    assert row.verified_at is not None and row.checked_at is not None
    assert domains.domain_owner("proxy.vendor.test") == domains.HostOwner(team.pk, "proxy", "proxy.vendor.test")
    event = AuditEvent.objects.filter(action="domain.verify").get()
    assert (event.actor, event.target, event.detail) == (
        "admin@acme.test",
        "proxy.vendor.test",
        {"status": "verified", "was": "pending"},
    )


def test_verify_finds_the_value_among_several_records(actor, dns_server):
    row = _add(actor)
    dns_server.serve({row.challenge_name: ["google-site-verification=x", row.challenge]})
    assert services.domain_verify(actor=actor, domain=row).status == DomainStatus.VERIFIED


def test_verify_with_no_record_stays_pending_and_says_where_it_looked(actor, dns_server):
    row = services.domain_verify(actor=actor, domain=_add(actor))
    assert (row.status, row.check_error) == ("pending", "no TXT record at _portal-challenge.proxy.vendor.test")
    assert row.checked_at is not None and row.verified_at is None
    assert AuditEvent.objects.get(action="domain.verify").detail == {
        "status": "pending",
        "was": "pending",
        "error": "no TXT record at _portal-challenge.proxy.vendor.test",
    }


def test_verify_with_another_value_says_what_it_found(actor, dns_server):
    row = _add(actor)
    dns_server.serve({row.challenge_name: ["old-value", "typo" + row.challenge[4:]]})
    row = services.domain_verify(actor=actor, domain=row)
    assert row.status == DomainStatus.PENDING
    assert row.check_error.startswith("found other values at _portal-challenge.proxy.vendor.test: ")
    assert "“old-value”" in row.check_error and f"“typo{row.challenge[4:]}”" in row.check_error


def test_verify_with_the_name_server_down_keeps_the_status_and_names_the_server(actor, dns_server):
    row = _add(actor)
    _publish(dns_server, row)
    row = services.domain_verify(actor=actor, domain=row)
    dns_server.stop()
    row = services.domain_verify(actor=actor, domain=row)
    assert row.status == DomainStatus.VERIFIED
    assert row.check_error == f"the name server {dns_server.address} did not answer within 3 s"


def test_verify_of_a_verified_domain_whose_record_is_gone_makes_it_lost(actor, dns_server):
    row = _add(actor)
    _publish(dns_server, row)
    first = services.domain_verify(actor=actor, domain=row)
    dns_server.serve({})
    row = services.domain_verify(actor=actor, domain=row)
    assert (row.status, row.verified_at) == ("lost", first.verified_at)
    assert domains.domain_owner("proxy.vendor.test") is None
    _publish(dns_server, row)
    assert services.domain_verify(actor=actor, domain=row).status == DomainStatus.VERIFIED


# Default ----------------------------------------------------------------------------


def test_only_a_verified_domain_can_be_the_default(actor, dns_server):
    row = _add(actor)
    assert _errors(lambda: services.domain_set_default(actor=actor, domain=row)) == {
        "domain": ["proxy.vendor.test is pending; only a verified domain can be the default. Verify it first."]
    }
    assert not CustomDomain.objects.get().is_default


def test_a_new_default_replaces_the_old_one_of_its_kind_only(actor, team, dns_server):
    first, second = _add(actor, "a.vendor.test"), _add(actor, "b.vendor.test")
    registry = _add(actor, "registry.vendor.test", DomainKind.REGISTRY)
    _publish(dns_server, first, second, registry)
    for row in (first, second, registry):
        services.domain_verify(actor=actor, domain=row)
    services.domain_set_default(actor=actor, domain=registry)
    services.domain_set_default(actor=actor, domain=first)
    assert domains.team_host(team, "proxy", "fallback") == "a.vendor.test"
    services.domain_set_default(actor=actor, domain=second)
    defaults = dict(CustomDomain.objects.values_list("domain", "is_default"))
    assert defaults == {"a.vendor.test": False, "b.vendor.test": True, "registry.vendor.test": True}
    assert domains.team_host(team, "proxy", "fallback") == "b.vendor.test"
    assert list(AuditEvent.objects.filter(action="domain.default").order_by("pk").values_list("target", "detail")) == [
        ("registry.vendor.test", {"kind": "registry", "was": ""}),
        ("a.vendor.test", {"kind": "proxy", "was": ""}),
        ("b.vendor.test", {"kind": "proxy", "was": "a.vendor.test"}),
    ]
    services.domain_set_default(actor=actor, domain=second)  # already: nothing to record
    assert AuditEvent.objects.filter(action="domain.default").count() == 3


def test_a_lost_default_is_no_longer_shown_to_customers(actor, team, dns_server):
    row = _add(actor)
    _publish(dns_server, row)
    services.domain_set_default(actor=actor, domain=services.domain_verify(actor=actor, domain=row))
    dns_server.serve({})
    services.domains_recheck()
    assert domains.team_host(team, "proxy", "portal.example.test") == "portal.example.test"


# Removing ---------------------------------------------------------------------------


def test_removing_a_default_domain_stops_it_at_once_and_audits_it(actor, team, dns_server):
    row = _add(actor)
    _publish(dns_server, row)
    row = services.domain_set_default(actor=actor, domain=services.domain_verify(actor=actor, domain=row))
    assert domains.domain_owner("proxy.vendor.test") is not None
    services.domain_remove(actor=actor, domain=row)
    assert not CustomDomain.objects.exists()
    assert domains.domain_owner("proxy.vendor.test") is None
    assert domains.team_host(team, "proxy", "fallback") == "fallback"
    event = AuditEvent.objects.get(action="domain.remove")
    assert (event.actor, event.target, event.detail) == (
        "admin@acme.test",
        "proxy.vendor.test",
        {"kind": "proxy", "status": "verified", "was_default": True},
    )
    _add(actor)  # the name is free again


# The daily re-check -----------------------------------------------------------------


def test_the_re_check_loses_a_vanished_domain_keeps_the_others_and_audits_as_the_system(
    actor, outsider_actor, team, other_team, dns_server
):
    kept, vanished = _add(actor, "kept.vendor.test"), _add(outsider_actor, "gone.other.test")
    pending = _add(actor, "pending.vendor.test")
    _publish(dns_server, kept, vanished)
    for who, row in ((actor, kept), (outsider_actor, vanished)):
        services.domain_verify(actor=who, domain=row)
    _publish(dns_server, kept)

    assert domains_recheck_task() == "2 checked, 1 lost, 0 failed"

    statuses = dict(CustomDomain.objects.values_list("domain", "status"))
    assert statuses == {"kept.vendor.test": "verified", "gone.other.test": "lost", "pending.vendor.test": "pending"}
    gone = CustomDomain.objects.get(domain="gone.other.test")
    assert gone.check_error == "no TXT record at _portal-challenge.gone.other.test" and gone.checked_at
    assert CustomDomain.objects.get(domain="pending.vendor.test").checked_at is None
    assert domains.verified_domains() == {"kept.vendor.test"}
    assert _actions(other_team)[-1] == ("daily domain check", "domain.lost", "gone.other.test")
    assert not AuditEvent.objects.filter(team=team, action="domain.lost").exists()
    assert pending.status == "pending"


def test_the_re_check_with_the_name_server_down_keeps_domains_verified_and_records_why(actor, dns_server):
    row = _add(actor)
    _publish(dns_server, row)
    services.domain_verify(actor=actor, domain=row)
    dns_server.stop()
    result = services.domains_recheck()
    assert (result.checked, result.lost, result.failed) == (1, [], ["proxy.vendor.test"])
    row.refresh_from_db()
    assert row.status == DomainStatus.VERIFIED
    assert row.check_error == f"the name server {dns_server.address} did not answer within 3 s"
    assert not AuditEvent.objects.filter(action="domain.lost").exists()
    # The next good check clears the error.
    _publish(dns_server, row)
    services.domains_recheck()
    row.refresh_from_db()
    assert (row.status, row.check_error) == ("verified", "")


def test_a_domain_removed_meanwhile_is_refused_by_verify_and_default(actor, dns_server):
    row = _add(actor)
    _publish(dns_server, row)
    stale = CustomDomain.objects.get(pk=row.pk)
    services.domain_remove(actor=actor, domain=row)
    message = {"domain": ["proxy.vendor.test was removed meanwhile."]}
    assert _errors(lambda: services.domain_verify(actor=actor, domain=stale)) == message
    assert _errors(lambda: services.domain_set_default(actor=actor, domain=stale)) == message
    assert not CustomDomain.objects.exists()
