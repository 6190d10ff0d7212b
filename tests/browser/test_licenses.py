"""Issuing a license and taking it back, in a real browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from licenses import services
from licenses.models import App, License
from registries.models import ExternalRegistry
from tests import factories

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_log_in_create_an_app_and_a_license_then_revoke_it(page, screenshot, live_server, team):
    ExternalRegistry.objects.create(team=team, name="quay", provider="quay", endpoint="quay.io/acme")
    host = live_server.url.removeprefix("http://")

    page.goto("/login/")
    page.get_by_label("Email").fill("admin@acme.test")
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Dashboard").wait_for()  # a login lands on the dashboard

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Licenses").click()
    expect(page.get_by_role("heading", name="No apps to license yet")).to_be_visible()
    page.get_by_role("link", name="Create an app").click()
    page.get_by_label("Name").fill("Rocket Launcher")
    page.get_by_role("button", name="Create app").click()
    page.wait_for_url("**/apps/rocket-launcher/")
    expect(page.locator("#no-rules-note")).to_be_visible()
    screenshot("10-app-page-licenses-and-repository-access")
    # What the license will pull: a release listing one image of the quay registry, on stable.
    admin = team.memberships.get(role="admin").user
    app = App.objects.get(slug="rocket-launcher")
    factories.make_release(factories.actor_of(admin, team), app, [("quay", "acme/api", "1.0.0")])

    page.locator("#licenses").get_by_role("link", name="New license").click()
    assert page.get_by_label("App").input_value() == "rocket-launcher"
    page.get_by_role("button", name="Create license").click()  # nothing filled in
    assert page.locator("#id_customer_name-error").inner_text() == "Enter the customer's name."
    page.get_by_label("Customer name").fill("Globex")
    page.get_by_label("Customer email").fill("ops@globex.test")
    page.get_by_label("Type").select_option("trial")
    page.get_by_label("Or expires in (days)").fill("30")
    screenshot("11-new-license-form")
    page.get_by_role("button", name="Create license").click()
    page.wait_for_url(re.compile(r"/licenses/\d+/$"))

    license = License.objects.get()
    license_id = services.license_id_of(license)
    assert page.get_by_role("textbox", name="License ID").input_value() == license_id
    assert license_id not in page.url
    expect(page.locator(".badge", has_text="Active").first).to_be_visible()
    instructions = page.locator("#instructions-text").inner_text()
    assert f"docker login {host} --username ops@globex.test --password-stdin" in instructions
    assert f"docker pull {host}/proxy/rocket-launcher/quay.io/acme/api:<tag>" in instructions
    expect(page.get_by_role("link", name="Download license file")).to_be_visible()
    expect(page.get_by_text("No pulls yet")).to_be_visible()
    screenshot("12-license-page")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Licenses").click()
    row = page.get_by_role("row", name=re.compile("Globex"))
    expect(row.get_by_text(f"{license.id_prefix}…")).to_be_visible()
    assert license_id not in page.content()
    page.get_by_label("Search").fill("nobody")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("heading", name="No licenses match")).to_be_visible()
    page.get_by_label("Search").fill("globex")
    page.get_by_role("button", name="Filter").click()
    screenshot("13-license-list")
    page.get_by_role("link", name="Globex").click()

    page.get_by_role("link", name="Revoke").click()
    expect(page.get_by_role("heading", name="Revoke the license of Globex?")).to_be_visible()
    screenshot("14-revoke-confirmation")
    license.refresh_from_db()
    assert license.revoked_at is None
    page.get_by_role("button", name="Revoke license").click()
    page.wait_for_url(re.compile(r"/licenses/\d+/$"))
    expect(page.get_by_text("License revoked: Globex can no longer pull.")).to_be_visible()
    assert page.locator("h1 .badge").inner_text() == "Revoked"
    expect(page.get_by_role("link", name="Un-revoke")).to_be_visible()
    screenshot("15-license-revoked")
    license.refresh_from_db()
    assert license.status == "revoked"
