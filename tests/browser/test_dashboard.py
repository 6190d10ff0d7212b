"""The dashboard and pull analytics in Chromium, on a phone and a desktop: the charts draw
(server-side SVG, no CSP violation), nothing scrolls sideways, the filters and links work."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from licenses.models import PullEvent, Refusal
from tests import factories

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}


@pytest.fixture(params=[PHONE, DESKTOP], ids=["phone-390", "desktop-1280"])
def browser_context_args(request) -> dict:
    return request.param


def _log_in(page, live_server, user) -> None:
    client = factories.browser_client(user)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


def test_dashboard_and_analytics_fit_the_screen_and_filter_by_app(
    page, screenshot, live_server, admin, customer_license
):
    license = customer_license.license
    for days_ago, size in ((0, 3_000_000), (3, 1_000_000)):
        at = timezone.now() - timedelta(days=days_ago)
        PullEvent.objects.create(license=license, app=license.app, repository="acme/api", kind="manifest",
                                 reference="1.0", status=200, created_at=at)  # fmt: skip
        PullEvent.objects.create(license=license, app=license.app, repository="acme/api", kind="blob",
                                 reference="sha256:x", status=200, bytes=size, created_at=at)  # fmt: skip
    PullEvent.objects.create(license=license, app=license.app, repository="acme/other", kind="manifest",
                             reference="1.0", status=403, reason=Refusal.NOT_ALLOWED)  # fmt: skip
    _log_in(page, live_server, admin)
    width = page.viewport_size["width"]

    page.goto("/")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    assert page.locator("svg.chart rect.bar").count() == 30
    expect(page.get_by_text(Refusal.NOT_ALLOWED).first).to_be_visible()
    overflow = page.evaluate(f"Math.max(document.documentElement.scrollWidth, window.innerWidth) - {width}")
    screenshot(f"dashboard-{width}")
    assert overflow <= 0, f"the dashboard is {overflow} px too wide at {width} px"

    page.get_by_role("link", name="Pull analytics").click()
    page.wait_for_url("**/analytics/")
    page.get_by_label("App").select_option("acme-api")
    page.get_by_label("Period").select_option("7")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/analytics/?app=acme-api&days=7")
    assert page.locator("svg.chart").count() == 2
    assert page.locator("svg.chart").first.locator("rect.bar").count() == 7
    expect(page.get_by_text("Globex").first).to_be_visible()
    overflow = page.evaluate(f"Math.max(document.documentElement.scrollWidth, window.innerWidth) - {width}")
    screenshot(f"analytics-{width}")
    assert overflow <= 0, f"analytics is {overflow} px too wide at {width} px"

    with page.expect_download() as download:
        page.get_by_role("link", name="Days as CSV").click()
    assert download.value.suggested_filename == "pulls-acme-api-days-7d.csv"
    assert open(download.value.path()).read().splitlines()[0] == "date,pulls,bytes,refused"
