"""The external-registry and registry-test REST API: input rules per provider, write-only secrets,
re-entering the secret (C9), tests that cannot be redirected, a broker that is down, and who may do what."""

from __future__ import annotations

import json
import re
import time
from functools import cache

import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from rest_framework.test import APIClient

from accounts.models import AuditEvent, TokenAccess
from portal.celery import app as celery_app
from registries import providers, services
from registries.models import CheckStatus, ExternalRegistry, Health, RegistryTest
from tests import factories
from tests.realparts.cloud import canary, canary_aws_secret

pytestmark = pytest.mark.django_db

URL = "/api/v1/external-registries/"
ECR_ENDPOINT = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
# Every field a registry response has; none of them is a secret (C1: enumerate them all).
RESPONSE_FIELDS = {
    "id", "name", "provider", "endpoint", "username", "region", "realm_host", "all_apps", "apps", "insecure",
    "has_secret", "secret_updated_at", "health", "health_label", "health_reason", "last_checked_at",
    "last_image_result", "last_good_image", "credentials_changed_at", "token_expires_at", "rate_limit", "created_at", "updated_at",
}  # fmt: skip


# --- helpers -----------------------------------------------------------------------------


@cache
def _private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def sa_key(**overrides) -> dict:
    """A service-account JSON key with a real RSA key (never sent anywhere: saved with skip_validation)."""
    info = {
        "type": "service_account",
        "project_id": "acme-project",
        "private_key_id": canary(),
        "private_key": _private_key_pem(),
        "client_email": "puller@acme-project.iam.gserviceaccount.com",
        "client_id": "101",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    info.update(overrides)
    return info


def provider_bodies() -> dict[str, dict]:
    """One create body per provider, a canary in its secret field; nothing upstream is reachable."""
    return {
        "dockerhub": {"provider": "dockerhub", "username": "acme", "token": canary()},
        "ecr": {
            "provider": "ecr",
            "endpoint": ECR_ENDPOINT,
            "username": ACCESS_KEY_ID,
            "secret_access_key": canary_aws_secret(),
        },
        "gcr": {"provider": "gcr", "endpoint": "gcr.io/acme-project", "service_account_key": json.dumps(sa_key())},
        "gar": {"provider": "gar", "endpoint": "us-central1-docker.pkg.dev/acme/images", "token": canary()},
        "ghcr": {"provider": "ghcr", "username": "acme-bot", "token": canary()},
        "quay": {"provider": "quay", "username": "acme+robot", "password": canary()},
        "other": {
            "provider": "other",
            "endpoint": "registry.example.com/acme",
            "username": "acme",
            "password": canary(),
        },
    }


def create(client, body: dict, *, skip: bool = True):
    return client.post(URL, {**body, "skip_validation": skip}, format="json")


def assert_invalid(response, field: str) -> dict:
    """400 in the API's error shape, naming `field`."""
    assert response.status_code == 400, response.content[:500]
    body = response.json()
    assert body["code"] == "invalid"
    assert field in body["errors"], body
    assert body["message"].startswith(f"{field}: "), body
    return body


@pytest.fixture(autouse=True)
def _tasks_to_a_private_queue(private_queue):
    """Every test here enqueues to a queue of its own (tests/celery_worker.py), never run by a worker."""


@pytest.fixture
def broker_down(monkeypatch):
    """Points the already-configured Celery app at a port nothing listens on.

    Celery reads CELERY_BROKER_URL from the environment before its own config, and caches its
    connection and producer pools, so all three are replaced (and restored afterwards).
    """
    url = "redis://127.0.0.1:1/0"
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    monkeypatch.setitem(celery_app.conf, "broker_url", url)
    monkeypatch.setattr(celery_app, "_pool", None)
    monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)


@pytest.fixture
def registry(actor):
    """An `other` registry of team Acme with a canary password, saved without contacting it."""
    password = canary()
    saved = services.registry_create(
        actor=actor,
        provider="other",
        endpoint="registry.example.com",
        username="acme",
        password=password,
        skip_validation=True,
    )
    saved.canary = password
    return saved


