"""The audit log page and API: a team's admins read who did what, newest first, filtered by
action (exact or `prefix.`), actor and dates; nobody else in the team, nor any other team."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts import services
from accounts.models import AuditEvent, TokenAccess, TokenKind
from licenses import services as licenses
from registries import services as registries
from tests import factories
from tests.realparts.cloud import canary

pytestmark = pytest.mark.django_db

API = "/api/v1/audit-events/"


@pytest.fixture
def history(actor, app, customer_license):
    """Real service calls by Acme's admin: an app made, a license revoked, a token made."""
    licenses.app_create(actor=actor, name="Billing")
    licenses.license_revoke(actor=actor, license=customer_license.license)
    services.token_create(actor=actor, kind=TokenKind.USER, name="laptop")


def _actions(rows) -> list[str]:
    return [row["action"] for row in rows]


def test_admin_sees_the_teams_events_newest_first_with_who_did_them_in_the_api(admin_api, history):
    rows = admin_api.get(API).json()["results"]
    mine = [(r["actor"], r["action"], r["target"]) for r in rows if r["actor"] == "admin@acme.test"]
    assert ("admin@acme.test", "app.create", "billing") in mine
    assert "license.revoke" in [action for _, action, _ in mine]
    assert ("admin@acme.test", "token.create", "laptop") in mine
    assert set(rows[0]) == {"id", "created_at", "actor", "action", "target", "detail", "address"}
    stamps = [r["created_at"] for r in rows]
    assert stamps == sorted(stamps, reverse=True)
    assert (
        _actions(rows).index("token.create")
        < _actions(rows).index("license.revoke")
        < _actions(rows).index("app.create")
    )


def test_admin_sees_the_events_on_the_audit_page_linked_from_the_team_page(admin_client, history):
    assert reverse("accounts:audit").encode() in admin_client.get(reverse("accounts:team")).content
    page = admin_client.get(reverse("accounts:audit")).content.decode()
    for text in ["app.create", "billing", "license.revoke", "token.create", "laptop", "admin@acme.test"]:
        assert text in page


def test_the_api_filters_by_exact_action_by_prefix_and_by_actor(admin_api, actor, app, history, developer, team):
    dev = factories.actor_of(developer, team)
    licenses.app_create(actor=dev, name="Dev Tool")
    assert set(_actions(admin_api.get(API, {"action": "app.create"}).json()["results"])) == {"app.create"}
    licence_rows = admin_api.get(API, {"action": "license."}).json()["results"]
    assert set(_actions(licence_rows)) >= {"license.revoke"} and all(
        a.startswith("license.") for a in _actions(licence_rows)
    )
    assert admin_api.get(API, {"action": "license"}).json()["results"] == []  # no dot: exact only
    by_dev = admin_api.get(API, {"actor": "dev@acme.test"}).json()["results"]
    assert [(r["action"], r["target"]) for r in by_dev] == [("app.create", "dev-tool")]


def test_the_api_filters_by_dates_and_names_a_bad_date(admin_api, history):
    everything = admin_api.get(API).json()["count"]
    assert everything > 0
    assert admin_api.get(API, {"since": "2000-01-01", "until": "2999-12-31"}).json()["count"] == everything
    assert admin_api.get(API, {"until": "2000-01-01"}).json()["count"] == 0
    assert admin_api.get(API, {"since": "2999-01-01T00:00:00Z"}).json()["count"] == 0
    bad = admin_api.get(API, {"since": "yesterday"})
    assert bad.status_code == 400
    assert bad.json()["message"].startswith("since:") and "since" in bad.json()["errors"]
    assert admin_api.get(API, {"until": "2026-13-45"}).json()["errors"].keys() == {"until"}


