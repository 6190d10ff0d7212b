"""Team → Custom domains in a real browser, at 1280 and 390 px: add a domain, read its records,
verify it against a real dnsmasq, make it the default; nothing scrolls sideways."""

from __future__ import annotations

import pytest

from accounts.models import CustomDomain, DomainStatus

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
# Long enough that anything that cannot wrap would push a phone's page sideways.
DOMAIN = "container-images-proxy.customer-facing.vendor-international.test"


@pytest.fixture(params=[DESKTOP, PHONE], ids=["desktop-1280", "phone-390"])
def browser_context_args(request) -> dict:
    return request.param


@pytest.fixture(autouse=True)
def _portal_hosts(settings):
    settings.PORTAL_URL = "https://portal.example.test"


def _log_in(page, live_server, client) -> None:
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


def _overflow(page) -> int:
    width = page.viewport_size["width"]
    return page.evaluate(f"Math.max(document.documentElement.scrollWidth, window.innerWidth) - {width}")


def test_add_see_the_records_verify_and_make_default(page, screenshot, live_server, admin_client, dns_server):
    width = page.viewport_size["width"]
    _log_in(page, live_server, admin_client)
    page.goto("/team/")
    page.get_by_role("link", name="Custom domains").click()
    page.get_by_role("heading", name="No custom domains yet").wait_for()
    too_wide = {"empty": _overflow(page)}
    screenshot(f"domains-{width}-empty")

    page.get_by_role("textbox", name="Domain", exact=True).fill(DOMAIN)
    page.get_by_role("combobox", name="For", exact=True).select_option("proxy")
    page.get_by_role("button", name="Add domain").click()
    page.get_by_text(f"Added {DOMAIN}. Create its two DNS records, then press Verify.").wait_for()
    row = CustomDomain.objects.get()
    card = page.locator(f"#domain-{row.pk}")
    assert card.locator("[data-status]").inner_text() == "pending"
    records = card.locator("dl.dns-record")
    assert records.nth(0).locator("dd").all_inner_texts()[0] == "CNAME"
    assert records.nth(0).locator("code").all_inner_texts() == [DOMAIN, "portal.example.test"]
    txt_name, txt_value = records.nth(1).locator("code").all_inner_texts()
    assert (txt_name, txt_value) == (f"_portal-challenge.{DOMAIN}", row.challenge)
    card.get_by_role("button", name="Copy the TXT record's value").click()
    card.get_by_role("button", name="Copy the TXT record's value").filter(has_text="Copied").wait_for()
    too_wide["pending"] = _overflow(page)
    screenshot(f"domains-{width}-pending")

    # The vendor creates the record with the value the page showed, and verifies.
    dns_server.serve({txt_name: txt_value})
    card.get_by_role("button", name=f"Verify {DOMAIN}").click()
    page.get_by_text(f"{DOMAIN} is verified: the portal answers on it.").wait_for()
    card = page.locator(f"#domain-{row.pk}")
    assert card.locator("[data-status]").inner_text() == "verified"

    card.get_by_role("button", name=f"Make {DOMAIN} the default").click()
    page.get_by_text(f"Customers are now shown {DOMAIN} for the proxy.").wait_for()
    card = page.locator(f"#domain-{row.pk}")
    assert card.locator(".badge.default").inner_text() == "default"
    assert card.get_by_role("button", name=f"Make {DOMAIN} the default").count() == 0
    too_wide["default"] = _overflow(page)
    screenshot(f"domains-{width}-default")

    row.refresh_from_db()
    assert (row.status, row.is_default) == (DomainStatus.VERIFIED, True)
    assert {name: px for name, px in too_wide.items() if px > 0} == {}
