"""The one pagination include (templates/includes/pagination.html): its links change the page
and keep every filter of the list they page through."""

from __future__ import annotations

from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.paginator import Paginator
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse

from accounts.models import Role
from licenses import services
from tests import factories

pytestmark = pytest.mark.django_db


def _links(html: str) -> dict[str, dict[str, list[str]]]:
    """Each pagination link's label (Previous / Next) and the query it leads to."""
    links = {}
    nav = html.split('<nav class="pagination"', 1)[1].split("</nav>", 1)[0]
    for part in nav.split('<a href="')[1:]:
        href, _, rest = part.partition('"')
        label = "next" if "Next" in rest.split("</a>")[0] else "previous"
        links[label] = parse_qs(urlsplit(unescape(href)).query)
    return links


def test_the_include_keeps_the_query_string_and_changes_only_the_page():
    request = RequestFactory().get("/licenses/", {"q": "acme corp", "status": "active", "app": "tools", "page": "2"})
    page = Paginator(range(100), 25).get_page(2)
    links = _links(render_to_string("includes/pagination.html", {"page": page}, request=request))
    filters = {"q": ["acme corp"], "status": ["active"], "app": ["tools"]}
    assert links == {"previous": {**filters, "page": ["1"]}, "next": {**filters, "page": ["3"]}}


def test_page_two_of_the_license_list_keeps_the_search_status_and_app(admin_client, app, team):
    actor = factories.actor_of(team.memberships.get(role=Role.ADMIN).user, team)
    other = factories.make_app(team, "tools")
    for i in range(30):
        services.license_create(actor=actor, app=app, customer_name=f"Customer {i:02d}")
    services.license_create(actor=actor, app=other, customer_name="Customer elsewhere")
    revoked, _ = services.license_create(actor=actor, app=app, customer_name="Customer revoked")
    services.license_revoke(actor=actor, license=revoked)

    query = {"q": "customer", "status": "active", "app": app.slug}
    first = admin_client.get(reverse("licenses:license-list"), query)
    assert first.context["page"].paginator.count == 30
    following = _links(first.content.decode())["next"]
    assert following == {"q": ["customer"], "status": ["active"], "app": [app.slug], "page": ["2"]}

    second = admin_client.get(reverse("licenses:license-list"), {key: value[0] for key, value in following.items()})
    names = [license.customer_name for license in second.context["page"].object_list]
    assert len(names) == 5 and all(name.startswith("Customer ") and name[-2:].isdigit() for name in names)
