from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db

URL = reverse("accounts:password-change")
NEW = "another-Long-passw0rd"


def _change(client: Client, current: str = factories.PASSWORD, new: str = NEW, again: str | None = None):
    return client.post(
        URL, {"current_password": current, "new_password": new, "new_password_again": new if again is None else again}
    )


def _logged_in_client(email: str, password: str = factories.PASSWORD) -> Client:
    client = Client()
    assert client.login(username=email, password=password)
    return client


def test_the_header_links_to_the_change_password_page(admin_client):
    assert URL.encode() in admin_client.get(reverse("accounts:tokens")).content
    assert admin_client.get(URL).status_code == 200


def test_the_page_needs_a_login(client):
    response = client.get(URL)
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]


def test_changing_the_password_keeps_this_session_and_logs_out_the_others(admin, team):
    here, elsewhere = _logged_in_client(admin.email), _logged_in_client(admin.email)
    response = _change(here)
    assert response.status_code == 302
    admin.refresh_from_db()
    assert admin.check_password(NEW)
    assert here.get(URL).status_code == 200
    assert elsewhere.get(URL).status_code == 302  # sent to the log-in page
    assert _logged_in_client(admin.email, NEW)
    event = AuditEvent.objects.get(team=team, action="user.password_change")
    assert (event.actor, event.target) == (admin.email, admin.email)
    assert NEW not in str(event.detail)


def test_a_wrong_current_password_is_a_field_error_and_changes_nothing(admin, admin_client):
    response = _change(admin_client, current="not-my-password")
    assert response.status_code == 200
    assert response.context["form"].errors["current_password"] == ["That is not your current password."]
    admin.refresh_from_db()
    assert admin.check_password(factories.PASSWORD)
    assert not AuditEvent.objects.filter(action="user.password_change").exists()


def test_a_weak_new_password_is_refused_by_the_validators(admin, admin_client):
    response = _change(admin_client, new="1234567")
    errors = response.context["form"].errors["new_password"]
    assert any("too short" in e for e in errors)
    admin.refresh_from_db()
    assert admin.check_password(factories.PASSWORD)


def test_two_different_new_passwords_are_refused(admin, admin_client):
    response = _change(admin_client, again=NEW + "x")
    assert response.context["form"].errors["new_password_again"] == [
        "The two new passwords differ; type the same one twice."
    ]
    admin.refresh_from_db()
    assert admin.check_password(factories.PASSWORD)


def test_an_empty_form_names_every_missing_field(admin_client):
    response = _change(admin_client, current="", new="")
    errors = response.context["form"].errors
    assert errors["current_password"] == ["Enter your current password."]
    assert errors["new_password"] == ["Enter a new password."]
    assert errors["new_password_again"] == ["Type the new password again."]


def test_the_same_password_again_is_refused(admin_client):
    response = _change(admin_client, new=factories.PASSWORD)
    assert response.context["form"].errors["new_password"] == ["Choose a password different from your current one."]
