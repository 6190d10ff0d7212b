from __future__ import annotations

import pytest
from django.urls import reverse

from licenses.models import App
from tests import factories

pytestmark = pytest.mark.django_db


def test_creating_an_app_derives_the_slug_from_the_name(developer_api):
    response = developer_api.post("/api/v1/apps/", {"name": "Acme Cloud Platform"}, format="json")
    assert response.status_code == 201
    assert response.json()["slug"] == "acme-cloud-platform"
    assert App.objects.get(slug="acme-cloud-platform").created_by.email == "dev@acme.test"


@pytest.mark.parametrize(
    "body, field, reason",
    [
        ({"name": ""}, "name", "Enter a name for the app."),
        ({}, "name", "Enter a name for the app."),
        ({"name": "   "}, "name", "Enter a name for the app."),
        ({"name": "x", "slug": "Upper"}, "slug", "Use lowercase letters"),
        ({"name": "x", "slug": "under_score"}, "slug", "Use lowercase letters"),
        ({"name": "x", "slug": "-leading"}, "slug", "Use lowercase letters"),
        ({"name": "x", "slug": "trailing-"}, "slug", "Use lowercase letters"),
        ({"name": "x", "slug": "a" * 64}, "slug", "at most 63"),
        ({"name": "x", "slug": "\u0430pp"}, "slug", "Use lowercase letters"),  # Cyrillic а
        ({"name": "x", "slug": "proxy"}, "slug", "reserved"),
        ({"name": "x", "slug": "v2"}, "slug", "reserved"),
        ({"name": "!!!"}, "slug", "Enter a slug"),
    ],
)
def test_bad_app_input_names_the_field_and_stores_nothing(developer_api, body, field, reason):
    response = developer_api.post("/api/v1/apps/", body, format="json")
    assert response.status_code == 400
    data = response.json()
    assert data["code"] == "invalid"
    assert reason in " ".join(data["errors"][field])
    assert data["message"].startswith(f"{field}: ")
    assert not App.objects.exists()


def test_a_slug_is_unique_across_teams(developer_api, other_team):
    factories.make_app(other_team, "shared-name")
    response = developer_api.post("/api/v1/apps/", {"name": "Shared Name"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["slug"] == ["The slug “shared-name” is taken; choose another."]


def test_renaming_keeps_the_slug(developer_api, app):
    response = developer_api.patch("/api/v1/apps/acme-api/", {"name": "Renamed", "slug": "hijack"}, format="json")
    assert response.status_code == 200
    app.refresh_from_db()
    assert (app.name, app.slug) == ("Renamed", "acme-api")


def test_the_app_page_flow_creates_lists_and_deletes_after_confirming(developer_client):
    response = developer_client.post(reverse("licenses:app-create"), {"name": "Widget", "slug": ""})
    assert response.status_code == 302
    assert b"widget" in developer_client.get(reverse("licenses:app-list")).content
    confirm = developer_client.get(reverse("licenses:app-delete", args=["widget"]))
    assert b"cannot be undone" in confirm.content and App.objects.filter(slug="widget").exists()
    developer_client.post(reverse("licenses:app-delete", args=["widget"]))
    assert not App.objects.filter(slug="widget").exists()


def test_the_app_form_shows_field_errors_inline(developer_client, app):
    response = developer_client.post(reverse("licenses:app-create"), {"name": "Again", "slug": "acme-api"})
    assert response.status_code == 200
    assert "taken" in " ".join(response.context["form"].errors["slug"])
    assert App.objects.count() == 1


def test_slug_preview_says_whether_a_slug_is_free(developer_client, app):
    free = developer_client.get(reverse("licenses:app-slug-preview"), {"name": "Brand New"}, HTTP_HX_REQUEST="true")
    assert b"proxy/brand-new/" in free.content and b"available" in free.content
    taken = developer_client.get(reverse("licenses:app-slug-preview"), {"name": "x", "slug": "acme-api"})
    assert b"taken" in taken.content


def test_empty_states_say_what_to_do_next(developer_client, viewer_client):
    assert b"Create your first app" in developer_client.get(reverse("licenses:app-list")).content
    page = viewer_client.get(reverse("licenses:app-list")).content
    assert b"Ask a developer or admin" in page and b"New app" not in page


def test_app_lists_are_paginated(developer_api, team):
    for i in range(60):
        factories.make_app(team, f"app-{i:02d}")
    first = developer_api.get("/api/v1/apps/").json()
    assert first["count"] == 60 and len(first["results"]) == 50 and first["next"]
    huge = developer_api.get("/api/v1/apps/?page_size=1000000000").json()
    assert len(huge["results"]) == 60


def test_a_deleted_apps_slug_is_never_handed_out_again(developer_api, app, outsider_api):
    assert developer_api.delete("/api/v1/apps/acme-api/").status_code == 204
    for client in (developer_api, outsider_api):
        response = client.post("/api/v1/apps/", {"name": "Acme API"}, format="json")
        assert response.status_code == 400
        assert response.json()["errors"]["slug"] == ["The slug “acme-api” is taken; choose another."]
    assert not App.objects.filter(slug="acme-api").exists()