# --- create, per provider ------------------------------------------------------------------


@pytest.mark.parametrize("provider", list(provider_bodies()))
def test_each_provider_is_saved_with_its_secret_encrypted_and_never_returned(admin_api, provider):
    body = provider_bodies()[provider]
    secret_field = next(f for f in providers.SECRET_INPUTS if f in body)
    response = create(admin_api, body)
    assert response.status_code == 201, response.content
    data = response.json()
    assert set(data) == RESPONSE_FIELDS
    assert data["has_secret"] is True and data["provider"] == provider
    assert body[secret_field] not in response.content.decode()
    registry = ExternalRegistry.objects.get(pk=data["id"])
    assert body[secret_field] not in registry.secret
    stored = services.registry_secret(registry)
    if provider == "gcr":
        assert json.loads(stored["service_account_key"]) == json.loads(body["service_account_key"])
    else:
        assert body[secret_field] in stored.values()


def test_provider_defaults_and_derived_fields(admin_api):
    bodies = provider_bodies()
    results = {p: create(admin_api, b).json() for p, b in bodies.items()}
    assert (results["dockerhub"]["endpoint"], results["dockerhub"]["name"]) == ("index.docker.io", "dockerhub")
    assert (results["ecr"]["endpoint"], results["ecr"]["region"]) == (ECR_ENDPOINT, "us-east-1")
    assert results["gcr"]["username"] == "puller@acme-project.iam.gserviceaccount.com"
    assert results["gar"]["username"] == "oauth2accesstoken"
    assert (results["ghcr"]["endpoint"], results["quay"]["endpoint"]) == ("ghcr.io", "quay.io")
    assert results["other"]["name"] == "registry-example-com-acme"


def test_list_and_detail_use_the_same_fields_and_hide_every_secret(admin_api):
    bodies = provider_bodies()
    for body in bodies.values():
        assert create(admin_api, body).status_code == 201
    listing = admin_api.get(URL)
    assert listing.status_code == 200 and listing.json()["count"] == len(bodies)
    texts = [listing.content.decode()]
    for item in listing.json()["results"]:
        assert set(item) == RESPONSE_FIELDS
        detail = admin_api.get(f"{URL}{item['id']}/")
        assert detail.json() == item
        texts.append(detail.content.decode())
    secrets = [b[f] for b in bodies.values() for f in providers.SECRET_INPUTS if f in b]
    for text in texts:
        assert not [s for s in secrets if s in text]


# --- validation: specific field errors, no echo, nothing stored ------------------------------

