from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import ApiToken, Membership, TokenAccess
from tests import factories

pytestmark = pytest.mark.django_db


def _rows_containing(text: str) -> int:
    """Count rows of the token table whose any column contains `text`, straight from SQL."""
    with connection.cursor() as cursor:
        columns = [f.column for f in ApiToken._meta.concrete_fields]
        where = " OR ".join(f"CAST({c} AS TEXT) LIKE %s" for c in columns)
        cursor.execute(f"SELECT COUNT(*) FROM {ApiToken._meta.db_table} WHERE {where}", [f"%{text}%"] * len(columns))
        return cursor.fetchone()[0]


def test_a_new_token_is_shown_once_and_stored_only_as_a_hash(admin_api):
    response = admin_api.post("/api/v1/tokens/", {"name": "ci"}, format="json")
    assert response.status_code == 201
    secret = response.json()["token"]
    assert secret.startswith("vpu_") and len(secret) > 40
    assert _rows_containing(secret) == 0
    assert _rows_containing(secret[20:]) == 0
    listing = admin_api.get("/api/v1/tokens/").json()
    assert secret not in str(listing)
    assert {"prefix": secret[:12], "name": "ci"}.items() <= next(
        t for t in listing["results"] if t["name"] == "ci"
    ).items()
    detail = admin_api.get(f"/api/v1/tokens/{response.json()['id']}/").json()
    assert "token" not in detail


def test_the_token_page_shows_the_token_once_then_only_its_prefix(admin_client):
    response = admin_client.post(reverse("accounts:tokens"), {"kind": "user", "token-name": "laptop"})
    secret = response.context["secret"]
    assert secret.encode() in response.content
    listing = admin_client.get(reverse("accounts:tokens"))
    assert secret.encode() not in listing.content
    assert secret[:12].encode() in listing.content


def test_a_refused_token_form_leaves_the_service_account_form_whole(admin_client):
    response = admin_client.post(reverse("accounts:tokens"), {"kind": "user", "token-name": ""})
    assert response.context["token_form"].errors["name"]
    page = response.content.decode()
    assert 'name="service-name"' in page and 'name="service-access"' in page
    created = admin_client.post(
        reverse("accounts:tokens"), {"kind": "service", "service-name": "ci", "service-access": "read-write"}
    )
    assert created.context["token"].name == "ci"


def test_a_token_works_until_revoked_then_gets_401(admin, team):
    secret = factories.user_token(admin, team)
    client = factories.bearer_client(secret)
    assert client.get("/api/v1/apps/").status_code == 200
    token_id = ApiToken.objects.get(prefix=secret[:12]).pk
    assert client.delete(f"/api/v1/tokens/{token_id}/").status_code == 204
    response = client.get("/api/v1/apps/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_unknown_or_malformed_tokens_get_401(db):
    for header in ["Bearer vpu_nope", "Bearer", "Bearer a b", "Bearer vps_" + "x" * 43]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        assert client.get("/api/v1/apps/").status_code == 401, header
    assert APIClient().get("/api/v1/apps/").status_code == 401


def test_revoking_a_token_on_the_page_asks_first(admin_client, admin, team):
    secret = factories.user_token(admin, team, "old")
    token = ApiToken.objects.get(prefix=secret[:12])
    confirm = admin_client.get(reverse("accounts:token-revoke", args=[token.pk]))
    assert b"Revoke" in confirm.content and factories.bearer_client(secret).get("/api/v1/apps/").status_code == 200
    admin_client.post(reverse("accounts:token-revoke", args=[token.pk]))
    assert factories.bearer_client(secret).get("/api/v1/apps/").status_code == 401


def test_read_only_service_account_reads_but_gets_403_on_writes(team, app):
    client = factories.bearer_client(factories.service_token(team, access=TokenAccess.READ_ONLY))
    assert [a["slug"] for a in client.get("/api/v1/apps/").json()["results"]] == ["acme-api"]
    response = client.post("/api/v1/apps/", {"name": "New"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert client.delete("/api/v1/apps/acme-api/").status_code == 403


def test_read_write_service_account_manages_apps_but_not_the_team(team):
    client = factories.bearer_client(factories.service_token(team, access=TokenAccess.READ_WRITE))
    assert client.post("/api/v1/apps/", {"name": "Bot App"}, format="json").status_code == 201
    assert (
        client.post(
            "/api/v1/service-accounts/", {"name": "escalate", "access": "read-write"}, format="json"
        ).status_code
        == 403
    )
    assert client.post("/api/v1/invites/", {"role": "admin"}, format="json").status_code == 403
    assert client.get("/api/v1/team/").json()["acting_as"].startswith("service account")


def test_a_removed_members_token_stops_working(developer, team):
    secret = factories.user_token(developer, team)
    assert factories.bearer_client(secret).get("/api/v1/apps/").status_code == 200
    Membership.objects.filter(user=developer).delete()
    assert factories.bearer_client(secret).get("/api/v1/apps/").status_code == 401


def test_a_user_token_follows_its_users_current_role(developer, team):
    client = factories.bearer_client(factories.user_token(developer, team))
    assert client.post("/api/v1/apps/", {"name": "One"}, format="json").status_code == 201
    Membership.objects.filter(user=developer).update(role="read-only")
    assert client.post("/api/v1/apps/", {"name": "Two"}, format="json").status_code == 403


def test_last_used_is_recorded(admin, team):
    secret = factories.user_token(admin, team)
    assert ApiToken.objects.get(prefix=secret[:12]).last_used_at is None
    factories.bearer_client(secret).get("/api/v1/apps/")
    assert ApiToken.objects.get(prefix=secret[:12]).last_used_at is not None


def test_service_account_names_must_be_given_and_unique(admin_api):
    assert admin_api.post("/api/v1/service-accounts/", {"name": "bot"}, format="json").status_code == 201
    duplicate = admin_api.post("/api/v1/service-accounts/", {"name": "bot"}, format="json")
    assert duplicate.status_code == 400
    assert duplicate.json()["errors"]["name"] == ["A service account named “bot” already exists."]
    empty = admin_api.post("/api/v1/service-accounts/", {"name": "  "}, format="json")
    assert empty.status_code == 400 and "name" in empty.json()["errors"]
    assert ApiToken.objects.filter(kind="service").count() == 1
