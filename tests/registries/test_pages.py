"""The Images page and its registry pages, through Django's test client (real Distribution where it logs in)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from portal.queue import QueueUnavailable
from registries import services
from registries.models import CheckStatus, ExternalRegistry, Health, RegistryTest
from tests import factories

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
SECRET = "s3cret-Do-not-Show-7781"
ECR_ENDPOINT = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
ECR_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
ECR_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def saved(actor):
    """A registry saved without contacting it (nothing listens at that address)."""
    return services.registry_create(
        actor=actor,
        provider="other",
        endpoint="http://127.0.0.1:9/team",
        name="mirror",
        username="robot",
        password=SECRET,
        skip_validation=True,
    )


@pytest.fixture
def queued(monkeypatch):
    """Records what would go to the broker, so the page can be tested without a worker."""
    sent = []
    monkeypatch.setattr("portal.queue.enqueue", lambda task, *args: sent.append((task.name, args)) or "id")
    return sent


def _other_form(endpoint, username, password, **extra):
    return {
        "provider": "other",
        "other_endpoint": endpoint,
        "other_username": username,
        "other_password": password,
        **extra,
    }


def _text(response) -> str:
    return response.content.decode()


# --- the list ---------------------------------------------------------------------------


def test_empty_images_page_explains_what_to_do_and_offers_the_dialog(admin_client):
    body = _text(admin_client.get(reverse("registries:image-list")))
    assert "No external registries connected" in body
    assert "Add external registry" in body
    assert '<dialog id="add-registry"' in body
    assert ">Other Registry</a>" in body and ">DockerHub</a>" in body
    for provider in ("Other OCI registry", "Amazon ECR", "Google Container Registry", "Google Artifact Registry"):
        assert provider in body
    assert "Docker Hub username" in body and "Access key ID" in body


def test_a_viewer_sees_the_empty_state_without_an_add_button(viewer_client):
    body = _text(viewer_client.get(reverse("registries:image-list")))
    assert "No external registries connected" in body and "Ask a developer or admin" in body
    assert "Add external registry" not in body and "<dialog" not in body


def test_the_list_shows_provider_endpoint_user_apps_health_and_token_expiry(admin_client, actor, app, saved):
    ecr = services.registry_create(
        actor=actor,
        provider="ecr",
        endpoint=ECR_ENDPOINT,
        username=ECR_KEY_ID,
        secret_access_key=ECR_SECRET,
        apps=[app.slug],
        skip_validation=True,
    )
    expires = timezone.now() + timedelta(hours=11)
    ExternalRegistry.objects.filter(pk=ecr.pk).update(minted_token_expires_at=expires)
    ExternalRegistry.objects.filter(pk=saved.pk).update(
        health=Health.UNHEALTHY, health_reason="127.0.0.1 refused the connection", last_checked_at=timezone.now()
    )
    body = _text(admin_client.get(reverse("registries:image-list")))
    assert "Amazon ECR" in body and ECR_ENDPOINT in body and ECR_KEY_ID in body and "Acme API" in body
    assert f'expires <time datetime="{expires.isoformat(timespec="seconds")[:19]}' in body
    assert "Other OCI registry" in body and "http://127.0.0.1:9/team" in body and "robot" in body
    assert "All apps" in body
    assert "Unhealthy" in body and "127.0.0.1 refused the connection" in body and "tested" in body
    assert "Not tested" in body  # the ECR registry


def test_a_gcr_registry_shows_its_service_account_email(admin_client, actor, service_account_key):
    key = service_account_key()
    services.registry_create(
        actor=actor, provider="gcr", endpoint="gcr.io/acme", service_account_key=key.text, skip_validation=True
    )
    body = _text(admin_client.get(reverse("registries:image-list")))
    assert "Service account" in body and key.client_email in body
    assert "minted at first use" in body


# --- adding -----------------------------------------------------------------------------


@pytest.mark.slow
def test_adding_an_other_registry_logs_in_and_saves_it(admin_client, basic_registry):
    data = _other_form(basic_registry.endpoint, basic_registry.username, basic_registry.password, name="build")
    response = admin_client.post(reverse("registries:create"), data, **HTMX)
    assert response.status_code == 200 and response["HX-Redirect"] == reverse("registries:image-list")
    registry = ExternalRegistry.objects.get()
    assert (registry.name, registry.provider, registry.endpoint) == ("build", "other", basic_registry.endpoint)
    assert services.registry_secret(registry) == {"password": basic_registry.password}
    body = _text(admin_client.get(reverse("registries:image-list")))
    assert "Registry “build” saved" in body and "build" in body


@pytest.mark.slow
def test_a_wrong_password_is_shown_on_the_password_field_and_nothing_is_saved(admin_client, basic_registry):
    data = _other_form(basic_registry.endpoint, basic_registry.username, "wrong-password-123")
    response = admin_client.post(reverse("registries:create"), data, **HTMX)
    body = _text(response)
    assert response.status_code == 200 and "HX-Redirect" not in response
    assert 'id="registry-add"' in body and "<html" not in body  # the dialog's partial, swapped in place
    error = body.split('id="reg_other_password_error"', 1)[1].split("</div>", 1)[0]
    assert "rejected the credentials" in error and "unauthorized" in error
    other_tab = body.split('id="tab-other"', 1)[1].split(">", 1)[0]
    assert 'aria-selected="true"' in other_tab
    assert "wrong-password-123" not in body
    assert not ExternalRegistry.objects.exists()


@pytest.mark.slow
def test_the_dockerhub_tab_with_an_advanced_endpoint_saves_a_dockerhub_registry(admin_client, basic_registry):
    data = {
        "provider": "dockerhub",
        "dockerhub_username": basic_registry.username,
        "dockerhub_password": basic_registry.password,
        "dockerhub_endpoint": basic_registry.endpoint,
    }
    response = admin_client.post(reverse("registries:create"), data)
    assert response.status_code == 302 and response["Location"] == reverse("registries:image-list")
    registry = ExternalRegistry.objects.get()
    assert (registry.provider, registry.endpoint, registry.name) == ("dockerhub", basic_registry.endpoint, "dockerhub")


def test_the_dockerhub_tab_defaults_to_index_docker_io(admin_client):
    body = _text(admin_client.get(reverse("registries:create") + "?tab=dockerhub"))
    assert 'name="dockerhub_endpoint" value="index.docker.io"' in body
    assert 'id="panel-dockerhub" aria-labelledby="tab-dockerhub" class="tab-panel">' in body  # shown, not hidden


def test_only_the_chosen_providers_fields_count(admin_client):
    """ECR chosen: a password typed in the (hidden) Other section does not stand in for the secret key."""
    data = {
        "provider": "ecr",
        "ecr_endpoint": ECR_ENDPOINT,
        "ecr_username": ECR_KEY_ID,
        "other_endpoint": "registry.example.com",
        "other_username": "x",
        "other_password": "a-password-1",
        "skip_validation": "on",
    }
    response = admin_client.post(reverse("registries:create"), data, **HTMX)
    body = _text(response)
    assert "Enter the secret access key." in body.split('id="reg_ecr_secret_access_key_error"', 1)[1]
    assert not ExternalRegistry.objects.exists()


def test_a_value_left_in_another_providers_section_is_ignored(admin_client):
    data = _other_form("http://127.0.0.1:9", "robot", SECRET, skip_validation="on", ecr_secret_access_key=ECR_SECRET)
    admin_client.post(reverse("registries:create"), data)
    assert services.registry_secret(ExternalRegistry.objects.get()) == {"password": SECRET}


def test_service_errors_land_on_the_providers_fields_and_open_the_advanced_ones(admin_client):
    data = {
        "provider": "ecr",
        "ecr_endpoint": "ecr.example.com",
        "ecr_username": ECR_KEY_ID,
        "ecr_secret_access_key": "x",
    }
    body = _text(admin_client.post(reverse("registries:create"), data, **HTMX))
    error = body.split('id="reg_ecr_region_error"', 1)[1].split("</div>", 1)[0]
    assert "Region is required when the endpoint is not" in error
    advanced = body.split('<details class="advanced" data-advanced open>', 1)[1].split("</details>", 1)[0]
    assert 'id="reg_ecr_region_error"' in advanced, "the one Advanced disclosure opens on its field's error"
    assert not ExternalRegistry.objects.exists()


def test_a_gcr_key_can_be_uploaded_as_a_file(admin_client, service_account_key):
    key = service_account_key()
    upload = SimpleUploadedFile("key.json", key.text.encode(), content_type="application/json")
    data = {"provider": "gcr", "gcr_endpoint": "gcr.io/acme", "gcr_service_account_key_file": upload}
    response = admin_client.post(reverse("registries:create"), {**data, "skip_validation": "on"})
    assert response.status_code == 302, _text(response)
    registry = ExternalRegistry.objects.get()
    assert registry.username == key.client_email
    assert json.loads(services.registry_secret(registry)["service_account_key"])["client_email"] == key.client_email


def test_a_broken_gcr_key_is_refused_on_the_field_it_came_in(admin_client):
    data = {"provider": "gcr", "gcr_endpoint": "gcr.io", "skip_validation": "on"}
    pasted = _text(admin_client.post(reverse("registries:create"), {**data, "gcr_service_account_key": "{nope"}))
    assert "not valid JSON" in pasted.split('id="reg_gcr_service_account_key_error"', 1)[1]
    upload = SimpleUploadedFile("key.json", b'{"type": "user"}')
    uploaded = _text(admin_client.post(reverse("registries:create"), {**data, "gcr_service_account_key_file": upload}))
    assert "service_account" in uploaded.split('id="reg_gcr_service_account_key_file_error"', 1)[1]
    assert "{nope" not in pasted
    assert not ExternalRegistry.objects.exists()


def test_the_add_page_works_without_javascript(admin_client):
    response = admin_client.get(reverse("registries:create"))
    body = _text(response)
    assert response.status_code == 200 and "<h1>Add external registry</h1>" in body
    assert 'href="/images/registries/new/?tab=dockerhub"' in body
    assert "<noscript>" in body  # every provider's section is shown when scripts do not run


# The documents' advice per provider: which credential to create (the form's section of each).
ADVICE = {
    "ecr": [
        "AmazonEC2ContainerRegistryReadOnly",
        "ecr:GetAuthorizationToken, ecr:BatchGetImage and ecr:GetDownloadUrlForLayer",
        "IAM user’s access key",
        "Example: Endpoint 123456789012.dkr.ecr.us-east-1.amazonaws.com",
    ],
    "gcr": ["Storage Object Viewer role", "“ADD KEY” → “Create new key” → JSON", "Example: Endpoint gcr.io "],
    "gar": ["Artifact Registry Reader role", "“ADD KEY” → “Create new key” → JSON", "Example: Endpoint us-docker.pkg.dev "],
    "dockerhub": ["dedicated read-only account with a personal access token of “Read-only” scope",
                  "Example: Endpoint index.docker.io"],
    "ghcr": ["personal access token (classic) with the read:packages scope", "Example: "],
    "quay": ["robot account with read permission", "Example: "],
    "other": ["dedicated read-only account", "Example: "],
}  # fmt: skip


def _section(body: str, provider: str) -> str:
    """The HTML of one provider's fieldset on the form."""
    return body.split(f'data-provider="{provider}"', 1)[1].split("</fieldset>", 1)[0]


