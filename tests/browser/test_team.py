"""The team page in a real browser: the sole admin's note, copying an invite link, and an invite for another address."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import Membership, Role

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_context_args() -> dict:
    # The Copy button writes to the clipboard and the test reads it back.
    return {"viewport": {"width": 1280, "height": 900}, "permissions": ["clipboard-read", "clipboard-write"]}


def _log_in(page, live_server, client) -> None:
    """The browser takes over the session of a logged-in test client."""
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


def _row(page, email: str):
    return page.locator("tbody tr", has_text=email)


def test_the_sole_admin_sees_a_note_until_someone_else_is_made_admin(
    page, screenshot, live_server, admin_client, developer
):
    _log_in(page, live_server, admin_client)
    page.goto("/team/")
    me, dev = _row(page, "admin@acme.test"), _row(page, "dev@acme.test")
    assert "You are the only admin; make someone else admin first" in me.inner_text()
    assert me.get_by_role("combobox").count() == 0 and me.get_by_role("link", name="Remove").count() == 0
    expect(dev.get_by_role("link", name="Remove")).to_be_visible()
    screenshot("60-team-sole-admin")

    dev.get_by_role("combobox").select_option("admin")
    dev.get_by_role("button", name="Change").click()
    page.get_by_text("dev@acme.test is now admin").wait_for()
    me = _row(page, "admin@acme.test")
    assert me.get_by_role("combobox").input_value() == "admin"
    expect(me.get_by_role("link", name="Remove")).to_be_visible()
    assert page.locator("#sole-admin-note").count() == 0
    assert Membership.objects.get(user=developer).role == Role.ADMIN


def test_copy_puts_the_new_invite_link_on_the_clipboard(page, screenshot, live_server, admin_client):
    _log_in(page, live_server, admin_client)
    page.goto("/team/")
    page.get_by_role("button", name="Create invite link").click()
    link = page.get_by_role("textbox", name="Invite link")
    url = link.input_value()
    assert "/invite/" in url
    page.get_by_role("button", name="Copy the invite link").click()
    page.get_by_role("button", name="Copy the invite link").filter(has_text="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == url
    screenshot("61-team-invite-link-copied")


def test_an_invite_for_another_address_offers_to_switch_account(
    page, screenshot, live_server, admin_client, outsider_client
):
    response = admin_client.post("/team/", {"role": Role.DEVELOPER, "email": "someone@acme.test"})
    path = response.context["new_invite_url"].removeprefix("http://testserver")
    _log_in(page, live_server, outsider_client)
    page.goto(path)
    assert page.locator("#invite-wrong-account").inner_text() == (
        "This invite is for someone@acme.test; you are signed in as boss@other.test. "
        "Log out, then log in or sign up as someone@acme.test to accept it."
    )
    assert page.get_by_role("button", name="Join Acme").count() == 0
    screenshot("62-invite-for-another-address")
    page.get_by_role("button", name="Log out and switch account").click()
    page.wait_for_url(f"**{path}")
    assert page.get_by_label("Email").input_value() == "someone@acme.test"
    expect(page.get_by_role("button", name="Create account and join")).to_be_visible()
