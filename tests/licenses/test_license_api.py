"""The licenses API: /api/v1/apps/<slug>/licenses/, /api/v1/licenses/<id>/, pull events, app rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditEvent, TokenAccess
from licenses import licensefile, services
from licenses.models import License, PullEvent
from tests import factories

pytestmark = pytest.mark.django_db

FUTURE = "2099-01-31T12:00:00Z"


def make_license(app, *, customer: str = "Initech", **fields) -> tuple[License, str]:
    admin = app.team.memberships.get(role="admin").user
    return services.license_create(actor=factories.actor_of(admin, app.team), app=app, customer_name=customer, **fields)


def base(app) -> str:
    return f"/api/v1/apps/{app.slug}/licenses/"


# --- create ------------------------------------------------------------------------------


def test_create_answers_with_the_license_id_once_stored_only_as_hash_and_ciphertext(developer_api, app):
    body = {"customer_name": "Initech", "customer_email": "IT@Initech.test", "type": "trial", "expires_at": FUTURE}
    response = developer_api.post(base(app), body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    license_id = data["license_id"]
    assert len(license_id) >= 22 and data["id_prefix"] == license_id[:6]
    assert data["app"] == "acme-api" and data["customer_email"] == "it@initech.test"
    assert (data["type"], data["status"], data["expires_at"]) == ("trial", "active", FUTURE)
    assert data["created_by"] == "dev@acme.test"

    row = License.objects.get()
    assert row.lookup_hash == services.license_lookup_hash(license_id)
    assert services.license_id_of(row) == license_id
    # Nothing in the whole database holds the license ID in the clear.
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names from introspection
            for record in cursor.fetchall():
                assert license_id not in repr(record), f"plaintext license ID in table {table}"


def test_create_defaults_to_a_paid_license_that_never_expires(developer_api, app):
    data = developer_api.post(base(app), {"customer_name": "  Initech   Corp "}, format="json").json()
    assert (data["customer_name"], data["type"], data["expires_at"], data["status"]) == (
        "Initech Corp",
        "paid",
        None,
        "active",
    )


def test_an_expiry_date_alone_means_through_that_day(developer_api, app):
    data = developer_api.post(base(app), {"customer_name": "X", "expires_at": "2099-03-01"}, format="json").json()
    assert data["expires_at"] == "2099-03-01T23:59:59Z"


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"customer_name": ""}, "customer_name", "Enter the customer's name."),
        ({"customer_name": "   "}, "customer_name", "Enter the customer's name."),
        ({}, "customer_name", "Enter the customer's name."),
        ({"customer_name": "x" * 201}, "customer_name", "At most 200 characters."),
        ({"customer_name": "X", "customer_email": "not-an-email"}, "customer_email", "Enter a valid email address"),
        ({"customer_name": "X", "type": "enterprise"}, "type", "Choose one of: dev, trial, paid, community."),
        ({"customer_name": "X", "type": ""}, "type", "Choose one of"),
        ({"customer_name": "X", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at", "must be in the future"),
        ({"customer_name": "X", "expires_at": "2001-01-01"}, "expires_at", "must be in the future"),
        ({"customer_name": "X", "expires_at": "next tuesday"}, "expires_at", "wrong format"),
        ({"customer_name": "X", "expires_at": "2099-02-30"}, "expires_at", "wrong format"),
    ],
)
def test_bad_license_input_names_the_field_and_stores_nothing(developer_api, app, body, field, reason):
    response = developer_api.post(base(app), body, format="json")
    assert response.status_code == 400
    data = response.json()
    assert data["code"] == "invalid"
    assert reason in " ".join(data["errors"][field])
    assert data["message"].startswith(f"{field}: ")
    assert not License.objects.exists()
    assert not AuditEvent.objects.filter(action="license.create").exists()


def test_every_problem_is_reported_at_once(developer_api, app):
    body = {"customer_name": "", "customer_email": "nope", "type": "x"}
    errors = developer_api.post(base(app), body, format="json").json()["errors"]
    assert set(errors) == {"customer_name", "customer_email", "type"}


def test_creating_at_the_top_level_is_not_a_thing(developer_api, app):
    assert developer_api.post("/api/v1/licenses/", {"customer_name": "X"}, format="json").status_code == 405
    assert not License.objects.exists()


# --- list, search, filter ------------------------------------------------------------------


def test_lists_never_carry_license_ids(developer_api, app):
    ids = [make_license(app, customer=f"Customer {i}")[1] for i in range(3)]
    for url in (base(app), "/api/v1/licenses/", f"{base(app)}?search=Customer"):
        response = developer_api.get(url)
        assert response.status_code == 200
        assert response.json()["count"] == 3
        for result in response.json()["results"]:
            assert "license_id" not in result
        for license_id in ids:
            assert license_id not in response.content.decode()


def test_detail_carries_the_license_id_for_the_vendor(developer_api, app):
    license, license_id = make_license(app)
    for url in (f"{base(app)}{license.pk}/", f"/api/v1/licenses/{license.pk}/", f"/api/v1/licenses/{license.pk}"):
        response = developer_api.get(url)
        assert response.status_code == 200, url
        assert response.json()["license_id"] == license_id
        assert response.json()["id"] == license.pk


def test_search_by_customer_email_id_prefix_and_whole_license_id(developer_api, app):
    initech, initech_id = make_license(app, customer="Initech", customer_email="ops@initech.test")
    make_license(app, customer="Globex", customer_email="it@globex.test")

    def found(query: str) -> list[str]:
        results = developer_api.get(base(app), {"search": query}).json()["results"]
        return sorted(r["customer_name"] for r in results)

    assert found("initech") == ["Initech"]
    assert found("GLOBEX.TEST") == ["Globex"]
    assert found(initech_id[:6]) == ["Initech"]
    assert found(initech.id_prefix + "…") == ["Initech"]
    assert found(initech_id) == ["Initech"]
    assert found(initech_id[:-1] + ("A" if initech_id[-1] != "A" else "B")) == []
    assert found("") == ["Globex", "Initech"]


def test_status_filter(developer_api, app, actor):
    make_license(app, customer="Active")
    expired, _ = make_license(app, customer="Expired")
    License.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    revoked, _ = make_license(app, customer="Revoked")
    services.license_revoke(actor=actor, license=revoked)

    def names(status: str) -> list[str]:
        response = developer_api.get(base(app), {"status": status})
        assert response.status_code == 200
        return [r["customer_name"] for r in response.json()["results"]]

    assert names("active") == ["Active"]
    assert names("expired") == ["Expired"]
    assert names("revoked") == ["Revoked"]
    assert [r["status"] for r in developer_api.get(base(app)).json()["results"]] == ["revoked", "expired", "active"]
    bad = developer_api.get(base(app), {"status": "dead"})
    assert bad.status_code == 400
    assert bad.json()["errors"] == {"status": ["Choose one of: active, expired, revoked."]}


def test_lists_are_paginated_and_scoped_to_the_app(developer_api, app, team):
    other_app = factories.make_app(team, "other-app")
    for i in range(55):
        make_license(app, customer=f"C{i:02d}")
    make_license(other_app, customer="Elsewhere")
    first = developer_api.get(base(app)).json()
    assert first["count"] == 55 and len(first["results"]) == 50 and first["next"]
    assert developer_api.get(base(app), {"page": 2}).json()["results"][-1]["customer_name"] == "C00"
    assert developer_api.get("/api/v1/licenses/").json()["count"] == 56
    assert developer_api.get("/api/v1/licenses/", {"app": "other-app"}).json()["count"] == 1


# --- update, delete ------------------------------------------------------------------------


def test_patch_changes_fields_through_the_service(developer_api, app):
    license, license_id = make_license(app, expires_at=timezone.now() + timedelta(days=3))
    response = developer_api.patch(
        f"/api/v1/licenses/{license.pk}/",
        {"customer_name": "Initrode", "customer_email": "a@b.test", "type": "dev", "expires_at": None},
        format="json",
    )
    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["customer_name"], data["customer_email"], data["type"], data["expires_at"]) == (
        "Initrode",
        "a@b.test",
        "dev",
        None,
    )
    assert data["license_id"] == license_id, "the license ID never changes"
    assert AuditEvent.objects.filter(action="license.update").exists()


def test_patch_with_a_bad_value_changes_nothing(developer_api, app):
    license, _ = make_license(app, customer_email="ok@initech.test")
    response = developer_api.patch(
        f"{base(app)}{license.pk}/", {"customer_name": "New", "customer_email": "broken"}, format="json"
    )
    assert response.status_code == 400
    assert "customer_email" in response.json()["errors"]
    license.refresh_from_db()
    assert (license.customer_name, license.customer_email) == ("Initech", "ok@initech.test")


def test_licenses_are_revoked_never_deleted(admin_api, app):
    license, _ = make_license(app)
    for url in (f"{base(app)}{license.pk}/", f"/api/v1/licenses/{license.pk}/"):
        response = admin_api.delete(url)
        assert response.status_code == 405
        assert response.json()["code"] == "method_not_allowed"
    assert admin_api.put(f"/api/v1/licenses/{license.pk}/", {"customer_name": "X"}, format="json").status_code == 405
    assert License.objects.filter(pk=license.pk).exists()


# --- revoke, unrevoke, lookup ------------------------------------------------------------------


def test_revoke_and_unrevoke(developer_api, app):
    license, _ = make_license(app)
    assert services.license_state(str(license.uid)).app_id == app.pk  # now cached as valid

    revoked = developer_api.post(f"/api/v1/licenses/{license.pk}/revoke")
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked" and revoked.json()["revoked_at"]
    assert services.license_state(str(license.uid)) is None, "the proxy sees it at once"
    again = developer_api.post(f"{base(app)}{license.pk}/revoke/")
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"], "revoking twice changes nothing"

    restored = developer_api.post(f"{base(app)}{license.pk}/unrevoke/")
    assert restored.status_code == 200
    assert (restored.json()["status"], restored.json()["revoked_at"]) == ("active", None)
    assert services.license_state(str(license.uid)).app_id == app.pk
    actions = list(AuditEvent.objects.filter(action__startswith="license.").values_list("action", flat=True))
    assert sorted(actions) == ["license.create", "license.revoke", "license.unrevoke"]


def test_lookup_by_license_id_stays_in_the_team(viewer_api, outsider_api, app):
    license, license_id = make_license(app)
    response = viewer_api.post("/api/v1/licenses/lookup/", {"license_id": license_id}, format="json")
    assert response.status_code == 200, "a read, allowed to read-only members"
    assert (response.json()["id"], response.json()["license_id"]) == (license.pk, license_id)
    assert viewer_api.post("/api/v1/licenses/lookup/", {"license_id": "nope" * 8}, format="json").status_code == 404
    assert viewer_api.post("/api/v1/licenses/lookup/", {}, format="json").json()["errors"]["license_id"]
    assert outsider_api.post("/api/v1/licenses/lookup/", {"license_id": license_id}, format="json").status_code == 404


# --- license file and signing key ---------------------------------------------------------------


def test_license_file_download_verifies_with_the_published_key(developer_api, app):
    license, license_id = make_license(app, customer_email="ops@initech.test")
    response = developer_api.get(f"/api/v1/licenses/{license.pk}/license-file")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/yaml; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="acme-api-{license.id_prefix}.license.yaml"'
    key = APIClient().get("/api/v1/license-signing-key")  # no credentials needed
    assert key.status_code == 200 and key["Content-Type"] == "application/x-pem-file"
    assert key.content.startswith(b"-----BEGIN PUBLIC KEY-----")
    spec = licensefile.verify_license_file(response.content.decode(), key.content.decode())
    assert spec["licenseId"] == license_id and spec["customer"] == {"name": "Initech", "email": "ops@initech.test"}
    assert developer_api.get(f"{base(app)}{license.pk}/license-file/").content == response.content


def test_an_unreadable_license_id_is_a_clear_conflict(developer_api, app):
    license, _ = make_license(app)
    License.objects.filter(pk=license.pk).update(license_id_encrypted="v1:nokey:AAAA:AAAA")
    assert developer_api.get(f"/api/v1/licenses/{license.pk}/").json()["license_id"] is None
    response = developer_api.get(f"/api/v1/licenses/{license.pk}/license-file")
    assert response.status_code == 409
    assert response.json()["code"] == "credential_corrupt"
    assert "issue the customer a new license" in response.json()["message"]


# --- who may do what ----------------------------------------------------------------------


def _calls(app, license):
    detail = f"/api/v1/licenses/{license.pk}/"
    return {
        "create": lambda c: c.post(base(app), {"customer_name": "New"}, format="json"),
        "update": lambda c: c.patch(detail, {"customer_name": "Changed"}, format="json"),
        "revoke": lambda c: c.post(f"{detail}revoke/"),
        "unrevoke": lambda c: c.post(f"{base(app)}{license.pk}/unrevoke/"),
        "app rules": lambda c: c.patch(f"/api/v1/apps/{app.slug}/", {"repository_rules": []}, format="json"),
    }


READS = ["list", "detail", "top-level detail", "license file", "pull events"]


def _reads(app, license):
    return {
        "list": lambda c: c.get(base(app)),
        "detail": lambda c: c.get(f"{base(app)}{license.pk}/"),
        "top-level detail": lambda c: c.get(f"/api/v1/licenses/{license.pk}/"),
        "license file": lambda c: c.get(f"/api/v1/licenses/{license.pk}/license-file"),
        "pull events": lambda c: c.get(f"/api/v1/apps/{app.slug}/pull-events/"),
    }


@pytest.mark.parametrize("who", ["admin", "developer", "read-write service account"])
def test_admins_developers_and_read_write_service_accounts_may_write(who, app, team, request):
    client = {
        "admin": lambda: request.getfixturevalue("admin_api"),
        "developer": lambda: request.getfixturevalue("developer_api"),
        "read-write service account": lambda: factories.bearer_client(factories.service_token(team)),
    }[who]()
    license, _ = make_license(app)
    for action, call in _calls(app, license).items():
        response = call(client)
        assert response.status_code in (200, 201), (action, response.json())


@pytest.mark.parametrize("who", ["viewer", "read-only service account"])
def test_read_only_callers_read_but_every_write_is_403(who, app, team, request):
    client = (
        request.getfixturevalue("viewer_api")
        if who == "viewer"
        else factories.bearer_client(factories.service_token(team, access=TokenAccess.READ_ONLY))
    )
    license, _ = make_license(app)
    before = License.objects.values().get()
    for action, call in _calls(app, license).items():
        response = call(client)
        assert response.status_code == 403, action
        assert response.json() == {
            "code": "permission_denied",
            "message": "Your role in this team does not allow this.",
        }
    assert License.objects.values().get() == before and License.objects.count() == 1
    for action, call in _reads(app, license).items():
        assert call(client).status_code == 200, action


def test_another_team_gets_404_for_everything(outsider_api, app):
    license, _ = make_license(app)
    PullEvent.objects.create(license=license, app=app, repository="r", kind="manifest", reference="1", status=200)
    for action, call in {**_calls(app, license), **_reads(app, license)}.items():
        response = call(outsider_api)
        assert response.status_code == 404, action
        assert response.json()["code"] == "not_found"
    license.refresh_from_db()
    assert (license.customer_name, license.revoked_at) == ("Initech", None)
    assert License.objects.count() == 1
    assert outsider_api.get("/api/v1/licenses/").json()["count"] == 0


def test_a_license_is_only_reachable_under_its_own_app(developer_api, app, team):
    other_app = factories.make_app(team, "other-app")
    license, _ = make_license(other_app)
    assert developer_api.get(f"{base(app)}{license.pk}/").status_code == 404
    assert developer_api.post(f"{base(app)}{license.pk}/revoke/").status_code == 404
    assert developer_api.get(f"{base(other_app)}{license.pk}/").status_code == 200


def test_without_a_token_the_api_says_401(app):
    license, _ = make_license(app)
    anonymous = APIClient()
    assert anonymous.get(base(app)).status_code == 401
    assert anonymous.get(f"/api/v1/licenses/{license.pk}/license-file").status_code == 401


# --- pull events ---------------------------------------------------------------------------


def test_pull_events_newest_first_and_filtered_by_license(developer_api, app):
    first, _ = make_license(app, customer="First")
    second, _ = make_license(app, customer="Second")
    start = datetime(2030, 1, 1, tzinfo=UTC)
    for minute, license in enumerate([first, second, first]):
        PullEvent.objects.create(
            license=license,
            app=app,
            repository="127.0.0.1__5000/acme/api",
            kind="manifest",
            reference=f"1.0.{minute}",
            status=200,
            bytes=100 + minute,
            created_at=start + timedelta(minutes=minute),
        )
    url = f"/api/v1/apps/{app.slug}/pull-events/"
    events = developer_api.get(url).json()
    assert events["count"] == 3
    assert [e["reference"] for e in events["results"]] == ["1.0.2", "1.0.1", "1.0.0"]
    assert events["results"][0]["customer_name"] == "First" and events["results"][0]["license"] == first.pk
    only = developer_api.get(url, {"license": second.pk}).json()
    assert [e["reference"] for e in only["results"]] == ["1.0.1"]
    assert developer_api.get(url, {"license": "abc"}).status_code == 400
    assert developer_api.get("/api/v1/apps/nope/pull-events/").status_code == 404


# --- app repository rules ---------------------------------------------------------------------


def test_app_repository_rules_via_patch_and_put(developer_api, app):
    url = f"/api/v1/apps/{app.slug}/"
    response = developer_api.patch(
        url, {"repository_rules": ["Quay.io/acme/api", "127.0.0.1__5000/acme/*", ""]}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["repository_rules"] == ["127.0.0.1:5000/acme/*", "quay.io/acme/api"]
    app.refresh_from_db()
    assert app.repository_rules == ["127.0.0.1:5000/acme/*", "quay.io/acme/api"]

    put = developer_api.put(url, {"name": "Acme API v2", "repository_rules": []}, format="json")
    assert put.status_code == 200, put.json()
    app.refresh_from_db()
    assert (app.name, app.repository_rules) == ("Acme API v2", [])
    assert developer_api.put(url, {"repository_rules": []}, format="json").json()["errors"]["name"]


def test_a_bad_repository_rule_names_the_field_and_changes_nothing(developer_api, app):
    response = developer_api.patch(
        f"/api/v1/apps/{app.slug}/", {"name": "Renamed", "repository_rules": ["quay.io/ok", "../etc"]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"]["repository_rules"] == [
        "Rule 2 must look like quay.io/acme/api or quay.io/acme/*."
    ]
    app.refresh_from_db()
    assert (app.name, app.repository_rules) == ("Acme API", [])


def test_repository_rules_cannot_be_set_on_create(developer_api):
    response = developer_api.post("/api/v1/apps/", {"name": "Widget", "repository_rules": ["quay.io/x"]}, format="json")
    assert response.status_code == 201
    assert response.json()["repository_rules"] == []


def test_a_rule_may_open_a_whole_host_or_a_port_but_not_a_path_outside_it(developer_api, app):
    url = f"/api/v1/apps/{app.slug}/"
    ok = developer_api.patch(url, {"repository_rules": ["quay.io/*", "127.0.0.1__5000/*"]}, format="json")
    assert ok.status_code == 200, ok.json()
    app.refresh_from_db()
    assert app.repository_rules == ["127.0.0.1:5000/*", "quay.io/*"]
    for bad in ("*", "quay.io*", "/*", "quay.io/../*"):
        refused = developer_api.patch(url, {"repository_rules": [bad]}, format="json")
        assert refused.status_code == 400, bad
