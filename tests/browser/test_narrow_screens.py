"""Every page a vendor uses fits a phone's width (390 px): nothing scrolls sideways, the add
dialog is centred with its close button on screen. The same pass at 1280 px keeps screenshots
of the desktop layout to compare with."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from licenses import releases
from registries import services as registries
from tests import factories

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Long values, so that anything that cannot shrink would push the page wider than the screen.
LONG_EMAIL = "procurement.and.licensing.team@globex-international-holdings.example"
LONG_ENDPOINT = "registry.internal.globex-international-holdings.example:5443/platform/products/acme"


PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}


@pytest.fixture(params=[PHONE, DESKTOP], ids=["phone-390", "desktop-1280"])
def browser_context_args(request) -> dict:
    """The conftest's page as a phone too (mobile: the meta viewport applies, and a page wider
    than the screen widens the layout viewport, which is what pushed the add dialog off-centre)."""
    return request.param


def _too_wide(page, name: str, width: int) -> list[str]:
    # innerWidth alone is not enough on a phone: it grows with a page that is too wide.
    overflow = page.evaluate(f"Math.max(document.documentElement.scrollWidth, window.innerWidth) - {width}")
    return [f"{name}: {overflow} px too wide"] if overflow > 0 else []


def test_no_page_a_vendor_uses_scrolls_sideways(page, screenshot, live_server, team, app, customer_license):
    width = page.viewport_size["width"]
    shot = lambda name: screenshot(f"narrow-{width}-{name}")  # noqa: E731

    too_wide: list[str] = []  # every page is checked (and shot) before the verdict
    for name, url in [("login", "/login/"), ("signup", "/signup/")]:
        page.goto(url)
        too_wide += _too_wide(page, name, width)
        shot(name)

    user = factories.add_member(team, Role.ADMIN, factories.make_user(LONG_EMAIL))
    actor = factories.actor_of(user, team)
    registry = registries.registry_create(
        actor=actor,
        provider="other",
        name="globex-platform-products",
        endpoint=LONG_ENDPOINT,
        username="robot$globex-platform-products-puller",
        password="a-Long-test-passw0rd",
        skip_validation=True,
    )
    # Two releases with long references and a long finding, for the release pages and the diff.
    long_image = "ghcr.io/globex-international-holdings/platform-products/acme-api-gateway-controller"
    files = {"app.yaml": f"images:\n- source: public\n  name: {long_image}\n  tag: 1.4.2-rc.1-build.20260101\n"}
    releases.release_create(actor=actor, app=app, files=files, version="1.4.2-rc.1", promote_to="stable")
    files["app.yaml"] = files["app.yaml"].replace("rc.1-", "rc.2-")
    files["manifests/a-very-long-deployment-file-name-for-the-gateway-controller.yaml"] = "kind: ConfigMap\n" * 3
    releases.release_create(actor=actor, app=app, files=files, version="1.4.2-rc.2")
    client = factories.browser_client(user)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )

    pages = [
        ("apps", "/apps/"),
        ("app-detail", f"/apps/{app.slug}/"),
        ("app-new", "/apps/new/"),
        ("releases", f"/apps/{app.slug}/releases/"),
        ("release-new", f"/apps/{app.slug}/releases/new/"),
        ("release-detail", f"/apps/{app.slug}/releases/2/"),
        ("release-diff", f"/apps/{app.slug}/releases/2/diff/"),
        ("channels", f"/apps/{app.slug}/channels/"),
        ("images", "/images/"),
        ("registry-detail", f"/images/registries/{registry.pk}/"),
        ("licenses", "/licenses/"),
        ("license-detail", f"/licenses/{customer_license.license.pk}/"),
        ("license-new", "/licenses/new/"),
        ("team", "/team/"),
        ("tokens", "/tokens/"),
        ("audit", "/team/audit/"),
        ("password", "/account/password/"),
        ("dashboard", "/"),
        ("analytics", "/analytics/"),
    ]
    for name, url in pages:
        page.goto(url)
        expect(page.get_by_text(LONG_EMAIL).first, f"{name}: the header lost the email").to_be_visible()
        too_wide += _too_wide(page, name, width)
        shot(name)

        if name == "images":
            page.locator(".page-head").get_by_role("link", name="Add external registry").click()
            dialog = page.get_by_role("dialog", name="Add external registry")
            dialog.wait_for()
            shot("images-dialog")
            close = dialog.get_by_role("button", name="Close")
            box, dialog_box = close.bounding_box(), dialog.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, f"close button off screen: {box}"
            left, right = dialog_box["x"], width - dialog_box["x"] - dialog_box["width"]
            assert left >= 0 and right >= 0 and abs(left - right) <= 2, f"dialog not centred: {dialog_box}"
            too_wide += _too_wide(page, "images with the add dialog open", width)
    assert too_wide == [], f"pages that scroll sideways at {width} px: {too_wide}"
