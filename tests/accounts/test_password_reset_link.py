"""An admin's one-time password reset link for a member."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, Membership, PasswordReset
from tests import factories

pytestmark = pytest.mark.django_db

NEW = "a-Fresh-passw0rd-here"


def _issue(admin_client: Client, member) -> str:
    membership = Membership.objects.get(user=member)
    response = admin_client.post(reverse("accounts:member-password-reset", args=[membership.pk]))
    assert response.status_code == 200
    return response.context["url"]


def _set(client: Client, url: str, new: str = NEW, again: str | None = None):
    return client.post(url, {"new_password": new, "new_password_again": new if again is None else again})


def test_an_admin_issues_a_link_once_and_the_member_sets_a_new_password_with_it(admin_client, developer, team):
    url = _issue(admin_client, developer)
    assert PasswordReset.objects.get().token_hash not in url  # the secret is in the link, only its hash stored
    visitor = Client()
    assert visitor.get(url).status_code == 200
    response = _set(visitor, url)
    assert response.status_code == 302 and response["Location"] == reverse("accounts:login")
    developer.refresh_from_db()
    assert developer.check_password(NEW)
    assert visitor.get(url).status_code == 404  # single use
    assert [(e.actor, e.action, e.target) for e in AuditEvent.objects.filter(team=team).order_by("pk")][-2:] == [
        ("admin@acme.test", "member.password_reset_link", developer.email),
        (developer.email, "user.password_reset", developer.email),
    ]


def test_the_team_page_offers_the_link_for_others_not_for_oneself(admin_client, developer):
    page = admin_client.get(reverse("accounts:team")).content.decode()
    assert reverse("accounts:member-password-reset", args=[Membership.objects.get(user=developer).pk]) in page
    mine = Membership.objects.get(user__email="admin@acme.test")
    assert reverse("accounts:member-password-reset", args=[mine.pk]) not in page


def test_an_expired_link_is_refused(admin_client, developer):
    url = _issue(admin_client, developer)
    PasswordReset.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Client().get(url).status_code == 404
    assert _set(Client(), url).status_code == 404
    developer.refresh_from_db()
    assert developer.check_password(factories.PASSWORD)


def test_an_unknown_link_is_404(db):
    response = Client().get(reverse("accounts:password-reset", args=["nope"]))
    assert response.status_code == 404 and b"does not work" in response.content


def test_a_weak_or_mismatched_password_is_a_field_error_and_the_link_stays_usable(admin_client, developer):
    url = _issue(admin_client, developer)
    weak = _set(Client(), url, new="1234567")
    assert any("too short" in e for e in weak.context["form"].errors["new_password"])
    differ = _set(Client(), url, again=NEW + "x")
    assert differ.context["form"].errors["new_password_again"] == [
        "The two new passwords differ; type the same one twice."
    ]
    developer.refresh_from_db()
    assert developer.check_password(factories.PASSWORD)
    assert _set(Client(), url).status_code == 302


def test_only_admins_issue_links(developer_client, viewer):
    membership = Membership.objects.get(user=viewer)
    response = developer_client.post(reverse("accounts:member-password-reset", args=[membership.pk]))
    assert response.status_code == 403
    assert not PasswordReset.objects.exists()


def test_another_teams_member_is_404(admin_client, outsider):
    membership = Membership.objects.get(user=outsider)
    response = admin_client.post(reverse("accounts:member-password-reset", args=[membership.pk]))
    assert response.status_code == 404
    assert not PasswordReset.objects.exists()


def test_no_link_for_a_member_who_is_also_in_another_team(admin_client, developer, other_team):
    factories.add_member(other_team, "read-only", developer)
    membership = Membership.objects.get(user=developer, team__name="Acme")
    response = admin_client.post(reverse("accounts:member-password-reset", args=[membership.pk]), follow=True)
    assert "is also in other teams" in response.content.decode()
    assert not PasswordReset.objects.exists()


def test_setting_a_password_with_a_link_unlocks_a_locked_account(admin_client, team, settings):
    from accounts import lockout

    settings.LOGIN_FAILURE_LIMIT = 2
    # An address of its own per run: lockout counts outlive a run in Redis.
    member = factories.add_member(team, "developer", factories.make_user(f"l{secrets.token_hex(6)}@acme.test"))
    for _ in range(2):
        lockout.record_failure(member.email)
    with pytest.raises(lockout.AccountLocked):
        lockout.check(member.email)
    assert _set(Client(), _issue(admin_client, member)).status_code == 302
    lockout.check(member.email)  # no longer locked
    visitor = Client()
    assert visitor.post(reverse("accounts:login"), {"username": member.email, "password": NEW}).status_code == 302
