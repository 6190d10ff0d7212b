"""Registry health in a real browser: a missing image is a finding beside a healthy registry, the
detail page updates without a reload when a test finishes (a real Celery worker over Redis),
"untested since the credentials changed", the step names the CLI prints too, and the add
dialog (one Advanced disclosure, Save in view at 1280×800 on every tab, focus on the first
field), also 390 px wide without sideways scrolling."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from registries.steps import STEPS
from tests import factories

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WORKER_TIMEOUT_MS = 30_000
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
LAPTOP = {"viewport": {"width": 1280, "height": 800}}


def _log_in(page, live_server, client) -> None:
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


def _sideways(page) -> int:
    return page.evaluate("Math.max(document.documentElement.scrollWidth, window.innerWidth) - window.innerWidth")


@pytest.fixture(params=[LAPTOP, PHONE], ids=["laptop-1280x800", "phone-390"])
def browser_context_args(request) -> dict:
    return request.param


def test_the_detail_page_follows_a_test_to_its_end_and_keeps_health_apart_from_the_image(
    celery_worker_process, page, screenshot, live_server, admin_client, actor, basic_registry
):
    width = page.viewport_size["width"]
    # Saved without logging in: verifying runs asyncio, which Playwright's loop in this thread forbids.
    registry = factories.connect_registry(actor, basic_registry, name="local", skip_validation=True)
    _log_in(page, live_server, admin_client)
    page.goto(f"/images/registries/{registry.pk}/")
    page.evaluate("window.__sameDocument = true")
    live = page.locator("#registry-live")
    assert live.locator("[data-health]").inner_text() == "Not tested"

    # A missing tag: a finding about the image; the registry stays healthy (its login worked).
    page.get_by_label("Test with image").fill("acme/api:9.9.9")
    page.get_by_role("button", name="Test", exact=True).click()
    live.locator('[data-image-result="failed"]').wait_for(timeout=WORKER_TIMEOUT_MS)
    assert live.locator("[data-health]").inner_text() == "Healthy"
    assert "acme/api:9.9.9 not found" in live.locator(".image-result").inner_text()
    history = page.locator("#test-history")
    history.get_by_role("row", name="manifest_unknown").wait_for()
    assert "about the image; the credentials worked" in history.inner_text()
    result = page.locator(".test-form .test-result")
    assert [c.strip() for c in result.locator("table.steps tbody td:first-child").all_inner_texts()] == [
        label for _, label in STEPS
    ], "the steps carry the names the CLI prints"
    assert _sideways(page) == 0
    screenshot(f"health-{width}-image-finding")

    # A good image: last good image and the history update in place, then the polling stops.
    page.get_by_label("Test with image").fill("acme/api:1.0.0")
    page.get_by_role("button", name="Test", exact=True).click()
    live.locator("code.last-good-image").filter(has_text="acme/api:1.0.0").wait_for(timeout=WORKER_TIMEOUT_MS)
    assert history.get_by_role("row", name="Succeeded").count() == 1
    expect(live.locator('[data-image-result="succeeded"]')).to_be_visible()
    page.wait_for_function("!document.querySelector('#registry-live[data-polling]')")
    assert page.evaluate("window.__sameDocument") is True, "no reload"
    screenshot(f"health-{width}-good-image")

    # New credentials: untested until the next test, on the page (and the registry list).
    page.get_by_role("link", name="Edit").click()
    section = page.locator('[data-provider="other"]').first
    section.get_by_label("Password or token").fill(basic_registry.password)
    page.get_by_role("button", name="Save changes").click()
    page.locator("#registry-live").wait_for()
    assert page.locator("#registry-live [data-health]").inner_text() == "Untested since the credentials changed"
    expect(page.get_by_text("Test it to check the new credentials.")).to_be_visible()
    screenshot(f"health-{width}-credentials-changed")
    page.goto("/images/")
    card = page.get_by_role("article", name="local")
    assert card.locator("[data-health]").inner_text() == "Untested since the credentials changed"
    assert _sideways(page) == 0


def test_a_refused_login_makes_the_registry_unhealthy_naming_the_step(
    celery_worker_process, page, screenshot, live_server, admin_client, actor, basic_registry
):
    registry = factories.connect_registry(actor, basic_registry, name="local", skip_validation=True)
    from registries import services

    services.registry_update(actor=actor, registry=registry, password="wrong-password", skip_validation=True)
    _log_in(page, live_server, admin_client)
    page.goto(f"/images/registries/{registry.pk}/")
    page.get_by_label("Test with image").fill("acme/api:1.0.0")
    page.get_by_role("button", name="Test", exact=True).click()
    live = page.locator("#registry-live")
    live.locator('[data-health="unhealthy"]').wait_for(timeout=WORKER_TIMEOUT_MS)
    assert live.locator(".health-reason").inner_text().startswith(f"Log in: {basic_registry.netloc} rejected")
    assert _sideways(page) == 0
    screenshot(f"health-{page.viewport_size['width']}-unhealthy")


def test_the_add_dialog_focuses_the_first_field_and_keeps_save_in_view_on_every_tab(
    page, screenshot, live_server, admin_client
):
    width, height = page.viewport_size["width"], page.viewport_size["height"]
    _log_in(page, live_server, admin_client)
    page.goto("/images/")
    page.locator(".page-head").get_by_role("link", name="Add external registry").click()
    dialog = page.get_by_role("dialog", name="Add external registry")
    dialog.wait_for()
    other = dialog.get_by_role("tabpanel", name="Other Registry")
    assert page.evaluate("document.activeElement.id") == "reg_provider", "the first field has the focus"

    def save_in_view(panel, name: str) -> None:
        save = panel.get_by_role("button", name="Save registry")
        box = save.bounding_box()
        assert box and 0 <= box["y"] and box["y"] + box["height"] <= height, f"{name}: Save out of view: {box}"
        assert dialog.evaluate("d => d.scrollTop") == 0, f"{name}: the dialog was scrolled"
        assert panel.locator("details.advanced").count() == 1, f"{name}: one Advanced disclosure"
        assert panel.locator("details.advanced summary").inner_text() == "Advanced"
        assert _sideways(page) == 0, f"{name}: scrolls sideways"

    for provider in ("other", "ecr", "gcr", "gar", "ghcr", "quay"):
        other.get_by_label("Provider").select_option(provider)
        save_in_view(other, provider)
        screenshot(f"add-dialog-{width}-{provider}")
    advanced = other.locator("details.advanced")
    advanced.locator("summary").click()
    for label in ("Token realm host", "Skip validation"):
        expect(advanced.get_by_label(label)).to_be_visible()
    other.get_by_label("Provider").select_option("ecr")
    expect(advanced.get_by_label("Region (optional)"), "the provider's rare fields are in it too").to_be_visible()
    screenshot(f"add-dialog-{width}-ecr-advanced")

    dialog.get_by_role("tab", name="DockerHub").click()
    hub = dialog.get_by_role("tabpanel", name="DockerHub")
    save_in_view(hub, "dockerhub")
    screenshot(f"add-dialog-{width}-dockerhub")

    # Opened again, the focus goes to the visible tab's first field.
    dialog.get_by_role("button", name="Close").click()
    page.locator(".page-head").get_by_role("link", name="Add external registry").click()
    assert page.evaluate("document.activeElement.closest('[role=tabpanel]').id") == "panel-dockerhub"
    assert page.evaluate("document.activeElement.name") == "dockerhub_username"
