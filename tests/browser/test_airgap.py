"""The release page's air-gap card in a real browser: Build, then the progress htmx polls."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from delivery.models import AirgapBundle, BundleStatus
from tests import factories
from tests.airgap import stored

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_click_build_on_a_ready_release_and_watch_it_queue_then_progress(page, screenshot, actor, app):
    release = stored.ready_release(actor, app)
    page.goto("/login/")
    page.get_by_label("Email").fill("admin@acme.test")
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Dashboard").wait_for()  # a login lands on the dashboard
    page.goto(f"/apps/{app.slug}/releases/{release.sequence}/")

    card = page.locator("#airgap")
    expect(card.get_by_text("No bundle yet.")).to_be_visible()
    card.get_by_role("button", name="Build bundle").click()
    page.wait_for_url(re.compile(rf"/apps/{app.slug}/releases/1/#airgap$"))
    expect(page.get_by_text("The air-gap bundle of release 1 is queued to be built.")).to_be_visible()
    expect(card.get_by_text("Queued: waiting for a worker")).to_be_visible()
    assert card.get_by_role("button", name="Build again").count() == 0

    # What a worker would write as it goes; the card follows within a poll (every 2 s).
    bundle = AirgapBundle.objects.get(release=release)
    AirgapBundle.objects.filter(pk=bundle.pk).update(
        status=BundleStatus.BUILDING, images_total=3, images_done=1, bytes_total=8 * 2**20, bytes_done=2 * 2**20
    )
    card.get_by_text("Building: images 1 of 3; 2.0 MB of 8.0 MB fetched.").wait_for()
    assert card.locator("progress").get_attribute("value") == str(2 * 2**20)
    screenshot("60-airgap-building")
