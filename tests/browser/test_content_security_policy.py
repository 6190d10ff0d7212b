"""The pages' Content-Security-Policy in a real browser: Swagger UI renders under its own
exception, and the portal's scripts (htmx, copy buttons, select-on-click, the team switch)
run from static files. The page fixture fails a test on any CSP violation Chromium reports.
"""

from __future__ import annotations

import pytest

from accounts.models import Role
from tests import factories

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _directives(policy: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in policy.split(";"))


def test_swagger_ui_renders_under_its_content_security_policy(page, csp_violations):
    response = page.goto("/api/v1/docs/")
    policy = _directives(response.headers["content-security-policy"])
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self' 'unsafe-inline'", policy
    assert page.locator(".swagger-ui .info .title").inner_text().startswith("Vendor portal API")
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() > 10
    page.locator(".opblock-summary").first.click()  # React re-renders an operation's details
    page.locator(".opblock-body").first.wait_for()
    assert csp_violations == []


def test_the_portals_scripts_run_under_the_policy(page, live_server, admin, customer_license):
    # The admin is in a second team too, for the team switch below.
    factories.add_member(factories.make_team("Globex"), Role.ADMIN, admin)
    license, license_id = customer_license.license, customer_license.license_id
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])

    response = page.goto("/login/")
    policy = _directives(response.headers["content-security-policy"])
    assert policy["default-src"] == policy["script-src"] == policy["style-src"] == "'self'", policy
    assert policy["frame-ancestors"] == policy["object-src"] == "'none'", policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-content-type-options"] == "nosniff"
    page.get_by_label("Email").fill("admin@acme.test")
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Dashboard").wait_for()  # a login lands on the dashboard

    # Copy and select-on-click on the license page (was an inline <script> and onclick).
    page.goto(f"/licenses/{license.pk}/")
    field = page.get_by_role("textbox", name="License ID")
    field.click()
    assert field.evaluate("f => f.value.substring(f.selectionStart, f.selectionEnd)") == license_id
    page.locator("button[data-copy=license-id]").click()
    page.locator("button[data-copy=license-id]", has_text="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == license_id

    # htmx runs (the slug preview follows the name) without injecting a <style> of its own.
    page.goto("/apps/new/")
    page.get_by_label("Name").fill("Space Probe")
    page.locator("#slug-preview", has_text="space-probe").wait_for()
    assert page.evaluate("document.querySelectorAll('style').length") == 0

    # The team switch submits as soon as another team is chosen (was onchange).
    page.get_by_label("Team").select_option(label="Globex")
    page.wait_for_url("**/apps/")  # the switch redirects from /apps/new/
    assert page.locator("#team-switch option:checked").inner_text() == "Globex"


def test_a_page_loads_every_resource_it_names_the_icon_included(page):
    """A browser asks for the site's icon on every page: without one it logged a 404 each time."""
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto("/login/")
    page.wait_for_load_state("networkidle")
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon and page.request.get(icon).headers["content-type"].startswith("image/svg+xml")
    assert failed == []