INVALID = {
    "unknown provider": ({"provider": "gitlab", "username": "u", "password": "p"}, "provider"),
    "dockerhub without password or token": ({"provider": "dockerhub", "username": "acme"}, "password"),
    "dockerhub with password and token": (
        {"provider": "dockerhub", "username": "acme", "password": "CANARY-pw-1", "token": "CANARY-tok-1"},
        "token",
    ),
    "dockerhub without username": ({"provider": "dockerhub", "token": "CANARY-tok-2"}, "username"),
    "dockerhub on another host": (
        {"provider": "dockerhub", "endpoint": "hub.example.com", "username": "acme", "token": "t"},
        "endpoint",
    ),
    "ecr endpoint not an ECR host": (
        {
            "provider": "ecr",
            "endpoint": "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.test",
            "username": ACCESS_KEY_ID,
            "secret_access_key": "a" * 40,
        },
        "endpoint",
    ),
    "ecr region with a shell command": (
        {
            "provider": "ecr",
            "endpoint": ECR_ENDPOINT,
            "region": "us-east-1; rm -rf",
            "username": ACCESS_KEY_ID,
            "secret_access_key": "a" * 40,
        },
        "region",
    ),
    "ecr region for a custom host with a shell command": (
        {
            "provider": "ecr",
            "endpoint": "ecr-mirror.example.com",
            "region": "us-east-1; rm -rf /",
            "username": ACCESS_KEY_ID,
            "secret_access_key": "a" * 40,
        },
        "region",
    ),
    "ecr secret of 39 characters": (
        {"provider": "ecr", "endpoint": ECR_ENDPOINT, "username": ACCESS_KEY_ID, "secret_access_key": "C" * 39},
        "secret_access_key",
    ),
    "ecr secret with characters AWS never uses": (
        {"provider": "ecr", "endpoint": ECR_ENDPOINT, "username": ACCESS_KEY_ID, "secret_access_key": "C-" * 20},
        "secret_access_key",
    ),
    "ecr temporary ASIA key": (
        {
            "provider": "ecr",
            "endpoint": ECR_ENDPOINT,
            "username": "ASIAIOSFODNN7EXAMPLE",
            "secret_access_key": "a" * 40,
        },
        "username",
    ),
    "gcr key that is not JSON": (
        {"provider": "gcr", "endpoint": "gcr.io", "service_account_key": "CANARY-not-json {"},
        "service_account_key",
    ),
    "gcr key that is a JSON array": (
        {"provider": "gcr", "endpoint": "gcr.io", "service_account_key": "[1, 2]"},
        "service_account_key",
    ),
    "gcr key nested 30000 deep": (
        {"provider": "gcr", "endpoint": "gcr.io", "service_account_key": "[" * 30000},
        "service_account_key",
    ),
    "gcr with a token instead of a key": ({"provider": "gcr", "endpoint": "gcr.io", "token": "CANARY-tok-3"}, "token"),
    "gcr endpoint not a Google host": (
        {"provider": "gcr", "endpoint": "gcr.example.com", "service_account_key": "{}"},
        "endpoint",
    ),
    "control characters in the username": (
        {"provider": "other", "endpoint": "r.example.com", "username": "u\r\nX-Evil: 1", "password": "p"},
        "username",
    ),
    "control characters in the password": (
        {"provider": "other", "endpoint": "r.example.com", "username": "u", "password": "CANARY-p\r\nX-Evil: 1"},
        "password",
    ),
    "a newline in a token": (
        {"provider": "ghcr", "username": "u", "token": "CANARY-t\nX-Evil: 1"},
        "token",
    ),
    "control characters in the endpoint": (
        {"provider": "other", "endpoint": "r.example.com\r\nX-Evil: 1", "username": "u", "password": "p"},
        "endpoint",
    ),
    "a zero-width joiner in the username": (
        {"provider": "other", "endpoint": "r.example.com", "username": "ac\u200dme", "password": "p"},
        "username",
    ),
    "a Cyrillic homoglyph in the name": (
        {"provider": "other", "name": "\u0430cme", "endpoint": "r.example.com", "username": "u", "password": "p"},
        "name",
    ),
    "fullwidth letters in the name": (
        {"provider": "other", "name": "\uff41cme", "endpoint": "r.example.com", "username": "u", "password": "p"},
        "name",
    ),
    "a Cyrillic homoglyph in the endpoint": (
        {"provider": "other", "endpoint": "r\u0435gistry.example.com", "username": "u", "password": "p"},
        "endpoint",
    ),
    "an endpoint with user info": (
        {"provider": "other", "endpoint": "https://u:p@r.example.com", "username": "u", "password": "p"},
        "endpoint",
    ),
    "an endpoint of another scheme": (
        {"provider": "other", "endpoint": "ftp://r.example.com", "username": "u", "password": "p"},
        "endpoint",
    ),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_input_names_the_field_echoes_nothing_and_stores_nothing(admin_api, case):
    body, field = INVALID[case]
    response = create(admin_api, body)
    assert_invalid(response, field)
    text = response.content.decode()
    for value in body.values():
        if "CANARY" in value:
            assert value not in text and value.split("\n")[0] not in text
    assert "X-Evil" not in text
    assert not ExternalRegistry.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="registry.").exists()


