from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Membership, Role, Team, User

pytestmark = pytest.mark.django_db

GOOD = {"email": "Vendor@Example.com", "name": "Vee", "password": "a-Long-test-passw0rd", "team_name": "Acme Corp"}


def test_signup_creates_user_team_and_admin_membership_and_logs_in(client):
    response = client.post(reverse("accounts:signup"), GOOD)
    assert response.status_code == 302
    user = User.objects.get(email="vendor@example.com")
    team = Team.objects.get(slug="acme-corp")
    assert Membership.objects.get(user=user, team=team).role == Role.ADMIN
    page = client.get(reverse("licenses:app-list"))
    assert page.status_code == 200
    assert b"Acme Corp" in page.content


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"email": ""}, "email", "Enter an email address"),
        ({"email": "not-an-email"}, "email", "Enter a valid email address"),
        ({"password": "short"}, "password", "too short"),
        ({"password": "1234567890123"}, "password", "entirely numeric"),
        ({"password": "password1234"}, "password", "too common"),
        ({"team_name": "   "}, "team_name", "Enter a team name"),
        ({"team_name": "!!!"}, "team_name", "at least one letter or digit"),
    ],
)
def test_signup_bad_input_names_the_field_and_stores_nothing(client, change, field, message):
    response = client.post(reverse("accounts:signup"), {**GOOD, **change})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert not User.objects.exists()
    assert not Team.objects.exists()


def test_signup_refuses_an_email_already_registered(client, admin):
    response = client.post(reverse("accounts:signup"), {**GOOD, "email": "ADMIN@acme.test", "team_name": "New"})
    assert "already exists" in " ".join(response.context["form"].errors["email"])
    assert not Team.objects.filter(name="New").exists()


def test_signup_refuses_a_team_name_taken_and_creates_no_user(client, team):
    response = client.post(reverse("accounts:signup"), {**GOOD, "team_name": "ACME"})
    assert "already exists" in " ".join(response.context["form"].errors["team_name"])
    assert not User.objects.filter(email="vendor@example.com").exists()


def test_login_accepts_email_in_any_case_and_logout_ends_the_session(client, admin):
    response = client.post(
        reverse("accounts:login"), {"username": "Admin@ACME.test", "password": "a-Long-test-passw0rd"}
    )
    assert response.status_code == 302
    assert client.get(reverse("licenses:app-list")).status_code == 200
    client.post(reverse("accounts:logout"))
    assert client.get(reverse("licenses:app-list")).status_code == 302


def test_wrong_password_shows_an_error_not_a_session(client, admin):
    response = client.post(reverse("accounts:login"), {"username": "admin@acme.test", "password": "wrong"})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert client.get(reverse("licenses:app-list")).status_code == 302


def test_pages_need_login(client):
    for name in ["licenses:app-list", "accounts:team", "accounts:tokens", "registries:image-list"]:
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
