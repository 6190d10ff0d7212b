"""App writes go through the catalogue's services with the actor, and leave an audit entry
whichever front door (page or API) they came through."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from licenses.models import App

pytestmark = pytest.mark.django_db


def _trail(team) -> list[tuple[str, str, str]]:
    """(who, did what, to what), oldest first."""
    events = AuditEvent.objects.filter(team=team).order_by("created_at", "pk")
    return [(e.actor, e.action, e.target) for e in events]


def _new_events(team, since: int) -> list[tuple[str, str, str]]:
    return _trail(team)[since:]


def test_app_writes_through_the_api_are_audited_with_their_actor(developer_api, team):
    before = len(_trail(team))
    assert developer_api.post("/api/v1/apps/", {"name": "Tools", "slug": "tools"}, format="json").status_code == 201
    changed = developer_api.patch(
        "/api/v1/apps/tools/", {"name": "Acme Tools", "repository_rules": ["quay.io/acme/*"]}, format="json"
    )
    assert changed.status_code == 200, changed.content
    assert developer_api.delete("/api/v1/apps/tools/").status_code == 204
    assert _new_events(team, before) == [
        ("dev@acme.test", "app.create", "tools"),
        ("dev@acme.test", "app.rename", "tools"),
        ("dev@acme.test", "app.repository_rules", "tools"),
        ("dev@acme.test", "app.delete", "tools"),
    ]
    rename = AuditEvent.objects.get(action="app.rename")
    assert rename.detail == {"name": "Acme Tools", "was": "Tools"}


def test_a_bad_rule_in_an_api_update_keeps_the_name_and_records_nothing(developer_api, app, team):
    before = len(_trail(team))
    response = developer_api.patch(
        f"/api/v1/apps/{app.slug}/", {"name": "Renamed", "repository_rules": ["not a rule"]}, format="json"
    )
    assert response.status_code == 400
    assert "repository_rules" in response.json()["errors"]
    assert App.objects.get(pk=app.pk).name == "Acme API"
    assert _new_events(team, before) == []


def test_app_writes_through_the_pages_are_audited_with_their_actor(developer_client, team):
    before = len(_trail(team))
    developer_client.post(reverse("licenses:app-create"), {"name": "Tools", "slug": "tools"})
    developer_client.post(reverse("licenses:app-detail", args=["tools"]), {"name": "Acme Tools"})
    developer_client.post(reverse("licenses:app-delete", args=["tools"]))
    assert _new_events(team, before) == [
        ("dev@acme.test", "app.create", "tools"),
        ("dev@acme.test", "app.rename", "tools"),
        ("dev@acme.test", "app.delete", "tools"),
    ]
    assert not App.objects.filter(slug="tools").exists()