def test_the_add_form_gives_each_providers_advice_with_an_example(admin_client):
    body = _text(admin_client.get(reverse("registries:create")))
    for provider, phrases in ADVICE.items():
        section = _section(body, provider)
        for phrase in phrases:
            assert phrase in section, (provider, phrase)
        example = section.split("Example: ", 1)[1].split("</p>", 1)[0]
        assert "http" not in example and "<a" not in example and "\n" not in example, "one line, no link"


def test_the_edit_form_gives_its_providers_advice(admin_client, actor):
    registry = services.registry_create(
        actor=actor, provider="ecr", endpoint=ECR_ENDPOINT, username=ECR_KEY_ID, secret_access_key=ECR_SECRET,
        skip_validation=True,
    )  # fmt: skip
    body = _text(admin_client.get(reverse("registries:edit", args=[registry.pk])))
    for phrase in ADVICE["ecr"]:
        assert phrase in _section(body, "ecr")


def test_the_reference_name_releases_use_is_shown_with_a_copy_button(admin_client, saved):
    for url in (reverse("registries:detail", args=[saved.pk]), reverse("registries:image-list")):
        body = _text(admin_client.get(url))
        assert "<dt>Reference name</dt>" in body, url
        assert f'<code id="registry-ref-{saved.pk}">mirror</code>' in body
        assert f'data-copy="registry-ref-{saved.pk}"' in body
        assert "Releases name this registry in <code>images:</code> as <code>source: mirror</code>." in body


