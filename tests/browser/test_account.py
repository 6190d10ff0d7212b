"""Account basics in a real browser."""

from __future__ import annotations

import pytest

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
    assert page.get_by_role("button", name="Log out").is_visible()  # still logged in

    page.get_by_role("button", name="Log out").click()
    page.goto("/login/")
    page.get_by_label("Email").fill("fran@rocket.test")
    page.get_by_label("Password").fill("a-Newer-passw0rd")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="fran@rocket.test").wait_for()
    assert team.memberships.count() == 1
