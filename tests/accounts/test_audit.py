"""Team, token, service-account, member and invite writes go through a service that takes the
actor and leaves an audit entry, whichever front door (page or API) they came through; the
admin-only ones refuse anyone else, also when a caller skips the page and calls the service."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.access import Actor, Perm
from accounts.models import ApiToken, AuditEvent, Invite, Membership, Role, TokenAccess, TokenKind
from tests import factories

pytestmark = pytest.mark.django_db


def _trail(team) -> list[tuple[str, str, str]]:
    """(who, did what, to what), oldest first."""
    events = AuditEvent.objects.filter(team=team).order_by("created_at", "pk")
    return [(e.actor, e.action, e.target) for e in events]


def _new_events(team, since: int) -> list[tuple[str, str, str]]:
    return _trail(team)[since:]


# --- tokens and service accounts ---------------------------------------------------------


def test_tokens_and_service_accounts_made_and_revoked_through_the_api_are_audited(admin_api, team):
    before = len(_trail(team))
    token = admin_api.post("/api/v1/tokens/", {"name": "laptop"}, format="json").json()
    robot = admin_api.post(
        "/api/v1/service-accounts/", {"name": "release-bot", "access": TokenAccess.READ_ONLY}, format="json"
    ).json()
    assert admin_api.delete(f"/api/v1/tokens/{token['id']}/").status_code == 204
    assert admin_api.delete(f"/api/v1/service-accounts/{robot['id']}/").status_code == 204
    assert _new_events(team, before) == [
        ("admin@acme.test", "token.create", "laptop"),
        ("admin@acme.test", "service_account.create", "release-bot"),
        ("admin@acme.test", "token.revoke", "laptop"),
        ("admin@acme.test", "service_account.revoke", "release-bot"),
    ]
    created = AuditEvent.objects.get(action="service_account.create")
    assert created.detail == {"prefix": robot["prefix"], "access": TokenAccess.READ_ONLY}
    assert robot["token"] not in str([e.detail for e in AuditEvent.objects.all()])  # the secret never


def test_tokens_made_and_revoked_through_the_pages_are_audited(admin_client, team):
    before = len(_trail(team))
    admin_client.post(reverse("accounts:tokens"), {"kind": "user", "token-name": "laptop"})
    admin_client.post(
        reverse("accounts:tokens"), {"kind": "service", "service-name": "ci", "service-access": "read-only"}
    )
    for token in ApiToken.objects.filter(team=team, name__in=["laptop", "ci"]):
        admin_client.post(reverse("accounts:token-revoke", args=[token.pk]))
    assert sorted(_new_events(team, before)) == [
        ("admin@acme.test", "service_account.create", "ci"),
        ("admin@acme.test", "service_account.revoke", "ci"),
        ("admin@acme.test", "token.create", "laptop"),
        ("admin@acme.test", "token.revoke", "laptop"),
    ]


def test_a_developer_calling_the_service_directly_cannot_create_a_service_account(developer, team):
    actor = factories.actor_of(developer, team)
    with pytest.raises(PermissionDenied, match="Only a team admin may create service accounts"):
        services.token_create(actor=actor, kind=TokenKind.SERVICE, name="sneaky-bot")
    assert not ApiToken.objects.filter(kind=TokenKind.SERVICE).exists()
    assert not AuditEvent.objects.filter(action__startswith="service_account").exists()
    _, secret = services.token_create(actor=actor, kind=TokenKind.USER, name="mine")  # their own: fine
    assert secret.startswith("vpu_")


def test_the_revoke_service_keeps_to_the_pages_rule(admin, developer, team):
    admins, developers = factories.actor_of(admin, team), factories.actor_of(developer, team)
    robot, _ = services.token_create(actor=admins, kind=TokenKind.SERVICE, name="bot")
    personal, _ = services.token_create(actor=developers, kind=TokenKind.USER, name="laptop")
    with pytest.raises(PermissionDenied):
        services.token_revoke(actor=developers, token=robot)
    with pytest.raises(PermissionDenied):
        services.token_revoke(actor=admins, token=personal)  # not theirs
    assert ApiToken.objects.filter(revoked_at__isnull=True).count() == 2
    services.token_revoke(actor=developers, token=personal)
    services.token_revoke(actor=admins, token=robot)
    assert ApiToken.objects.filter(revoked_at__isnull=True).count() == 0


# --- members and invites -----------------------------------------------------------------


def test_role_changes_and_removals_through_the_api_are_audited(admin_api, developer, viewer, team):
    before = len(_trail(team))
    dev = Membership.objects.get(user=developer, team=team)
    view = Membership.objects.get(user=viewer, team=team)
    assert admin_api.patch(f"/api/v1/members/{dev.pk}/", {"role": Role.ADMIN}, format="json").status_code == 200
    assert admin_api.delete(f"/api/v1/members/{view.pk}/").status_code == 204
    assert _new_events(team, before) == [
        ("admin@acme.test", "member.role", "dev@acme.test"),
        ("admin@acme.test", "member.remove", "viewer@acme.test"),
    ]
    assert AuditEvent.objects.get(action="member.role").detail == {"role": Role.ADMIN, "was": Role.DEVELOPER}


def test_role_changes_and_removals_through_the_pages_are_audited(admin_client, developer, viewer, team):
    before = len(_trail(team))
    dev = Membership.objects.get(user=developer, team=team)
    view = Membership.objects.get(user=viewer, team=team)
    admin_client.post(reverse("accounts:member-role", args=[dev.pk]), {"role": Role.READ_ONLY})
    admin_client.post(reverse("accounts:member-remove", args=[view.pk]))
    assert _new_events(team, before) == [
        ("admin@acme.test", "member.role", "dev@acme.test"),
        ("admin@acme.test", "member.remove", "viewer@acme.test"),
    ]


def test_an_invite_made_accepted_and_another_revoked_are_audited(admin_api, admin_client, outsider, team):
    before = len(_trail(team))
    made = admin_api.post("/api/v1/invites/", {"role": Role.DEVELOPER}, format="json").json()
    joiner = Client()
    joiner.force_login(outsider)
    joiner.post(made["url"])
    admin_client.post(reverse("accounts:team"), {"role": Role.READ_ONLY, "email": "later@acme.test"})
    unused = Invite.objects.get(email="later@acme.test")
    admin_client.post(reverse("accounts:invite-revoke", args=[unused.pk]))
    assert _new_events(team, before) == [
        ("admin@acme.test", "invite.create", "anyone with the link"),
        ("boss@other.test", "invite.accept", "boss@other.test"),
        ("admin@acme.test", "invite.create", "later@acme.test"),
        ("admin@acme.test", "invite.revoke", "later@acme.test"),
    ]


@pytest.mark.parametrize("call", ["set role", "remove", "invite", "revoke invite"])
def test_admin_only_services_refuse_a_developer_who_calls_them_directly(call, developer, viewer, admin, team):
    actor = factories.actor_of(developer, team)
    target = Membership.objects.get(user=viewer, team=team)
    invite, _ = services.invite_create(actor=factories.actor_of(admin, team), role=Role.DEVELOPER)
    calls = {
        "set role": lambda: services.membership_set_role(actor=actor, membership=target, role=Role.ADMIN),
        "remove": lambda: services.membership_remove(actor=actor, membership=target),
        "invite": lambda: services.invite_create(actor=actor, role=Role.ADMIN),
        "revoke invite": lambda: services.invite_revoke(actor=actor, invite=invite),
    }
    with pytest.raises(PermissionDenied, match="Only a team admin may"):
        calls[call]()
    assert Membership.objects.get(pk=target.pk).role == Role.READ_ONLY
    assert Invite.objects.filter(revoked_at__isnull=True).count() == 1


def test_an_admin_of_another_team_cannot_reach_this_teams_members_through_the_service(
    outsider, other_team, viewer, team
):
    foreign_admin = factories.actor_of(outsider, other_team)
    with pytest.raises(PermissionDenied, match="another team"):
        services.membership_remove(actor=foreign_admin, membership=Membership.objects.get(user=viewer, team=team))
    assert Membership.objects.filter(user=viewer, team=team).exists()


# --- the system actor --------------------------------------------------------------------


def test_the_system_actor_is_named_in_the_trail_and_holds_no_permission(team):
    robot = Actor.for_system(team, "daily check")
    assert robot.label == "daily check"
    assert not any(robot.can(perm) for perm in Perm)
    services.audit(actor=robot, action="registry.test", target="quay")
    assert _trail(team)[-1] == ("daily check", "registry.test", "quay")


def test_a_new_team_starts_its_trail_with_who_created_it(client):
    response = client.post(
        reverse("accounts:signup"),
        {"email": "founder@initech.test", "password": factories.PASSWORD, "team_name": "Initech"},
    )
    assert response.status_code == 302
    team = Membership.objects.get(user__email="founder@initech.test").team
    assert _trail(team) == [("founder@initech.test", "team.create", "initech")]
