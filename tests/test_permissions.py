"""Who may do what: every role against every write endpoint and page, and team isolation."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts import domain_services, services
from accounts.models import ApiToken, CustomDomain, Invite, Membership, Role, TokenKind
from tests import factories

pytestmark = pytest.mark.django_db

ALLOWED, DENIED = "allowed", "denied"

# role -> expectation for each write action
MATRIX = {
    "create app": {Role.ADMIN: ALLOWED, Role.DEVELOPER: ALLOWED, Role.READ_ONLY: DENIED},
    "rename app": {Role.ADMIN: ALLOWED, Role.DEVELOPER: ALLOWED, Role.READ_ONLY: DENIED},
    "delete app": {Role.ADMIN: ALLOWED, Role.DEVELOPER: ALLOWED, Role.READ_ONLY: DENIED},
    "create own token": {Role.ADMIN: ALLOWED, Role.DEVELOPER: ALLOWED, Role.READ_ONLY: ALLOWED},
    "create service account": {Role.ADMIN: ALLOWED, Role.DEVELOPER: DENIED, Role.READ_ONLY: DENIED},
    "revoke service account": {Role.ADMIN: ALLOWED, Role.DEVELOPER: DENIED, Role.READ_ONLY: DENIED},
    "create invite": {Role.ADMIN: ALLOWED, Role.DEVELOPER: DENIED, Role.READ_ONLY: DENIED},
    "revoke invite": {Role.ADMIN: ALLOWED, Role.DEVELOPER: DENIED, Role.READ_ONLY: DENIED},
    "change role": {Role.ADMIN: ALLOWED, Role.DEVELOPER: DENIED, Role.READ_ONLY: DENIED},
    "remove member": {Role.ADMIN: ALLOWED, Role.DEVELOPER: DENIED, Role.READ_ONLY: DENIED},
    "add custom domain": {Role.ADMIN: ALLOWED, Role.DEVELOPER: DENIED, Role.READ_ONLY: DENIED},
    "remove custom domain": {Role.ADMIN: ALLOWED, Role.DEVELOPER: DENIED, Role.READ_ONLY: DENIED},
}
CASES = [(action, role) for action, roles in MATRIX.items() for role in roles]


@pytest.fixture
def world(actor, team, app):
    """Objects for every action: an app, a service account, an invite, a member to change, a domain."""
    service, _ = services.token_create(actor=actor, kind=TokenKind.SERVICE, name="bot")
    invite, _ = services.invite_create(actor=actor, role=Role.DEVELOPER)
    target = Membership.objects.get(user=factories.add_member(team, Role.READ_ONLY), team=team)
    domain = domain_services.domain_add(actor=actor, domain="proxy.acme.test", kind="proxy")
    return {"app": app, "service": service, "invite": invite, "target": target, "domain": domain}


def _api_call(client, action, w):
    calls = {
        "create app": lambda: client.post("/api/v1/apps/", {"name": "New App"}, format="json"),
        "rename app": lambda: client.patch(f"/api/v1/apps/{w['app'].slug}/", {"name": "X"}, format="json"),
        "delete app": lambda: client.delete(f"/api/v1/apps/{w['app'].slug}/"),
        "create own token": lambda: client.post("/api/v1/tokens/", {"name": "mine"}, format="json"),
        "create service account": lambda: client.post("/api/v1/service-accounts/", {"name": "b2"}, format="json"),
        "revoke service account": lambda: client.delete(f"/api/v1/service-accounts/{w['service'].pk}/"),
        "create invite": lambda: client.post("/api/v1/invites/", {"role": "developer"}, format="json"),
        "revoke invite": lambda: client.delete(f"/api/v1/invites/{w['invite'].pk}/"),
        "change role": lambda: client.patch(f"/api/v1/members/{w['target'].pk}/", {"role": "developer"}, format="json"),
        "remove member": lambda: client.delete(f"/api/v1/members/{w['target'].pk}/"),
        "add custom domain": lambda: client.post(
            "/api/v1/custom-domains/", {"domain": "new.acme.test", "kind": "proxy"}, format="json"
        ),
        "remove custom domain": lambda: client.delete(f"/api/v1/custom-domains/{w['domain'].domain}/"),
    }
    return calls[action]()


def _page_call(client, action, w):
    calls = {
        "create app": lambda: client.post(reverse("licenses:app-create"), {"name": "New App"}),
        "rename app": lambda: client.post(reverse("licenses:app-detail", args=[w["app"].slug]), {"name": "X"}),
        "delete app": lambda: client.post(reverse("licenses:app-delete", args=[w["app"].slug])),
        "create own token": lambda: client.post(reverse("accounts:tokens"), {"kind": "user", "token-name": "mine"}),
        "create service account": lambda: client.post(
            reverse("accounts:tokens"), {"kind": "service", "service-name": "b2", "service-access": "read-only"}
        ),
        "revoke service account": lambda: client.post(reverse("accounts:token-revoke", args=[w["service"].pk])),
        "create invite": lambda: client.post(reverse("accounts:team"), {"role": "developer"}),
        "revoke invite": lambda: client.post(reverse("accounts:invite-revoke", args=[w["invite"].pk])),
        "change role": lambda: client.post(
            reverse("accounts:member-role", args=[w["target"].pk]), {"role": "developer"}
        ),
        "remove member": lambda: client.post(reverse("accounts:member-remove", args=[w["target"].pk])),
        "add custom domain": lambda: client.post(
            reverse("accounts:domains"), {"domain": "new.acme.test", "kind": "proxy"}
        ),
        "remove custom domain": lambda: client.post(reverse("accounts:domain-remove", args=[w["domain"].pk])),
    }
    return calls[action]()


def _effect_happened(action, w) -> bool:
    effects = {
        "create app": lambda: w["app"].team.apps.filter(name="New App").exists(),
        "rename app": lambda: type(w["app"]).objects.filter(pk=w["app"].pk, name="X").exists(),
        "delete app": lambda: not type(w["app"]).objects.filter(pk=w["app"].pk).exists(),
        "create own token": lambda: ApiToken.objects.filter(name="mine").exists(),
        "create service account": lambda: ApiToken.objects.filter(name="b2").exists(),
        "revoke service account": lambda: ApiToken.objects.get(pk=w["service"].pk).revoked_at is not None,
        "create invite": lambda: Invite.objects.count() == 2,
        "revoke invite": lambda: Invite.objects.get(pk=w["invite"].pk).revoked_at is not None,
        "change role": lambda: Membership.objects.get(pk=w["target"].pk).role == Role.DEVELOPER,
        "remove member": lambda: not Membership.objects.filter(pk=w["target"].pk).exists(),
        "add custom domain": lambda: CustomDomain.objects.filter(domain="new.acme.test").exists(),
        "remove custom domain": lambda: not CustomDomain.objects.filter(pk=w["domain"].pk).exists(),
    }
    return effects[action]()


@pytest.mark.parametrize("action, role", CASES)
def test_api_write_permissions_follow_the_role(action, role, team, world, member_with):
    response = _api_call(factories.api_client(member_with(role), team), action, world)
    if MATRIX[action][role] == ALLOWED:
        assert response.status_code in (200, 201, 204), response.content
        assert _effect_happened(action, world)
    else:
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "permission_denied"
        assert not _effect_happened(action, world)


@pytest.mark.parametrize("action, role", CASES)
def test_page_write_permissions_follow_the_role(action, role, world, client, member_with):
    client.force_login(member_with(role))
    response = _page_call(client, action, world)
    if MATRIX[action][role] == ALLOWED:
        assert response.status_code in (200, 302), response.content[:300]
        assert _effect_happened(action, world)
    else:
        assert response.status_code == 403
        assert not _effect_happened(action, world)


def test_read_only_members_see_pages_without_write_buttons(viewer_client, app):
    for name in ["licenses:app-list", "accounts:team", "accounts:tokens", "registries:image-list"]:
        assert viewer_client.get(reverse(name)).status_code == 200
    detail = viewer_client.get(reverse("licenses:app-detail", args=[app.slug])).content
    assert b"Delete app" not in detail and b"Rename" not in detail


def test_an_outsider_gets_404_for_every_object_of_another_team(outsider_client, outsider_api, world):
    pages = [
        reverse("licenses:app-detail", args=[world["app"].slug]),
        reverse("licenses:app-delete", args=[world["app"].slug]),
        reverse("accounts:token-revoke", args=[world["service"].pk]),
        reverse("accounts:member-remove", args=[world["target"].pk]),
        reverse("accounts:domain-remove", args=[world["domain"].pk]),
    ]
    for url in pages:
        assert outsider_client.get(url).status_code == 404, url
        assert outsider_client.post(url).status_code == 404, url
    for url in [
        reverse("accounts:invite-revoke", args=[world["invite"].pk]),
        reverse("accounts:member-role", args=[world["target"].pk]),
    ]:
        assert outsider_client.post(url, {"role": "admin"}).status_code == 404, url
    api = [
        f"/api/v1/apps/{world['app'].slug}/",
        f"/api/v1/service-accounts/{world['service'].pk}/",
        f"/api/v1/invites/{world['invite'].pk}/",
        f"/api/v1/members/{world['target'].pk}/",
        f"/api/v1/custom-domains/{world['domain'].domain}/",
    ]
    for url in api:
        assert outsider_api.get(url).status_code == 404, url
        assert outsider_api.delete(url).status_code == 404, url
    assert outsider_api.patch(api[0], {"name": "pwned"}, format="json").status_code == 404
    assert outsider_api.patch(api[3], {"role": "admin"}, format="json").status_code == 404
    # Nothing changed.
    world["app"].refresh_from_db()
    assert world["app"].name == "Acme API"
    assert Membership.objects.get(pk=world["target"].pk).role == Role.READ_ONLY
    assert ApiToken.objects.get(pk=world["service"].pk).revoked_at is None


def test_lists_show_only_the_callers_team(outsider_api, world):
    assert outsider_api.get("/api/v1/apps/").json()["results"] == []
    assert outsider_api.get("/api/v1/service-accounts/").json()["results"] == []
    assert [m["email"] for m in outsider_api.get("/api/v1/members/").json()["results"]] == ["boss@other.test"]
    audit = outsider_api.get("/api/v1/audit-events/").json()["results"]
    assert audit and {e["actor"] for e in audit} == {"boss@other.test"}


@pytest.mark.parametrize("role", [Role.ADMIN, Role.DEVELOPER, Role.READ_ONLY])
def test_only_admins_may_read_the_audit_log(role, team, world, client, member_with):
    allowed = role == Role.ADMIN
    api = factories.api_client(member_with(role), team).get("/api/v1/audit-events/")
    assert api.status_code == (200 if allowed else 403)
    client.force_login(member_with(role))
    assert client.get(reverse("accounts:audit")).status_code == (200 if allowed else 403)


def test_someone_elses_personal_token_cannot_be_revoked(developer, team, viewer_api, viewer_client):
    secret = factories.user_token(developer, team)
    token = ApiToken.objects.get(prefix=secret[:12])
    assert viewer_api.delete(f"/api/v1/tokens/{token.pk}/").status_code == 404
    assert viewer_client.post(reverse("accounts:token-revoke", args=[token.pk])).status_code == 403
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None


def test_mass_assignment_of_team_or_role_is_ignored(developer_api, developer, other_team, team):
    response = developer_api.post(
        "/api/v1/apps/", {"name": "Sneaky", "team": other_team.pk, "team_id": other_team.pk}, format="json"
    )
    assert response.status_code == 201
    assert team.apps.filter(slug="sneaky").exists()
    me = Membership.objects.get(user=developer)
    assert developer_api.patch(f"/api/v1/members/{me.pk}/", {"role": "admin"}, format="json").status_code == 403