def test_pages_of_the_api_and_the_page_keep_the_filter(admin_api, admin_client, actor, team):
    for i in range(55):
        services.audit(actor=actor, action="app.create", target=f"app-{i}")
    services.audit(actor=actor, action="token.create", target="other")
    first = admin_api.get(API, {"action": "app.create"}).json()
    assert first["count"] == 55 and len(first["results"]) == 50
    second = admin_api.get(first["next"]).json()
    assert len(second["results"]) == 5 and set(_actions(second["results"])) == {"app.create"}

    page_one = admin_client.get(reverse("accounts:audit"), {"action": "app.create"}).content.decode()
    assert "?action=app.create&amp;page=2" in page_one
    page_two = admin_client.get(reverse("accounts:audit"), {"action": "app.create", "page": 2}).content.decode()
    assert "Page 2 of 2" in page_two and "token.create" not in page_two
    assert page_two.count("<code>app.create</code>") == 5


def test_the_page_filters_by_actor_and_says_when_nothing_matches(admin_client, developer, team, history):
    licenses.app_create(actor=factories.actor_of(developer, team), name="Dev Tool")
    page = admin_client.get(reverse("accounts:audit"), {"actor": "dev@acme.test"}).content.decode()
    assert "dev-tool" in page and "laptop" not in page
    empty = admin_client.get(reverse("accounts:audit"), {"action": "nothing.here"}).content.decode()
    assert "No matching events" in empty


def test_developers_viewers_and_read_write_service_accounts_are_refused(
    developer_api, viewer_api, developer_client, viewer_client, actor, history
):
    _, secret = services.token_create(actor=actor, kind=TokenKind.SERVICE, name="ci", access=TokenAccess.READ_WRITE)
    for api in [developer_api, viewer_api, factories.bearer_client(secret)]:
        response = api.get(API)
        assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    for client in [developer_client, viewer_client]:
        assert client.get(reverse("accounts:audit")).status_code == 403
        assert reverse("accounts:audit").encode() not in client.get(reverse("accounts:team")).content


def test_an_outsider_sees_only_their_own_teams_events(outsider_api, outsider_client, outsider_actor, history):
    licenses.app_create(actor=outsider_actor, name="Other Thing")
    acme_ids = set(AuditEvent.objects.filter(team__name="Acme").values_list("pk", flat=True))
    rows = outsider_api.get(API, {"page_size": 500}).json()["results"]
    assert ("boss@other.test", "app.create", "other-thing") in [(r["actor"], r["action"], r["target"]) for r in rows]
    assert not {r["id"] for r in rows} & acme_ids
    assert all(r["actor"] != "admin@acme.test" for r in rows)
    for pk in acme_ids:
        assert outsider_api.get(f"{API}{pk}/").status_code == 404
    page = outsider_client.get(reverse("accounts:audit")).content.decode()
    assert "other-thing" in page and "laptop" not in page and "billing" not in page


def test_a_registry_password_never_shows_in_the_audit_api(admin_api, actor):
    created, changed = canary(), canary()
    registry = registries.registry_create(
        actor=actor,
        provider="other",
        endpoint="127.0.0.1:61500",
        username="acme",
        password=created,
        skip_validation=True,
    )
    registries.registry_update(actor=actor, registry=registry, password=changed, skip_validation=True)
    body = admin_api.get(API, {"action": "registry."}).content.decode()
    assert "registry.create" in body and "registry.update" in body
    assert created not in body and changed not in body


def test_each_event_says_where_the_request_came_from(admin_client, admin_api, app):
    """From where: the client's address for pages and the API; a job on the server has none."""
    admin_client.post(reverse("licenses:license-create"), {"app": app.slug, "customer_name": "Hooli", "type": "paid"}, REMOTE_ADDR="203.0.113.7")  # fmt: skip
    admin_api.post("/api/v1/tokens/", {"name": "ci"}, format="json", REMOTE_ADDR="198.51.100.9")
    events = {}
    for row in admin_api.get(API).json()["results"]:  # newest first: keep each action's newest
        events.setdefault(row["action"], row)
    assert events["license.create"]["address"] == "203.0.113.7"
    assert events["token.create"]["address"] == "198.51.100.9"
    page = admin_client.get(reverse("accounts:audit")).content.decode()
    assert "<code>203.0.113.7</code>" in page


def test_an_event_outside_a_request_has_no_address(actor):
    licenses.app_create(actor=actor, name="Offline")
    assert AuditEvent.objects.get(action="app.create", target="offline").address is None