GCR_KEY_PROBLEMS = {
    "missing private_key": ({"private_key": None}, "private_key"),
    "missing client_email": ({"client_email": None}, "client_email"),
    "wrong type": ({"type": "authorized_user"}, "type"),
    "private_key is not PEM": ({"private_key": "CANARY"}, "private_key"),
    "private_key is PEM armour around garbage": (
        {"private_key": "-----BEGIN PRIVATE KEY-----\nCANARY\n-----END PRIVATE KEY-----\n"},
        "private_key",
    ),
    "private_key is not a string": ({"private_key": 42}, "private_key"),
    "token_uri with user info": ({"token_uri": "https://u:CANARY@oauth2.googleapis.com/token"}, "token_uri"),
}


@pytest.mark.parametrize("case", list(GCR_KEY_PROBLEMS))
def test_a_malformed_service_account_key_is_refused_without_echoing_it(admin_api, case):
    """C5/I8: the error names the JSON field and never repeats the key (the canary stands in for it)."""
    secret = canary()
    changes, named = GCR_KEY_PROBLEMS[case]
    info = sa_key()
    for key, value in changes.items():
        if value is None:
            info.pop(key)
        else:
            info[key] = value.replace("CANARY", secret) if isinstance(value, str) else value
    response = create(admin_api, {"provider": "gcr", "endpoint": "gcr.io", "service_account_key": json.dumps(info)})
    body = assert_invalid(response, "service_account_key")
    assert f'"{named}"' in body["message"]
    text = response.content.decode()
    assert secret not in text and info["private_key_id"] not in text
    assert "BEGIN" not in text
    assert not ExternalRegistry.objects.exists()


def test_a_five_megabyte_request_gets_a_clean_json_error(admin_api):
    """I8/I10: DATA_UPLOAD_MAX_MEMORY_SIZE refuses the body; the API still answers in its JSON shape."""
    secret = canary()
    big = json.dumps({**sa_key(private_key_id=secret), "padding": "x" * (5 * 1024 * 1024)})
    assert len(big) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = admin_api.post(URL, {"provider": "gcr", "endpoint": "gcr.io", "service_account_key": big}, format="json")
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "too_large" and "MiB" in body["message"]
    assert secret not in response.content.decode()
    # Only release uploads read multipart; here a form is refused unread, in the same shape.
    response = admin_api.post(
        URL, {"provider": "gcr", "endpoint": "gcr.io", "service_account_key": big}, format="multipart"
    )
    assert response.status_code == 415, response.content[:300]
    assert response.json()["code"] == "unsupported_media_type"
    assert secret not in response.content.decode()
    assert not ExternalRegistry.objects.exists()


def test_a_secret_over_the_field_limit_is_refused_by_name(admin_api):
    response = create(
        admin_api, {"provider": "other", "endpoint": "r.example.com", "username": "u", "password": "C" * 80_000}
    )
    assert_invalid(response, "password")
    assert "C" * 100 not in response.content.decode()


def test_names_and_endpoints_are_unique_per_team_only(admin_api, outsider_api):
    body = {"provider": "other", "endpoint": "registry.example.com", "username": "u", "password": "p"}
    assert create(admin_api, {**body, "name": "main"}).status_code == 201
    assert_invalid(create(admin_api, {**body, "name": "second"}), "endpoint")
    assert_invalid(create(admin_api, {**body, "name": "main", "endpoint": "other.example.com"}), "name")
    assert ExternalRegistry.objects.count() == 1
    # Another team may connect the same registry under the same name.
    assert create(outsider_api, {**body, "name": "main"}).status_code == 201
    assert ExternalRegistry.objects.count() == 2


def test_apps_are_limited_to_the_teams_own(admin_api, app, other_team):
    factories.make_app(other_team, "their-app")
    body = {"provider": "other", "endpoint": "registry.example.com", "username": "u", "password": "p"}
    body_error = assert_invalid(create(admin_api, {**body, "apps": ["their-app"]}), "apps")
    assert "their-app" in body_error["message"]
    assert_invalid(create(admin_api, {**body, "apps": [app.slug, "their-app"]}), "apps")
    assert not ExternalRegistry.objects.exists()
    saved = create(admin_api, {**body, "apps": [app.slug]}).json()
    assert (saved["apps"], saved["all_apps"]) == ([app.slug], False)
    patched = admin_api.patch(f"{URL}{saved['id']}/", {"apps": ["their-app"]}, format="json")
    assert_invalid(patched, "apps")
    assert list(ExternalRegistry.objects.get().apps.values_list("slug", flat=True)) == [app.slug]