def test_the_name_field_says_releases_use_it_as_source(admin_client, saved):
    for url in (reverse("registries:create"), reverse("registries:edit", args=[saved.pk])):
        body = _text(admin_client.get(url))
        assert "releases name it in images: as source: &lt;name&gt;" in body, url


# --- editing and deleting ---------------------------------------------------------------


def test_editing_with_a_blank_secret_keeps_the_stored_secret(admin_client, saved, app):
    url = reverse("registries:edit", args=[saved.pk])
    page = _text(admin_client.get(url))
    assert 'value="robot"' in page and "Leave blank to keep the stored one" in page and "secret set" in page
    data = {
        "provider": "other",
        "other_endpoint": saved.endpoint,
        "other_username": "robot2",
        "other_password": "",
        "name": "mirror-2",
        "apps": [app.slug],
    }
    response = admin_client.post(url, data)
    assert response.status_code == 302 and response["Location"] == reverse("registries:detail", args=[saved.pk])
    saved.refresh_from_db()
    assert (saved.name, saved.username, saved.all_apps) == ("mirror-2", "robot2", False)
    assert list(saved.apps.all()) == [app]
    assert services.registry_secret(saved) == {"password": SECRET}


def test_editing_with_a_new_secret_replaces_it(admin_client, saved):
    data = {"provider": "other", "other_endpoint": saved.endpoint, "other_username": "robot", "name": "mirror"}
    admin_client.post(
        reverse("registries:edit", args=[saved.pk]), {**data, "other_password": "new-one-1234", "skip_validation": "on"}
    )
    saved.refresh_from_db()
    assert services.registry_secret(saved) == {"password": "new-one-1234"}


