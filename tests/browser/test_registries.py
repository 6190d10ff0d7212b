"""The Images page in a real browser: the add dialog, and Test running on a real Celery worker over Redis."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from registries.models import ExternalRegistry

# The GCR upstream (loopback Google token endpoint + token-auth Distribution) lives with the registries tests.
from tests.registries.conftest import gcr_token_registry  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WORKER_TIMEOUT_MS = 30_000


def _log_in(page, live_server, client) -> None:
    """The browser takes over the session of a logged-in test client."""
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


def test_add_a_dockerhub_registry_test_it_then_see_a_wrong_password_fail(
    celery_worker_process, page, screenshot, live_server, basic_registry, admin_client
):
    _log_in(page, live_server, admin_client)

    page.goto("/images/")
    page.get_by_role("heading", name="No external registries connected").wait_for()
    screenshot("10-images-empty")

    # Docker Hub tab, with the advanced endpoint pointed at the local registry.
    page.locator(".page-head").get_by_role("link", name="Add external registry").click()
    dialog = page.get_by_role("dialog", name="Add external registry")
    dialog.wait_for()
    dialog.get_by_role("tab", name="DockerHub").click()
    hub = dialog.get_by_role("tabpanel", name="DockerHub")
    hub.get_by_label("Docker Hub username").fill(basic_registry.username)
    hub.get_by_label("Password or access token").fill(basic_registry.password)
    hub.get_by_text("Advanced", exact=True).click()
    assert hub.get_by_label("Endpoint").input_value() == "index.docker.io"
    hub.get_by_label("Endpoint").fill(basic_registry.endpoint)
    screenshot("11-add-dialog-dockerhub")
    hub.get_by_role("button", name="Save registry").click()

    card = page.get_by_role("article", name="dockerhub")
    card.wait_for()
    expect(page.get_by_text("Registry “dockerhub” saved")).to_be_visible()
    expect(card.get_by_text("Docker Hub", exact=True)).to_be_visible()
    expect(card.get_by_text("Not tested")).to_be_visible()

    # Test: the result appears in place, polled from the worker's outcome, without a reload.
    page.evaluate("window.__sameDocument = true")
    card.get_by_label("Test with image").fill("acme/api:1.0.0")
    card.get_by_role("button", name="Test", exact=True).click()
    digest = basic_registry.images["api"].digest
    card.locator(".test-result code.digest").filter(has_text=digest).wait_for(timeout=WORKER_TIMEOUT_MS)
    assert card.locator(".test-result .badge").inner_text() == "Succeeded"
    expect(card.locator(".health").get_by_text("Healthy")).to_be_visible()  # updated out of band
    assert page.evaluate("window.__sameDocument") is True
    expect(card.get_by_label("Test with image")).to_be_visible()  # the form stays for the next test
    assert card.locator("[hx-trigger]").count() == 0  # done: polling stopped
    screenshot("12-test-succeeded")

    # Other Registry tab: each provider shows only its own fields.
    page.locator(".page-head").get_by_role("link", name="Add external registry").click()
    other = dialog.get_by_role("tabpanel", name="Other Registry")
    other.wait_for()
    other.get_by_label("Provider").select_option("ecr")
    expect(other.get_by_label("Access key ID")).to_be_visible()
    expect(other.get_by_label("Secret access key")).to_be_visible()
    expect(other.locator('[data-provider="other"]')).not_to_be_visible()
    screenshot("13-add-dialog-ecr-fields")
    other.get_by_label("Provider").select_option("other")
    section = other.locator('[data-provider="other"]')
    section.get_by_label("Endpoint").fill(f"{basic_registry.endpoint}/acme")
    section.get_by_label("Username").fill(basic_registry.username)
    section.get_by_label("Password or token").fill("wrong-password-123")
    other.get_by_label("Name (optional)").fill("broken")

    # Saving validates first: the refusal shows on the password field, in the dialog.
    other.get_by_role("button", name="Save registry").click()
    error = dialog.locator("#reg_other_password_error")
    error.wait_for()
    assert "rejected the credentials" in error.inner_text()
    expect(dialog).to_be_visible()
    assert ExternalRegistry.objects.count() == 1
    screenshot("14-add-dialog-inline-error")

    # Saved anyway with "skip validation", the Test then reports the failure clearly.
    section.get_by_label("Password or token").fill("wrong-password-123")
    other.get_by_text("Advanced", exact=True).click()  # skip validation is one of the rarely needed fields
    other.get_by_label("Skip validation").check()
    other.get_by_role("button", name="Save registry").click()
    broken = page.get_by_role("article", name="broken")
    broken.wait_for()
    broken.get_by_label("Test with image").fill("acme/api:1.0.0")
    broken.get_by_role("button", name="Test", exact=True).click()
    failure = broken.locator(".test-result .test-failure")
    failure.wait_for(timeout=WORKER_TIMEOUT_MS)
    assert failure.inner_text().startswith("unauthorized: the registry rejected the credentials.")
    expect(broken.get_by_text("Unhealthy")).to_be_visible()
    screenshot("15-test-unauthorized")
    assert basic_registry.password not in page.content()

    # Its page keeps the history; the edit page leaves the stored secret alone unless one is typed.
    broken.get_by_role("link", name="broken", exact=True).click()
    page.get_by_role("heading", name="Test history").wait_for()
    expect(page.get_by_role("row", name="unauthorized")).to_be_visible()
    screenshot("16-registry-detail")
    page.get_by_role("link", name="Edit").click()
    assert page.get_by_label("Password or token (optional)").input_value() == ""
    expect(page.get_by_text("Leave blank to keep the stored one")).to_be_visible()
    screenshot("17-registry-edit")


def test_a_json_key_typed_into_the_other_tab_is_saved_as_gcr_and_its_test_pulls(
    celery_worker_process,
    page,
    screenshot,
    live_server,
    admin_client,
    service_account_key,
    google_token_endpoint,
    gcr_token_registry,  # noqa: F811 (the fixture imported above)
):
    """Google's docs: Other registry, user name _json_key, the whole JSON key file as the password."""
    _log_in(page, live_server, admin_client)
    key = service_account_key()
    page.goto("/images/")
    page.locator(".page-head").get_by_role("link", name="Add external registry").click()
    dialog = page.get_by_role("dialog", name="Add external registry")
    other = dialog.get_by_role("tabpanel", name="Other Registry")
    other.wait_for()
    section = other.locator('[data-provider="other"]')

    # A key whose private_key is no RSA key: named on the password field, nothing saved.
    broken = {**key.info, "private_key": "-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----\n"}
    section.get_by_label("Endpoint").fill(gcr_token_registry.endpoint)
    section.get_by_label("Username").fill("_json_key")
    section.get_by_label("Password or token").fill(json.dumps(broken, indent=2))
    other.get_by_label("Name (optional)").fill("gcr-local")
    other.get_by_role("button", name="Save registry").click()
    error = dialog.locator("#reg_other_password_error")
    error.wait_for()
    assert 'Field "private_key" is not a PEM-encoded, unencrypted RSA private key.' in error.inner_text()
    assert ExternalRegistry.objects.count() == 0
    screenshot("20-other-tab-broken-json-key")

    section.get_by_label("Password or token").fill(key.text)
    other.get_by_role("button", name="Save registry").click()
    card = page.get_by_role("article", name="gcr-local")
    card.wait_for()
    expect(
        page.get_by_text("Saved as Google Container Registry: the portal exchanges the key for short-lived tokens.")
    ).to_be_visible()
    expect(card.get_by_text("Google Container Registry", exact=True)).to_be_visible()
    assert ExternalRegistry.objects.get().provider == "gcr"
    screenshot("21-other-tab-json-key-saved-as-gcr")

    card.get_by_label("Test with image").fill("acme/v2s2:1.0.0")
    card.get_by_role("button", name="Test", exact=True).click()
    card.locator(".test-result .badge").filter(has_text="Succeeded").wait_for(timeout=WORKER_TIMEOUT_MS)
    assert key.secret_marker not in page.content()
