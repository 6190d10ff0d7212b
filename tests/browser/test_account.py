"""Account basics in a real browser."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests import factories

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_change_password_from_the_header_then_log_in_with_the_new_one(page, screenshot):
    team = factories.make_team("Rocket", admin=factories.make_user("fran@rocket.test"))
    page.goto("/login/")
    page.get_by_label("Email").fill("fran@rocket.test")
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="fran@rocket.test").click()
    page.get_by_role("heading", name="Change password").wait_for()

    page.get_by_label("Current password").fill("wrong-password")
    page.get_by_label("New password", exact=True).fill("a-Newer-passw0rd")
    page.get_by_label("New password again").fill("a-Newer-passw0rd")
    page.get_by_role("button", name="Change password").click()
    assert page.locator("#id_current_password-error").inner_text() == "That is not your current password."
    screenshot("account-01-wrong-current-password")

    page.get_by_label("Current password").fill(factories.PASSWORD)
    page.get_by_label("New password", exact=True).fill("a-Newer-passw0rd")
    page.get_by_label("New password again").fill("a-Newer-passw0rd")
    page.get_by_role("button", name="Change password").click()
    page.get_by_text("Password changed.").wait_for()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()  # still logged in

    page.get_by_role("button", name="Log out").click()
    page.goto("/login/")
    page.get_by_label("Email").fill("fran@rocket.test")
    page.get_by_label("Password").fill("a-Newer-passw0rd")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="fran@rocket.test").wait_for()
    assert team.memberships.count() == 1


def _log_in(page, email: str, password: str = factories.PASSWORD) -> None:
    page.goto("/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name=email).wait_for()


def test_an_admin_issues_a_reset_link_and_the_member_sets_a_password_with_it(page, chromium, live_server, screenshot):
    team = factories.make_team("Rocket", admin=factories.make_user("fran@rocket.test"))
    factories.add_member(team, "developer", factories.make_user("dev@rocket.test"))
    _log_in(page, "fran@rocket.test")
    page.goto("/team/")
    page.get_by_role("button", name="Password reset link for dev@rocket.test").click()
    url = page.get_by_label("Password reset link").input_value()
    assert url.startswith(live_server.url + "/password-reset/")
    screenshot("account-02-reset-link-shown-once")

    member = chromium.new_context(base_url=live_server.url).new_page()
    member.goto(url)
    member.get_by_label("New password", exact=True).fill("a-Member-passw0rd")
    member.get_by_label("New password again").fill("a-Member-passw0rd")
    member.get_by_role("button", name="Set password").click()
    member.get_by_text("Password set. Log in with it now.").wait_for()
    member.goto(url)
    expect(member.get_by_role("heading", name="This reset link does not work")).to_be_visible()
    member.context.close()


def test_a_token_with_an_expiry_lists_it(page, screenshot):
    factories.make_team("Rocket", admin=factories.make_user("fran@rocket.test"))
    _log_in(page, "fran@rocket.test")
    page.goto("/tokens/")
    page.locator("#id_token-name").fill("laptop")
    page.locator("#id_token-expires_in").select_option(label="In 30 days")
    page.get_by_role("button", name="Create token").click()
    assert page.locator("#new-token").input_value().startswith("vpu_")
    page.get_by_role("link", name="Done").click()
    row = page.get_by_role("row", name="laptop")
    in_30_days = (timezone.now() + timedelta(days=30)).strftime("%Y-%m-%d")
    assert row.locator("td").nth(4).inner_text().startswith(in_30_days)  # the Expires column
    screenshot("account-03-token-with-expiry")


@pytest.mark.parametrize("path", ["/account/password/", "/password/forgot/", "/tokens/", "/team/"])
def test_account_pages_fit_a_phone(page, path):
    factories.make_team("Rocket", admin=factories.make_user("procurement.and.licensing@globex-international.example"))
    page.set_viewport_size({"width": 390, "height": 844})
    if path != "/password/forgot/":
        _log_in(page, "procurement.and.licensing@globex-international.example")
    page.goto(path)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