def test_changing_the_endpoint_host_asks_for_the_secret_again(admin_client, saved):
    data = {"provider": "other", "other_endpoint": "http://127.0.0.2:9", "other_username": "robot", "name": "mirror"}
    body = _text(admin_client.post(reverse("registries:edit", args=[saved.pk]), data))
    assert "Enter the password." in body.split('id="id_other_password_error"', 1)[1]
    saved.refresh_from_db()
    assert saved.endpoint == "http://127.0.0.1:9/team"


def test_delete_asks_for_confirmation_first(admin_client, saved):
    url = reverse("registries:delete", args=[saved.pk])
    page = _text(admin_client.get(url))
    assert "Delete “mirror”?" in page and "Delete registry" in page
    assert ExternalRegistry.objects.filter(pk=saved.pk).exists()
    response = admin_client.post(url)
    assert response.status_code == 302 and response["Location"] == reverse("registries:image-list")
    assert not ExternalRegistry.objects.filter(pk=saved.pk).exists()


# --- testing a connection -------------------------------------------------------------


def test_the_test_button_queues_a_test_and_answers_with_a_polling_result(admin_client, saved, queued):
    response = admin_client.post(reverse("registries:test", args=[saved.pk]), {"image": "team/api:1.0.0"}, **HTMX)
    test = RegistryTest.objects.get()
    assert queued == [("registries.tasks.registry_test_task", (test.pk,))]
    body = _text(response)
    assert response.status_code == 200 and test.image == "team/api:1.0.0"
    assert f'hx-get="/images/tests/{test.pk}/?seen=queued"' in body and 'hx-trigger="every 1s"' in body

    poll = reverse("registries:test-result", args=[test.pk]) + "?seen=queued"
    assert admin_client.get(poll, **HTMX).status_code == 204  # nothing new: no swap, keep polling
    RegistryTest.objects.filter(pk=test.pk).update(status=CheckStatus.RUNNING)
    assert 'hx-trigger="every 1s"' in _text(admin_client.get(poll, **HTMX))


@pytest.mark.slow
def test_a_finished_test_shows_steps_and_digest_and_stops_polling(admin_client, actor, basic_registry, queued):
    registry = factories.connect_registry(actor, basic_registry)
    admin_client.post(reverse("registries:test", args=[registry.pk]), {"image": "acme/api:1.0.0"}, **HTMX)
    test = RegistryTest.objects.get()
    services.registry_test_run(test.pk)  # what the worker does; the browser test runs a real one
    body = _text(admin_client.get(reverse("registries:test-result", args=[test.pk]) + "?seen=queued", **HTMX))
    assert "Succeeded" in body and basic_registry.images["api"].digest in body
    assert "Fetch the manifest" in body and " ms</td>" in body and "application/vnd.oci.image.manifest.v1+json" in body
    assert "hx-trigger" not in body.split('hx-swap-oob="true"')[0]
    assert 'id="health-' in body and "Healthy" in body  # the card's badge is updated out of band
    page = _text(admin_client.get(reverse("registries:image-list")))
    assert 'value="acme/api:1.0.0"' in page  # the next test is prefilled with the last good image


