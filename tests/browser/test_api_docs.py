"""The API docs are one click from every portal page, and one click back: Swagger UI runs
under its own CSP exception with the portal's bar on top, at desktop and phone widths."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import factories

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}


@pytest.fixture(params=[PHONE, DESKTOP], ids=["phone-390", "desktop-1280"])
def browser_context_args(request) -> dict:
    return request.param


def _overflow(page) -> int:
    width = page.viewport_size["width"]
    return page.evaluate(f"Math.max(document.documentElement.scrollWidth, window.innerWidth) - {width}")


def test_the_nav_leads_to_the_api_docs_and_the_docs_lead_back(page, screenshot, live_server, admin):
    client = factories.browser_client(admin)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page.goto("/licenses/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API docs").click()

    page.wait_for_url("**/api/v1/docs/")
    page.locator(".opblock").first.wait_for()  # Swagger UI rendered the schema
    assert page.locator(".swagger-ui .info .title").inner_text().startswith("Vendor portal API")
    assert _overflow(page) <= 0, "the docs scroll sideways"
    screenshot(f"api-docs-{page.viewport_size['width']}")

    page.get_by_role("link", name="Back to the vendor portal").click()
    page.wait_for_url(lambda url: "/api/" not in url)
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="API docs")).to_be_visible()