# --- mass assignment (A3) --------------------------------------------------------------------


def test_mass_assignment_is_ignored_on_create_and_update(admin_api, team, other_team):
    password = canary()
    smuggled = {
        "team": other_team.pk,
        "team_id": other_team.pk,
        "health": "healthy",
        "health_reason": "fine",
        "secret": "v1:k:forged",
        "minted_token": "forged-token",
        "has_secret": False,
        "insecure": True,
        "id": 999_999,
        "created_by": 1,
        "last_good_image": "evil/image:1",
    }
    body = {"provider": "other", "endpoint": "registry.example.com", "username": "u", "password": password}
    response = create(admin_api, {**body, **smuggled})
    assert response.status_code == 201, response.content
    registry = ExternalRegistry.objects.get()
    assert registry.team == team and registry.pk != 999_999
    assert (registry.health, registry.minted_token, registry.last_good_image) == (Health.UNKNOWN, "", "")
    assert not registry.insecure and registry.endpoint == "registry.example.com"
    assert services.registry_secret(registry) == {"password": password}

    before = ExternalRegistry.objects.values().get(pk=registry.pk)
    response = admin_api.patch(f"{URL}{registry.pk}/", {**smuggled, "provider": "ecr"}, format="json")
    assert response.status_code == 200, response.content
    after = ExternalRegistry.objects.values().get(pk=registry.pk)
    assert {k: v for k, v in after.items() if k != "updated_at"} == {
        k: v for k, v in before.items() if k != "updated_at"
    }


# --- update: the secret is kept, or must be entered again (C9) --------------------------------


def test_patch_with_a_blank_secret_keeps_the_stored_one(admin_api, registry):
    for body in ({"password": "", "username": "renamed"}, {"name": "renamed-registry"}, {}):
        response = admin_api.patch(f"{URL}{registry.pk}/", body, format="json")
        assert response.status_code == 200, response.content
        assert registry.canary not in response.content.decode()
    registry.refresh_from_db()
    assert (registry.username, registry.name) == ("renamed", "renamed-registry")
    assert services.registry_secret(registry) == {"password": registry.canary}


def test_patch_with_a_new_secret_replaces_it_and_audits_without_it(admin_api, registry):
    new = canary()
    response = admin_api.patch(f"{URL}{registry.pk}/", {"password": new, "skip_validation": True}, format="json")
    assert response.status_code == 200 and new not in response.content.decode()
    registry.refresh_from_db()
    assert services.registry_secret(registry) == {"password": new}
    event = AuditEvent.objects.filter(action="registry.update").latest("created_at")
    assert event.detail["secret_changed"] is True
    assert new not in json.dumps(event.detail) and registry.canary not in json.dumps(event.detail)


def test_changing_the_endpoint_host_requires_the_secret_again(admin_api, registry):
    url = f"{URL}{registry.pk}/"
    body = assert_invalid(admin_api.patch(url, {"endpoint": "attacker.example.net"}, format="json"), "password")
    assert "password" in body["message"].lower()
    registry.refresh_from_db()
    assert registry.endpoint == "registry.example.com"
    assert services.registry_secret(registry) == {"password": registry.canary}
    # A new path prefix on the same host keeps the secret.
    assert admin_api.patch(url, {"endpoint": "registry.example.com/team"}, format="json").status_code == 200
    # With the secret entered again the host may change.
    new = canary()
    moved = admin_api.patch(
        url, {"endpoint": "mirror.example.net", "password": new, "skip_validation": True}, format="json"
    )
    assert moved.status_code == 200, moved.content
    registry.refresh_from_db()
    assert registry.endpoint == "mirror.example.net"
    assert services.registry_secret(registry) == {"password": new}


