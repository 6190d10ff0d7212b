from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import Invite, Membership, Role, User
from tests import factories

pytestmark = pytest.mark.django_db


def _invite_url(admin_client, role=Role.DEVELOPER, email=""):
    response = admin_client.post(reverse("accounts:team"), {"role": role, "email": email})
    assert response.status_code == 200
    return response.context["new_invite_url"]


def test_admin_invites_a_newcomer_who_signs_up_through_the_link(admin_client, team):
    url = _invite_url(admin_client, Role.READ_ONLY)
    newcomer = Client()
    page = newcomer.get(url)
    assert b"Join Acme" in page.content
    response = newcomer.post(url, {"email": "new@acme.test", "password": "a-Long-test-passw0rd"})
    assert response.status_code == 302
    assert Membership.objects.get(user__email="new@acme.test", team=team).role == Role.READ_ONLY
    assert newcomer.get(reverse("licenses:app-list")).status_code == 200


def test_an_invite_link_works_once(admin_client, team, outsider, outsider_client):
    url = _invite_url(admin_client)
    assert outsider_client.post(url).status_code == 302
    assert Membership.objects.filter(user=outsider, team=team).exists()
    second = Client()
    assert second.get(url).status_code == 404


def test_an_invite_for_an_email_refuses_other_accounts(admin_client, team, outsider, outsider_client):
    url = _invite_url(admin_client, email="someone@acme.test")
    response = outsider_client.post(url, follow=True)
    assert b"This invite is for someone@acme.test" in response.content
    assert not Membership.objects.filter(user=outsider, team=team).exists()


def test_expired_and_revoked_invites_are_refused(actor):
    _, expired = services.invite_create(actor=actor, role=Role.DEVELOPER)
    Invite.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    invite, revoked = services.invite_create(actor=actor, role=Role.DEVELOPER)
    services.invite_revoke(actor=actor, invite=invite)
    for secret in (expired, revoked, "made-up"):
        assert Client().get(reverse("accounts:invite-accept", args=[secret])).status_code == 404


def test_invite_signup_with_a_weak_password_stores_nothing(admin_client, team):
    url = _invite_url(admin_client)
    response = Client().post(url, {"email": "new@acme.test", "password": "123"})
    assert response.status_code == 200
    assert "password" in response.context["form"].errors
    assert not User.objects.filter(email="new@acme.test").exists()
    assert Invite.objects.get().accepted_at is None


def test_invite_links_are_stored_only_as_hashes(admin_client):
    url = _invite_url(admin_client)
    secret = url.rstrip("/").rsplit("/", 1)[1]
    invite = Invite.objects.get()
    assert secret not in str(invite.__dict__.values())
    assert invite.token_hash == services.hash_secret(secret)


def test_a_user_in_two_teams_switches_between_them(admin, team, other_team):
    factories.add_member(other_team, Role.READ_ONLY, admin)
    client = Client()
    client.force_login(admin)
    factories.make_app(other_team, "other-thing")
    assert b"other-thing" not in client.get(reverse("licenses:app-list")).content
    client.post(reverse("accounts:team-switch"), {"team": other_team.pk})
    page = client.get(reverse("licenses:app-list"))
    assert b"other-thing" in page.content
    assert page.context["actor"].role == Role.READ_ONLY


def test_switching_to_a_team_you_are_not_in_changes_nothing(admin_client, team, other_team):
    admin_client.post(reverse("accounts:team-switch"), {"team": other_team.pk})
    assert admin_client.get(reverse("licenses:app-list")).context["actor"].team == team


def test_the_last_admin_cannot_leave_or_be_demoted(admin_client, admin, team):
    membership = Membership.objects.get(user=admin, team=team)
    admin_client.post(reverse("accounts:member-role", args=[membership.pk]), {"role": Role.DEVELOPER})
    admin_client.post(reverse("accounts:member-remove", args=[membership.pk]))
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN


def test_admin_changes_a_role_and_removes_a_member_after_confirming(admin_client, developer, team):
    membership = Membership.objects.get(user=developer, team=team)
    admin_client.post(reverse("accounts:member-role", args=[membership.pk]), {"role": Role.READ_ONLY})
    membership.refresh_from_db()
    assert membership.role == Role.READ_ONLY
    confirm = admin_client.get(reverse("accounts:member-remove", args=[membership.pk]))
    assert b"Remove dev@acme.test?" in confirm.content
    assert Membership.objects.filter(pk=membership.pk).exists()
    admin_client.post(reverse("accounts:member-remove", args=[membership.pk]))
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_a_user_without_a_team_is_sent_to_create_one(client):
    user = factories.make_user("lonely@example.test")
    client.force_login(user)
    response = client.get(reverse("licenses:app-list"))
    assert response.status_code == 302 and response["Location"] == reverse("accounts:team-create")
    client.post(reverse("accounts:team-create"), {"name": "Lonely Co"})
    assert client.get(reverse("licenses:app-list")).status_code == 200


def test_an_invite_for_another_address_says_so_before_the_click(admin_client, team, outsider, outsider_client):
    url = _invite_url(admin_client, email="someone@acme.test")
    page = outsider_client.get(url).content.decode()
    assert "This invite is for <strong>someone@acme.test</strong>; you are signed in as" in page
    assert f"<strong>{outsider.email}</strong>" in page
    assert "Join Acme</button>" not in page  # no button that can only fail
    assert "Log out and switch account" in page

    # Logging out from there comes back to the invite, ready for the right account.
    response = outsider_client.post(reverse("accounts:logout"), {"next": url.removeprefix("http://testserver")})
    assert response.status_code == 302 and response["Location"] == url.removeprefix("http://testserver")
    again = outsider_client.get(response["Location"]).content.decode()
    assert "Create account and join" in again and 'value="someone@acme.test"' in again
    assert not Membership.objects.filter(user=outsider, team=team).exists()


def test_an_invite_for_your_own_address_offers_the_join_button(admin_client, team, outsider, outsider_client):
    url = _invite_url(admin_client, email=outsider.email)
    page = outsider_client.get(url).content.decode()
    assert "Join Acme</button>" in page and 'id="invite-wrong-account"' not in page
    assert outsider_client.post(url).status_code == 302
    assert Membership.objects.filter(user=outsider, team=team).exists()


def test_a_new_invite_link_comes_with_a_copy_button(admin_client):
    response = admin_client.post(reverse("accounts:team"), {"role": Role.DEVELOPER, "email": ""})
    page = response.content.decode()
    assert f'value="{response.context["new_invite_url"]}"' in page and 'id="invite-url"' in page
    assert 'data-copy="invite-url"' in page


def test_the_sole_admin_is_offered_no_role_change_or_removal_that_would_fail(admin_client, admin, developer, team):
    mine = Membership.objects.get(user=admin, team=team)
    theirs = Membership.objects.get(user=developer, team=team)
    page = admin_client.get(reverse("accounts:team")).content.decode()
    assert "You are the only admin; make someone else admin first" in page
    assert reverse("accounts:member-remove", args=[mine.pk]) not in page
    assert reverse("accounts:member-role", args=[mine.pk]) not in page
    assert reverse("accounts:member-remove", args=[theirs.pk]) in page
    assert reverse("accounts:member-role", args=[theirs.pk]) in page

    # With a second admin, either can be demoted or removed, and the note is gone.
    admin_client.post(reverse("accounts:member-role", args=[theirs.pk]), {"role": Role.ADMIN})
    page = admin_client.get(reverse("accounts:team")).content.decode()
    assert "only admin" not in page
    for m in (mine, theirs):
        assert reverse("accounts:member-remove", args=[m.pk]) in page
        assert reverse("accounts:member-role", args=[m.pk]) in page


def test_members_who_are_not_admins_see_roles_but_no_sole_admin_note(viewer_client):
    page = viewer_client.get(reverse("accounts:team")).content.decode()
    assert "only admin" not in page and "/remove/" not in page and "/role/" not in page