def test_a_failed_test_names_its_category_in_plain_words(admin_client, saved):
    test = RegistryTest.objects.create(
        registry=saved,
        image="team/api:1.0.0",
        status=CheckStatus.FAILED,
        category="unauthorized",
        message="127.0.0.1 rejected the credentials for team/api",
        result={"steps": [{"name": "ping", "outcome": "failed", "latency_ms": 3, "detail": "", "category": None}]},
        finished_at=timezone.now(),
    )
    body = _text(admin_client.get(reverse("registries:test-result", args=[test.pk])))
    assert "<strong>unauthorized</strong>: the registry rejected the credentials." in body
    assert "127.0.0.1 rejected the credentials for team/api" in body and "Reach /v2/" in body


def test_a_test_without_an_image_is_an_inline_error(admin_client, saved, queued):
    response = admin_client.post(reverse("registries:test", args=[saved.pk]), {"image": " "}, **HTMX)
    assert 'aria-invalid="true"' in _text(response) and "Enter an image to test with" in _text(response)
    assert not RegistryTest.objects.exists() and queued == []


def test_a_broker_that_is_down_is_a_clear_503_inline(admin_client, saved, monkeypatch):
    """The broker's failure is simulated here; tests/test_platform.py enqueues against a dead broker for real."""

    def down(task, *args):
        raise QueueUnavailable("The task queue is unavailable; try again in a moment.")

    monkeypatch.setattr("portal.queue.enqueue", down)
    response = admin_client.post(reverse("registries:test", args=[saved.pk]), {"image": "team/api:1.0.0"}, **HTMX)
    assert response.status_code == 503
    assert "The task queue is unavailable" in _text(response) and 'class="test-form"' in _text(response)
    assert RegistryTest.objects.get().category == "queue_unavailable"


def test_a_team_over_its_test_limit_sees_why_and_when_to_retry_inline_and_on_the_page(
    admin_client, saved, settings, queued
):
    settings.REGISTRY_TEST_RATE, settings.REGISTRY_TEST_RATE_WINDOW = 2, 86400  # a window that cannot end meanwhile
    url = reverse("registries:test", args=[saved.pk])
    for _ in range(2):
        assert admin_client.post(url, {"image": "team/api:1.0.0"}, **HTMX).status_code == 200
    response = admin_client.post(url, {"image": "team/api:1.0.0"}, **HTMX)
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    text = _text(response)
    assert 'class="test-form"' in text and 'role="alert"' in text
    assert "Your team may run 2 connection tests every 24 hours and has run them all; try again in" in text
    # Without JavaScript: back to the registry page, with the same message.
    page = admin_client.post(url, {"image": "team/api:1.0.0"}, follow=True)
    assert "Your team may run 2 connection tests every 24 hours" in _text(page)
    assert RegistryTest.objects.count() == 2 and len(queued) == 2


def test_without_javascript_a_test_goes_to_its_result_page(admin_client, saved, queued):
    response = admin_client.post(reverse("registries:test", args=[saved.pk]), {"image": "team/api:1.0.0"})
    test = RegistryTest.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("registries:test-result", args=[test.pk])
    page = _text(admin_client.get(response["Location"]))
    assert "Test of mirror" in page and "Queued" in page


def test_the_detail_page_lists_the_last_tests_twenty_per_page(admin_client, saved):
    now = timezone.now()
    for i in range(25):
        RegistryTest.objects.create(registry=saved, image=f"team/api:{i}", created_at=now - timedelta(minutes=i))
    url = reverse("registries:detail", args=[saved.pk])
    first, second = _text(admin_client.get(url)), _text(admin_client.get(url + "?page=2"))
    assert first.count("<code>team/api:") == 20 and "team/api:0<" in first and "Page 1 of 2" in first
    assert second.count("<code>team/api:") == 5 and "team/api:24<" in second


# --- who may do what ------------------------------------------------------------------


