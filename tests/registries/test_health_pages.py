"""Credential health and image findings on the pages and in the API; the detail page's live part
(polled while a test is queued or running). Real Distribution, a real broker queue (no worker:
the tests run the worker's half themselves)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from registries import services, steps
from registries.models import CheckStatus, RegistryTest
from tests import factories

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

HTMX = {"HTTP_HX_REQUEST": "true"}
URL = "/api/v1/external-registries/"


@pytest.fixture
def registry(actor, basic_registry):
    return factories.connect_registry(actor, basic_registry, name="local")


def _test(registry, image: str) -> RegistryTest:
    test = RegistryTest.objects.create(registry=registry, image=image, requested_by="test")
    return services.registry_test_run(test.pk)


def test_the_api_gives_credential_health_and_the_last_image_result_apart(admin_api, registry):
    finding = _test(registry, "acme/api:9.9.9")
    body = admin_api.get(f"{URL}{registry.pk}/").json()
    assert (body["health"], body["health_label"], body["health_reason"]) == ("healthy", "Healthy", "")
    assert body["last_image_result"] == {
        "test": finding.pk,
        "image": "acme/api:9.9.9",
        "status": "failed",
        "category": "manifest_unknown",
        "message": "acme/api:9.9.9 not found",
        "image_finding": True,
        "finished_at": body["last_image_result"]["finished_at"],
    }
    test = admin_api.get(f"/api/v1/registry-tests/{finding.pk}/").json()
    assert test["image_finding"] is True
    assert [(s["name"], s["label"]) for s in test["steps"]] == list(steps.STEPS)
    assert [s["outcome"] for s in test["steps"]] == ["ok", "ok", "failed", "skipped"]


def test_the_api_says_untested_since_the_credentials_changed(admin_api, registry, basic_registry):
    _test(registry, "acme/api:1.0.0")
    changed = admin_api.patch(f"{URL}{registry.pk}/", {"password": basic_registry.password}, format="json").json()
    assert (changed["health"], changed["health_label"]) == (
        "credentials_changed",
        "Untested since the credentials changed",
    )
    assert changed["credentials_changed_at"] is not None
    renamed = admin_api.patch(f"{URL}{registry.pk}/", {"name": "local-2"}, format="json").json()
    assert renamed["health"] == "credentials_changed", "a rename is no test"


def test_a_registry_never_tested_has_no_last_image_result(admin_api, registry):
    body = admin_api.get(f"{URL}{registry.pk}/").json()
    assert (body["health"], body["last_image_result"]) == ("unknown", None)


def test_pages_show_the_finding_with_the_test_and_the_registry_healthy(admin_client, registry):
    finding = _test(registry, "acme/api:9.9.9")
    result = admin_client.get(reverse("registries:test-result", args=[finding.pk])).content.decode()
    assert "About the image: the portal reached the registry and logged in" in result
    assert '<section class="test-result warn"' in result, "a finding is a warning, not a broken registry"
    for url in (reverse("registries:image-list"), reverse("registries:detail", args=[registry.pk])):
        page = admin_client.get(url).content.decode()
        assert 'data-health="healthy"' in page, url
        assert 'data-image-result="failed"' in page and "acme/api:9.9.9 not found" in page, url
    detail = admin_client.get(reverse("registries:detail", args=[registry.pk])).content.decode()
    assert "(about the image; the credentials worked)" in detail


def test_the_edit_page_leaves_health_untested_since_the_change(admin_client, registry, basic_registry):
    _test(registry, "acme/api:1.0.0")
    response = admin_client.post(
        reverse("registries:edit", args=[registry.pk]),
        {"provider": "other", "other_endpoint": basic_registry.endpoint, "other_username": basic_registry.username,
         "other_password": basic_registry.password, "name": "local"},
    )  # fmt: skip
    assert response.status_code == 302
    page = admin_client.get(response.url).content.decode()
    assert "Untested since the credentials changed" in page and "Test it to check the new credentials." in page


def test_the_detail_page_polls_while_a_test_is_pending_and_stops_when_it_is_done(admin_client, registry, private_queue):
    url = reverse("registries:detail", args=[registry.pk])
    idle = admin_client.get(url, **HTMX)
    assert 'hx-trigger="registry-test-started from:body"' in idle.content.decode()

    started = admin_client.post(reverse("registries:test", args=[registry.pk]), {"image": "acme/api:1.0.0"}, **HTMX)
    assert started.status_code == 200 and started["HX-Trigger"] == "registry-test-started"
    test = RegistryTest.objects.get()
    assert test.status == CheckStatus.QUEUED

    polling = admin_client.get(url, **HTMX)
    html = polling.content.decode()
    assert 'hx-trigger="every 1s"' in html and "A test is queued" in html
    seen = html.split("seen=", 1)[1].split('"', 1)[0]
    assert admin_client.get(f"{url}?seen={seen}", **HTMX).status_code == 204, "nothing changed yet"

    services.registry_test_run(test.pk)  # the worker's half, against the real registry
    done = admin_client.get(f"{url}?seen={seen}", **HTMX)
    html = done.content.decode()
    assert done.status_code == 200
    assert 'hx-trigger="registry-test-started from:body"' in html, "done: polling stopped"
    assert '<code class="last-good-image">acme/api:1.0.0</code>' in html
    assert 'id="test-history" aria-labelledby="history-title" hx-swap-oob="true"' in html
    live = html.split('id="test-history"', 1)[0]
    assert "hx-swap-oob" not in live, "htmx would pull a nested out-of-band element out of the live part"
    assert 'data-health="healthy"' in live
    assert "Succeeded" in html.split('id="test-history"', 1)[1]


def test_the_live_part_is_the_teams_only(outsider_client, registry):
    assert outsider_client.get(reverse("registries:detail", args=[registry.pk]), **HTMX).status_code == 404


def test_a_refused_test_request_does_not_start_the_polling(admin_client, registry):
    response = admin_client.post(reverse("registries:test", args=[registry.pk]), {"image": "not a ref!"}, **HTMX)
    assert response.status_code == 200 and "HX-Trigger" not in response