def test_turning_on_plain_http_requires_the_secret_and_is_audited(admin_api, registry):
    url = f"{URL}{registry.pk}/"
    assert_invalid(admin_api.patch(url, {"endpoint": "http://registry.example.com"}, format="json"), "password")
    registry.refresh_from_db()
    assert not registry.insecure
    assert not AuditEvent.objects.filter(action="registry.insecure_http").exists()

    response = admin_api.patch(
        url, {"endpoint": "http://registry.example.com", "password": canary(), "skip_validation": True}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["insecure"] is True
    event = AuditEvent.objects.get(action="registry.insecure_http")
    assert (event.target, event.detail["endpoint"], event.actor) == (
        registry.name,
        "http://registry.example.com",
        "admin@acme.test",
    )


def test_creating_a_plain_http_registry_is_audited(admin_api):
    body = {"provider": "other", "endpoint": "http://registry.example.com", "username": "u", "password": "p"}
    saved = create(admin_api, body).json()
    assert saved["insecure"] is True
    assert AuditEvent.objects.filter(action="registry.insecure_http", target=saved["name"]).count() == 1


# --- tests of a stored registry --------------------------------------------------------------


def test_a_test_is_queued_and_its_status_readable(admin_api, registry, private_queue):
    response = admin_api.post(f"{URL}{registry.pk}/test/", {"image": "acme/api:1.0.0"}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["done"], body["registry"]) == ("queued", False, registry.name)
    assert body["url"].rstrip("/").endswith(f"/api/v1/registry-tests/{body['id']}")
    assert admin_api.get(f"/api/v1/registry-tests/{body['id']}/").json()["image"] == "acme/api:1.0.0"
    history = admin_api.get(f"{URL}{registry.pk}/tests/").json()
    assert [t["id"] for t in history["results"]] == [body["id"]]
    message = redis.Redis.from_url(settings.CELERY_BROKER_URL).lrange(private_queue, 0, -1)
    assert len(message) == 1 and json.loads(message[0])["headers"]["argsrepr"] == f"({body['id']},)"


@pytest.mark.parametrize(
    "extra",
    [
        {"url": "ATTACKER"},
        {"insecure": True},
        {"endpoint": "ATTACKER"},
        {"username": "attacker"},
        {"password": "x"},
        {"url": "ATTACKER", "insecure": True, "endpoint": "ATTACKER", "username": "attacker"},
    ],
)
@pytest.mark.slow
def test_a_test_request_cannot_override_the_stored_registry(admin_api, registry, loopback_server, extra):
    """C9 (Harbor PR #23463): only `image` is accepted; the attacker's listener hears nothing."""
    attacker = loopback_server()
    body = {k: (v.replace("ATTACKER", attacker.url) if isinstance(v, str) else v) for k, v in extra.items()}
    response = admin_api.post(f"{URL}{registry.pk}/test/", {"image": "acme/api:1.0.0", **body}, format="json")
    assert response.status_code == 400, response.content
    data = response.json()
    assert "override_not_allowed" in data["message"]
    assert sorted(extra)[0] in data["errors"]
    assert not RegistryTest.objects.exists()
    time.sleep(0.2)
    assert attacker.requests == []


def test_a_test_needs_a_valid_image(admin_api, registry):
    url = f"{URL}{registry.pk}/test/"
    assert_invalid(admin_api.post(url, {}, format="json"), "image")
    assert_invalid(admin_api.post(url, {"image": "Acme/API:1"}, format="json"), "image")
    assert_invalid(admin_api.post(url, {"image": "acme/api:v1\r\nX-Evil: 1"}, format="json"), "image")
    assert not RegistryTest.objects.exists()


def test_a_broker_that_is_down_gives_503_within_5_s_and_marks_the_test_failed(admin_api, registry, broker_down):
    started = time.monotonic()
    response = admin_api.post(f"{URL}{registry.pk}/test/", {"image": "acme/api:1.0.0"}, format="json")
    elapsed = time.monotonic() - started
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "queue_unavailable"
    assert response["Retry-After"]
    assert elapsed < 5
    test = RegistryTest.objects.get()
    assert (test.status, test.category) == (CheckStatus.FAILED, "queue_unavailable")
    assert test.finished_at is not None
    registry.refresh_from_db()
    assert registry.health == Health.UNKNOWN  # a queue outage says nothing about the registry


# --- S10: connection tests are rate-limited per team -------------------------------------------


def _at_the_start_of_a_window(window: int) -> None:
    """Wait until a fresh window begins if this one ends too soon, so the test never straddles two."""
    left = window - time.time() % window
    if left < min(30, window):
        time.sleep(left + 0.05)


def test_the_21st_test_in_ten_minutes_is_refused_with_429_naming_the_limit_and_another_team_is_unaffected(
    admin_api, registry, outsider_api, outsider_actor, private_queue
):
    assert (settings.REGISTRY_TEST_RATE, settings.REGISTRY_TEST_RATE_WINDOW) == (20, 600)  # the defaults
    _at_the_start_of_a_window(600)
    url = f"{URL}{registry.pk}/test/"
    for _ in range(20):
        assert admin_api.post(url, {"image": "acme/api:1.0.0"}, format="json").status_code == 202
    refused = admin_api.post(url, {"image": "acme/api:1.0.0"}, format="json")
    assert refused.status_code == 429, refused.content
    body = refused.json()
    assert body["code"] == "rate_limited"
    assert body["message"].startswith("Your team may run 20 connection tests every 10 minutes and has run them all;")
    retry_after = int(refused["Retry-After"])
    assert 0 < retry_after <= 600
    assert re.search(r"try again in \d+ (minutes?|seconds?)\.$", body["message"]), body["message"]
    assert RegistryTest.objects.count() == 20  # the refused one left no row and queued nothing
    assert redis.Redis.from_url(settings.CELERY_BROKER_URL).llen(private_queue) == 20

    theirs = services.registry_create(
        actor=outsider_actor, provider="other", endpoint="registry.example.org",
        username="other", password=canary(), skip_validation=True,
    )  # fmt: skip
    response = outsider_api.post(f"{URL}{theirs.pk}/test/", {"image": "acme/api:1.0.0"}, format="json")
    assert response.status_code == 202, response.content


@pytest.fixture(params=["redis", "file", "locmem"])
def cache_backend(request, settings, tmp_path):
    """The limit's cache: Redis (as configured for the tests), the file cache (`make run`), memory."""
    if request.param == "file":
        settings.CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path)}
        }
    elif request.param == "locmem":
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    return request.param