def _write_calls(registry):
    return {
        "create": (
            reverse("registries:create"),
            _other_form("http://127.0.0.1:9/x", "u", "p-123456", skip_validation="on"),
        ),
        "edit": (
            reverse("registries:edit", args=[registry.pk]),
            {"provider": "other", "other_endpoint": registry.endpoint, "other_username": "robot", "name": "renamed"},
        ),
        "delete": (reverse("registries:delete", args=[registry.pk]), {}),
        "test": (reverse("registries:test", args=[registry.pk]), {"image": "team/api:1.0.0"}),
    }


@pytest.mark.parametrize("who", ["admin", "developer"])
@pytest.mark.parametrize("action", ["create", "edit", "delete", "test"])
def test_admins_and_developers_may_change_registries(request, who, action, saved, queued):
    client = request.getfixturevalue(f"{who}_client")
    url, data = _write_calls(saved)[action]
    response = client.post(url, data)
    assert response.status_code == 302, _text(response)


@pytest.mark.parametrize("action", ["create", "edit", "delete", "test"])
def test_a_viewer_gets_403_on_every_post(viewer_client, action, saved, queued):
    url, data = _write_calls(saved)[action]
    assert viewer_client.post(url, data).status_code == 403
    assert viewer_client.post(url, data, **HTMX).status_code == 403
    assert ExternalRegistry.objects.get(pk=saved.pk).name == "mirror" and queued == []


def test_a_viewer_sees_registries_and_tests_without_any_button(viewer_client, saved):
    test = RegistryTest.objects.create(registry=saved, image="team/api:1.0.0")
    pages = [
        reverse("registries:image-list"),
        reverse("registries:detail", args=[saved.pk]),
        reverse("registries:test-result", args=[test.pk]),
    ]
    for url in pages:
        response = viewer_client.get(url)
        body = _text(response)
        assert response.status_code == 200 and "mirror" in body
        for button in (
            "Add external registry",
            "/edit/",
            "/delete/",
            "Test with image",
            'method="post" action="/images',
        ):
            assert button not in body, (url, button)
    assert viewer_client.get(reverse("registries:create")).status_code == 403
    assert viewer_client.get(reverse("registries:edit", args=[saved.pk])).status_code == 403


def test_an_outsider_gets_404_for_every_registry_page(outsider_client, saved, queued):
    test = RegistryTest.objects.create(registry=saved, image="team/api:1.0.0")
    gets = [
        reverse("registries:detail", args=[saved.pk]),
        reverse("registries:edit", args=[saved.pk]),
        reverse("registries:delete", args=[saved.pk]),
        reverse("registries:test", args=[saved.pk]),
        reverse("registries:test-result", args=[test.pk]),
    ]
    for url in gets:
        assert outsider_client.get(url).status_code == 404, url
        assert outsider_client.get(url, **HTMX).status_code == 404, url
    for url, data in list(_write_calls(saved).values())[1:]:
        assert outsider_client.post(url, data).status_code == 404, url
    assert "http://127.0.0.1:9/team" not in _text(outsider_client.get(reverse("registries:image-list")))
    saved.refresh_from_db()
    assert saved.name == "mirror" and RegistryTest.objects.count() == 1 and queued == []


# --- the secret stays write-only ---------------------------------------------------------


def test_the_stored_secret_never_appears_in_any_page(admin_client, viewer_client, saved, queued):
    admin_client.post(reverse("registries:test", args=[saved.pk]), {"image": "team/api:1.0.0"})
    test = RegistryTest.objects.get()
    urls = [
        reverse("registries:image-list"),
        reverse("registries:create"),
        reverse("registries:detail", args=[saved.pk]),
        reverse("registries:edit", args=[saved.pk]),
        reverse("registries:delete", args=[saved.pk]),
        reverse("registries:test-result", args=[test.pk]),
    ]
    bodies = [_text(client.get(url)) for url in urls for client in (admin_client, viewer_client)]
    bodies.append(_text(admin_client.get(urls[-1], **HTMX)))
    # A failed edit and a failed add render the form again: the typed secret is not echoed either.
    bodies.append(
        _text(admin_client.post(urls[3], {"provider": "other", "other_password": SECRET, "name": "Bad Name"}))
    )
    bodies.append(_text(admin_client.post(urls[1], _other_form("", "u", SECRET), **HTMX)))
    saved.refresh_from_db()
    ciphertext_part = saved.secret.split(":")[-1][:24]
    for body in bodies:
        assert SECRET not in body and ciphertext_part not in body
    detail, edit = bodies[4], bodies[6]
    assert "<dt>Secret</dt><dd>set," in detail and "secret set" in edit
