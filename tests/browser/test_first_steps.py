"""A new vendor's first minutes, in a real browser."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_up_create_an_app_see_it_listed_and_create_a_token(page, screenshot, live_server):
    page.goto("/signup/")
    page.get_by_label("Email").fill("founder@rocket.test")
    page.get_by_label("Your name").fill("Fran")
    page.get_by_label("Password").fill("a-Long-test-passw0rd")
    page.get_by_label("Team (your company)").fill("Rocket Software")
    page.get_by_role("button", name="Create account").click()

    page.wait_for_url("**/apps/")
    expect(page.get_by_text("Your team “Rocket Software” is ready")).to_be_visible()
    expect(page.get_by_role("heading", name="No apps yet")).to_be_visible()
    screenshot("01-empty-apps")

    page.get_by_role("link", name="Create your first app").click()
    page.get_by_label("Name").fill("Rocket Launcher")
    page.locator("#slug-preview").get_by_text("proxy/rocket-launcher/").wait_for()  # htmx preview
    page.get_by_role("button", name="Create app").click()
    page.wait_for_url("**/apps/rocket-launcher/")

    page.get_by_role("link", name="Apps").click()
    row = page.get_by_role("row", name="Rocket Launcher")
    expect(row.get_by_text("rocket-launcher")).to_be_visible()
    screenshot("02-app-listed")

    page.get_by_role("link", name="API tokens").click()
    page.locator("#id_token-name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").input_value()
    assert token.startswith("vpu_")
    screenshot("03-token-shown-once")

    response = httpx.get(f"{live_server.url}/api/v1/apps/", headers={"Authorization": f"Bearer {token}"})
    assert [a["slug"] for a in response.json()["results"]] == ["rocket-launcher"]

    page.get_by_role("link", name="Done").click()
    assert token not in page.content()
    expect(page.get_by_text(token[:12])).to_be_visible()


def test_signup_errors_show_next_to_their_fields(page, screenshot):
    page.goto("/signup/")
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_label("Password").fill("123")
    page.get_by_role("button", name="Create account").click()
    assert page.locator("#id_email-error").inner_text().startswith("Enter a valid email address")
    assert "too short" in page.locator("#id_password-error").inner_text()
    assert page.locator("#id_team_name-error").inner_text() == "Enter a team name."
    screenshot("04-signup-errors")