def test_the_test_limit_window_ends_on_every_cache_backend(admin_api, registry, settings, cache_backend, private_queue):
    settings.REGISTRY_TEST_RATE, settings.REGISTRY_TEST_RATE_WINDOW = 1, 2
    url = f"{URL}{registry.pk}/test/"
    _at_the_start_of_a_window(2)
    assert admin_api.post(url, {"image": "acme/api:1.0.0"}, format="json").status_code == 202
    refused = admin_api.post(url, {"image": "acme/api:1.0.0"}, format="json")
    assert refused.status_code == 429 and re.search(r"try again in [12] seconds?\.$", refused.json()["message"])
    time.sleep(int(refused["Retry-After"]) + 0.05)
    assert admin_api.post(url, {"image": "acme/api:1.0.0"}, format="json").status_code == 202


# --- who may do what (A1) --------------------------------------------------------------------

WRITERS = ["admin", "developer", "service-rw"]
READERS = ["viewer", "service-ro"]
WRITES = ["create", "update", "delete", "test"]


def _client_for(kind: str, team, request) -> APIClient:
    if kind in ("admin", "developer", "viewer"):
        return request.getfixturevalue(f"{kind}_api")
    access = TokenAccess.READ_WRITE if kind == "service-rw" else TokenAccess.READ_ONLY
    return factories.bearer_client(factories.service_token(team, access=access))


