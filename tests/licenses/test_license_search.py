"""One license search and status filter, the same on the license pages and in the API
(licenses.selectors.license_search): name or email, the ID's first characters, or the whole ID."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from licenses import selectors, services
from licenses.models import License
from tests import factories

pytestmark = pytest.mark.django_db


def _license(app, customer: str, **fields) -> tuple[License, str]:
    admin = app.team.memberships.get(role=Role.ADMIN).user
    return services.license_create(actor=factories.actor_of(admin, app.team), app=app, customer_name=customer, **fields)


@pytest.fixture
def licenses(app):
    initech, initech_id = _license(app, "Initech", customer_email="ops@initech.test")
    _license(app, "Globex", customer_email="it@globex.test")
    expired, _ = _license(app, "Umbrella")
    License.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    return {"initech": initech, "initech_id": initech_id}


def _page(client, app, query: dict) -> list[str]:
    response = client.get(reverse("licenses:app-licenses", args=[app.slug]), query)
    assert response.status_code == 200
    return sorted(license.customer_name for license in response.context["page"].object_list)


def _api(client, app, query: dict) -> list[str]:
    query = {("search" if key == "q" else key): value for key, value in query.items()}
    response = client.get(f"/api/v1/apps/{app.slug}/licenses/", query)
    assert response.status_code == 200, response.content
    return sorted(result["customer_name"] for result in response.json()["results"])


DOORS = [pytest.param("page", id="page"), pytest.param("api", id="api")]


@pytest.fixture
def listed(request, viewer_client, viewer_api, app):
    """The names a front door lists for a query (`q` is the API's `search`)."""
    door = request.param
    return lambda query: _page(viewer_client, app, query) if door == "page" else _api(viewer_api, app, query)


@pytest.mark.parametrize("listed", DOORS, indirect=True)
def test_a_license_is_found_by_the_first_characters_shown_or_by_its_whole_id(listed, licenses):
    license, license_id = licenses["initech"], licenses["initech_id"]
    assert listed({"q": license_id[:3]}) == ["Initech"]
    assert listed({"q": f"{license.id_prefix}…"}) == ["Initech"]  # copied from the page, ellipsis and all
    assert listed({"q": f"  {license_id}  "}) == ["Initech"]  # pasted whole


@pytest.mark.parametrize("listed", DOORS, indirect=True)
def test_a_mistyped_whole_license_id_finds_nothing_even_when_its_start_matches(listed, licenses):
    license_id = licenses["initech_id"]
    mistyped = license_id[:-1] + ("A" if license_id[-1] != "A" else "B")
    assert listed({"q": mistyped}) == []
    assert listed({"q": license_id[:7]}) == []  # longer than what the page shows: only a whole ID


@pytest.mark.parametrize("listed", DOORS, indirect=True)
def test_search_and_status_combine_the_same_way_on_page_and_api(listed, licenses):
    assert listed({"q": "GLOBEX.test"}) == ["Globex"]
    assert listed({"status": "expired"}) == ["Umbrella"]
    assert listed({"status": "active"}) == ["Globex", "Initech"]
    assert listed({"q": "initech", "status": "expired"}) == []
    assert listed({}) == ["Globex", "Initech", "Umbrella"]


def test_an_unknown_status_is_refused_by_the_api_and_ignored_by_the_page(viewer_client, viewer_api, app, licenses):
    response = viewer_api.get(f"/api/v1/apps/{app.slug}/licenses/", {"status": "bogus"})
    assert response.status_code == 400
    assert response.json()["errors"] == {"status": ["Choose one of: active, expired, revoked."]}
    assert _page(viewer_client, app, {"status": "bogus"}) == ["Globex", "Initech", "Umbrella"]


def test_status_counts_use_the_same_rule_as_the_filter(app, licenses):
    revoked, _ = _license(app, "Hooli")
    License.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    counts = selectors.license_status_counts(License.objects.filter(app=app))
    assert counts == {"active": 2, "expired": 1, "revoked": 1}
    for status, count in counts.items():
        assert selectors.license_search(License.objects.filter(app=app), status=status).count() == count
