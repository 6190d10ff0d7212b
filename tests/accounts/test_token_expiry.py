"""Optional expiry of API tokens, at every door that takes a token."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken, AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db


def _expire(secret: str) -> ApiToken:
    """The token made to have expired a minute ago, as time passing would."""
    token = ApiToken.objects.get(prefix=secret[:12])
    token.expires_at = timezone.now() - timedelta(minutes=1)
    token.save(update_fields=["expires_at"])
    return token


def _expired_message(token: ApiToken) -> str:
    return f"API token expired on {token.expires_at:%Y-%m-%d %H:%M} UTC; create a new one"


def test_a_token_made_with_an_expiry_in_the_api_shows_it_and_works_until_then(admin_api):
    expires = timezone.now() + timedelta(days=30)
    response = admin_api.post("/api/v1/tokens/", {"name": "ci", "expires_at": expires.isoformat()}, format="json")
    assert response.status_code == 201, response.json()
    secret = response.json()["token"]
    listed = admin_api.get("/api/v1/tokens/").json()["results"][0]
    assert listed["expires_at"] is not None and listed["active"] is True
    assert ApiToken.objects.get(prefix=secret[:12]).expires_at == expires
    assert factories.bearer_client(secret).get("/api/v1/apps/").status_code == 200
    event = AuditEvent.objects.get(action="token.create", target="ci")
    assert event.detail["expires_at"] == expires.isoformat()


def test_without_an_expiry_a_token_never_expires(admin_api):
    response = admin_api.post("/api/v1/tokens/", {"name": "ci"}, format="json")
    assert response.json()["expires_at"] is None


def test_an_expired_token_gets_401_naming_the_date_from_the_api(admin, team):
    secret = factories.user_token(admin, team)
    token = _expire(secret)
    response = factories.bearer_client(secret).get("/api/v1/apps/")
    assert response.status_code == 401
    assert response.json()["message"] == _expired_message(token) + "."
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_an_expired_service_account_gets_the_same_401(team):
    secret = factories.service_token(team)
    token = _expire(secret)
    response = factories.bearer_client(secret).get("/api/v1/apps/")
    assert (response.status_code, response.json()["message"]) == (401, _expired_message(token) + ".")


def test_an_expired_token_is_refused_at_the_private_registrys_token_endpoint(admin, team):
    secret = factories.user_token(admin, team)
    basic = "Basic " + base64.b64encode(f"token:{secret}".encode()).decode()
    ask = {"service": django_settings.REGISTRY_SERVICE}
    assert Client().get("/v2/token", ask, HTTP_AUTHORIZATION=basic).status_code == 200
    token = _expire(secret)
    response = Client().get("/v2/token", ask, HTTP_AUTHORIZATION=basic)
    assert response.status_code == 401
    assert response.json()["errors"][0]["message"] == _expired_message(token)
    assert response["WWW-Authenticate"].startswith("Basic")


def test_a_revoked_token_past_its_expiry_still_says_revoked(admin, team):
    secret = factories.user_token(admin, team)
    ApiToken.objects.filter(prefix=secret[:12]).update(revoked_at=timezone.now())
    _expire(secret)
    response = factories.bearer_client(secret).get("/api/v1/apps/")
    assert response.json()["message"] == "Invalid or revoked API token."


def test_an_expiry_in_the_past_is_refused_and_nothing_stored(admin_api):
    past = (timezone.now() - timedelta(hours=1)).isoformat()
    for path, body in [("/api/v1/tokens/", {"name": "ci"}), ("/api/v1/service-accounts/", {"name": "bot"})]:
        response = admin_api.post(path, {**body, "expires_at": past}, format="json")
        assert response.status_code == 400
        assert response.json()["errors"]["expires_at"] == [
            "Choose an expiry in the future, or none for a token that never expires."
        ]
    assert not ApiToken.objects.filter(name__in=["ci", "bot", "laptop"]).exists()


def test_an_expiry_that_is_no_time_is_refused_naming_the_field(admin_api):
    response = admin_api.post("/api/v1/tokens/", {"name": "ci", "expires_at": "next week"}, format="json")
    assert response.status_code == 400 and "expires_at" in response.json()["errors"]
    assert not ApiToken.objects.filter(name__in=["ci", "bot", "laptop"]).exists()


def test_a_service_account_made_in_the_api_can_expire(admin_api):
    expires = timezone.now() + timedelta(days=7)
    response = admin_api.post(
        "/api/v1/service-accounts/", {"name": "bot", "expires_at": expires.isoformat()}, format="json"
    )
    assert response.status_code == 201
    assert ApiToken.objects.get(name="bot").expires_at == expires


def test_the_page_sets_an_expiry_and_lists_it(admin_client):
    before = timezone.now()
    response = admin_client.post(
        reverse("accounts:tokens"), {"kind": "user", "token-name": "laptop", "token-expires_in": "30"}
    )
    token = response.context["token"]
    assert before + timedelta(days=30) <= token.expires_at <= timezone.now() + timedelta(days=30)
    service = admin_client.post(
        reverse("accounts:tokens"),
        {"kind": "service", "service-name": "bot", "service-access": "read-only", "service-expires_in": "7"},
    ).context["token"]
    assert service.expires_at.date() == (before + timedelta(days=7)).date()
    page = admin_client.get(reverse("accounts:tokens")).content.decode()
    assert f"{token.expires_at:%Y-%m-%d %H:%M}" in page and f"{service.expires_at:%Y-%m-%d %H:%M}" in page


def test_the_page_without_an_expiry_makes_a_token_that_never_expires(admin_client):
    response = admin_client.post(reverse("accounts:tokens"), {"kind": "user", "token-name": "laptop"})
    assert response.context["token"].expires_at is None


def test_the_page_refuses_an_expiry_it_does_not_offer(admin_client):
    response = admin_client.post(
        reverse("accounts:tokens"), {"kind": "user", "token-name": "laptop", "token-expires_in": "5"}
    )
    assert "expires_in" in response.context["token_form"].errors
    assert not ApiToken.objects.filter(name__in=["ci", "bot", "laptop"]).exists()


def test_an_expired_token_is_listed_as_expired_and_can_still_be_revoked(admin, team, admin_client):
    secret = factories.user_token(admin, team, "old")
    token = _expire(secret)
    page = admin_client.get(reverse("accounts:tokens")).content.decode()
    assert f"expired {token.expires_at:%Y-%m-%d}" in page
    assert reverse("accounts:token-revoke", args=[token.pk]) in page


def test_an_expired_service_account_name_is_freed_by_revoking_it(admin_api, team):
    _expire(factories.service_token(team, name="bot"))
    again = admin_api.post("/api/v1/service-accounts/", {"name": "bot"}, format="json")
    assert again.json()["errors"]["name"] == ["A service account named “bot” exists (expired); revoke it first."]
    old = ApiToken.objects.get(name="bot")
    assert admin_api.delete(f"/api/v1/service-accounts/{old.pk}/").status_code == 204
    assert admin_api.post("/api/v1/service-accounts/", {"name": "bot"}, format="json").status_code == 201