def _write(client, action: str, registry):
    detail = f"{URL}{registry.pk}/"
    return {
        "create": lambda: create(
            client, {"provider": "other", "endpoint": "new.example.com", "username": "u", "password": "p"}
        ),
        "update": lambda: client.patch(detail, {"username": "changed"}, format="json"),
        "delete": lambda: client.delete(detail),
        "test": lambda: client.post(f"{detail}test/", {"image": "acme/api:1.0.0"}, format="json"),
    }[action]()


def _happened(action: str, registry) -> bool:
    return {
        "create": lambda: ExternalRegistry.objects.filter(endpoint="new.example.com").exists(),
        "update": lambda: ExternalRegistry.objects.filter(pk=registry.pk, username="changed").exists(),
        "delete": lambda: not ExternalRegistry.objects.filter(pk=registry.pk).exists(),
        "test": lambda: RegistryTest.objects.filter(registry_id=registry.pk).exists(),
    }[action]()


@pytest.mark.parametrize("action", WRITES)
@pytest.mark.parametrize("kind", WRITERS + READERS)
def test_write_permissions_follow_the_role(kind, action, team, registry, request):
    response = _write(_client_for(kind, team, request), action, registry)
    if kind in WRITERS:
        assert response.status_code in (201, 200, 202, 204), response.content
        assert _happened(action, registry)
    else:
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "permission_denied"
        assert not _happened(action, registry)


@pytest.mark.parametrize("kind", WRITERS + READERS)
def test_every_member_may_read(kind, team, registry, request):
    client = _client_for(kind, team, request)
    test = RegistryTest.objects.create(registry=registry, image="acme/api:1.0.0")
    assert client.get(URL).json()["count"] == 1
    assert client.get(f"{URL}{registry.pk}/").status_code == 200
    assert client.get(f"{URL}{registry.pk}/tests/").json()["count"] == 1
    assert client.get(f"/api/v1/registry-tests/{test.pk}/").status_code == 200


@pytest.mark.parametrize("kind", ["outsider", "outsider-service"])
def test_another_team_gets_404_for_every_object_route_and_an_empty_list(kind, outsider_api, other_team, registry):
    client = outsider_api if kind == "outsider" else factories.bearer_client(factories.service_token(other_team))
    test = RegistryTest.objects.create(registry=registry, image="acme/api:1.0.0")
    detail = f"{URL}{registry.pk}/"
    calls = {
        "detail": lambda: client.get(detail),
        "patch": lambda: client.patch(detail, {"username": "stolen", "password": "x"}, format="json"),
        "delete": lambda: client.delete(detail),
        "test": lambda: client.post(f"{detail}test/", {"image": "acme/api:1.0.0"}, format="json"),
        "tests": lambda: client.get(f"{detail}tests/"),
        "registry-test": lambda: client.get(f"/api/v1/registry-tests/{test.pk}/"),
    }
    for name, call in calls.items():
        response = call()
        assert response.status_code == 404, (name, response.content)
        assert response.json()["code"] == "not_found"
    listing = client.get(URL).json()
    assert (listing["count"], listing["results"]) == (0, [])
    registry.refresh_from_db()
    assert registry.username == "acme"
    assert RegistryTest.objects.filter(registry=registry).count() == 1


def test_anonymous_callers_get_401_everywhere(registry):
    client = APIClient()
    test = RegistryTest.objects.create(registry=registry, image="acme/api:1.0.0")
    detail = f"{URL}{registry.pk}/"
    calls = [
        client.get(URL),
        client.post(URL, {"provider": "other"}, format="json"),
        client.get(detail),
        client.patch(detail, {"username": "x"}, format="json"),
        client.delete(detail),
        client.post(f"{detail}test/", {"image": "acme/api:1.0.0"}, format="json"),
        client.get(f"{detail}tests/"),
        client.get(f"/api/v1/registry-tests/{test.pk}/"),
    ]
    for response in calls:
        assert response.status_code == 401, (response.request["PATH_INFO"], response.content)
        assert response.json()["code"] == "not_authenticated"
    assert ExternalRegistry.objects.filter(pk=registry.pk, username="acme").exists()
