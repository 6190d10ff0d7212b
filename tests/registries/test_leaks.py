"""The canary leak sweep (SECURITY-TESTS C1–C5): every stored secret is a unique canary, and every
place a secret could surface is searched for it raw and base64-encoded."""

from __future__ import annotations

import base64
import functools
import html
import json
import logging
import subprocess
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.views.debug import ExceptionReporter
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from portal import crypto
from registries import services
from registries.clients import oci
from registries.models import CheckStatus, ExternalRegistry, RegistryTest
from registries.tasks import registry_test_task
from tests import factories
from tests.realparts.cloud import canary, canary_aws_secret
from tests.realparts.loopback import Reply

URL = "/api/v1/external-registries/"


@dataclass(frozen=True)
class Secret:
    """A canary and the encodings it could hide in: base64 of itself, and of `user:secret` (Basic auth)."""

    label: str
    value: str
    username: str | None = None

    def forms(self) -> dict[str, str]:
        raw = self.value.encode()
        # The last base64 group depends on what follows the value, so it is left out.
        forms = {
            "raw": self.value,
            "base64": base64.b64encode(raw).decode()[:-4],
            "base64url": base64.urlsafe_b64encode(raw).decode()[:-4],
        }
        if self.username is not None:
            forms["basic"] = base64.b64encode(f"{self.username}:{self.value}".encode()).decode()
        return forms


def find_leaks(sinks: dict[str, str], secrets: list[Secret]) -> list[str]:
    return [
        f"{secret.label} ({form}) in {sink}"
        for sink, text in sinks.items()
        for secret in secrets
        for form, needle in secret.forms().items()
        if needle in text
    ]


def error_report(exc: BaseException, request=None, *, skip: int = 1) -> str:
    """What AdminEmailHandler (include_html) or the technical 500 page shows, unescaped.
    `skip` leaves out this test's own frames, whose locals hold the canaries by design."""
    tb = exc.__traceback__
    for _ in range(skip):
        tb = tb.tb_next
    reporter = ExceptionReporter(request, type(exc), exc, tb, is_email=True)
    return html.unescape(reporter.get_traceback_html()) + reporter.get_traceback_text()


def _broker_dump(queue: str) -> str:
    """The messages waiting in `queue` (bodies base64-decoded) and kombu's `unacked` hash."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    parts = []
    for raw in broker.lrange(queue, 0, -1):
        parts.append(raw.decode())
        message = json.loads(raw)
        parts.append(base64.b64decode(message["body"]).decode())
    for value in broker.hgetall("unacked").values():
        parts.append(value.decode(errors="replace"))
    broker.close()
    return "\n".join(parts)


def _pg_dump() -> str:
    db = connection.settings_dict
    result = subprocess.run(
        ["pg_dump", "-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432), "-U", "postgres", db["NAME"]],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def _log_text(records: list[logging.LogRecord]) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(r) + repr(getattr(r, "args", "")) for r in records)


# --- the sweep -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_no_canary_reaches_any_sink(
    admin,
    team,
    admin_api,
    admin_client,
    basic_registry,
    moto_ecr,
    ecr_basic_registry,
    service_account_key,
    gcr_token_registry,
    loopback_server,
    private_queue,
    monkeypatch,
    caplog,
):
    for name in ("", "httpx", "httpcore"):  # settings quiet httpx; the sweep wants everything
        caplog.set_level(logging.DEBUG, logger=name)
    sinks: dict[str, str] = {}
    secrets: list[Secret] = []

    def secret(label: str, value: str | None = None, username: str | None = None) -> str:
        value = value or canary()
        secrets.append(Secret(label, value, username))
        return value

    def keep(name: str, response) -> dict | None:
        sinks[name] = "\n".join(f"{k}: {v}" for k, v in response.items()) + "\n" + response.content.decode()
        return response.json() if response["Content-Type"] == "application/json" else None

    key = service_account_key(private_key_id=secret("gcr private_key_id"))
    secret("gcr private key body", key.secret_marker)
    no_tls = loopback_server()  # speaks plain HTTP to a TLS client
    hanging = loopback_server("127.0.0.2").on("*", Reply.hanging())
    bodies = {
        "dockerhub": {"provider": "dockerhub", "username": "acme", "token": secret("dockerhub token", None, "acme")},
        "ghcr": {"provider": "ghcr", "username": "acme-bot", "token": secret("ghcr token", None, "acme-bot")},
        "quay": {"provider": "quay", "username": "acme+robot", "password": secret("quay password", None, "acme+robot")},
        "ecr": {
            "provider": "ecr",
            "endpoint": ecr_basic_registry.endpoint,
            "region": "us-east-1",
            "username": "AKIAIOSFODNN7EXAMPLE",
            "secret_access_key": secret("ecr secret access key", canary_aws_secret(), "AKIAIOSFODNN7EXAMPLE"),
        },
        "gcr": {"provider": "gcr", "endpoint": gcr_token_registry.endpoint, "service_account_key": key.text},
        "wrong-password": {
            "provider": "other",
            "endpoint": basic_registry.endpoint,
            "username": basic_registry.username,
            "password": secret("other password (401)", None, basic_registry.username),
        },
        "tls": {
            "provider": "other",
            "endpoint": no_tls.netloc,
            "username": "tls-user",
            "password": secret("other password (tls)", None, "tls-user"),
        },
        "timeout": {
            "provider": "other",
            "endpoint": hanging.url,
            "username": "slow-user",
            "password": secret("other password (timeout)", None, "slow-user"),
        },
    }
    # Refused saves: the upstream says 401 (C5), and a service-account key that is not PEM.
    refused = {**bodies["wrong-password"], "password": secret("refused password", None, basic_registry.username)}
    assert keep("create response (401 upstream)", admin_api.post(URL, refused, format="json"))["code"] == "invalid"
    bad_key = json.dumps({**key.info, "private_key": secret("refused gcr private_key")})
    response = admin_api.post(
        URL, {"provider": "gcr", "endpoint": "gcr.io", "service_account_key": bad_key}, format="json"
    )
    assert keep("create response (bad gcr key)", response)["code"] == "invalid"

    ids = {}
    for name, body in bodies.items():
        validated = name in ("ecr", "gcr")  # mints against moto / the loopback Google endpoint
        response = admin_api.post(URL, {**body, "skip_validation": not validated}, format="json")
        assert response.status_code == 201, (name, response.content)
        ids[name] = keep(f"create response ({name})", response)["id"]

    new_token = secret("dockerhub token (updated)", None, "acme")
    response = admin_api.patch(
        f"{URL}{ids['dockerhub']}/", {"token": new_token, "skip_validation": True}, format="json"
    )
    keep("update response (new secret)", response)
    keep("update response (rename)", admin_api.patch(f"{URL}{ids['quay']}/", {"name": "quay-robot"}, format="json"))

    keep("list", admin_api.get(URL))
    keep("list (browsable API)", admin_api.get(URL, {"format": "api"}))
    keep("OPTIONS list", admin_api.options(URL))
    keep("schema", admin_api.get("/api/v1/schema/", {"format": "json"}))
    for name, pk in ids.items():
        keep(f"detail ({name})", admin_api.get(f"{URL}{pk}/"))
        keep(f"detail browsable ({name})", admin_api.get(f"{URL}{pk}/", {"format": "api"}))
        keep(f"OPTIONS detail ({name})", admin_api.options(f"{URL}{pk}/"))

    # Connection tests: queued through the API, the message read off the broker with no worker
    # running, then run as the worker would (a short deadline for the hanging upstream).
    images = {"ecr": "acme/api:1.0.0", "gcr": "acme/v2s2:1.0.0", "wrong-password": "acme/api:1.0.0"}
    images |= {"tls": "acme/api:1.0.0", "timeout": "acme/api:1.0.0"}
    tests = {}
    for name, image in images.items():
        response = admin_api.post(f"{URL}{ids[name]}/test/", {"image": image}, format="json")
        assert response.status_code == 202, response.content
        tests[name] = keep(f"test response ({name})", response)["id"]
    sinks["celery broker"] = _broker_dump(private_queue)
    assert sinks["celery broker"].count("registries.tasks.registry_test_task") == len(images)
    monkeypatch.setattr(oci, "check_image_sync", functools.partial(oci.check_image_sync, total_timeout=1.5))
    for name, test_id in tests.items():
        outcome = registry_test_task.apply(args=(test_id,))
        sinks[f"task result ({name})"] = repr(outcome.result) + repr(outcome.traceback)
        keep(f"registry-test detail ({name})", admin_api.get(f"/api/v1/registry-tests/{test_id}/"))
    outcome = {name: RegistryTest.objects.get(pk=pk) for name, pk in tests.items()}
    assert {name: (t.status, t.category) for name, t in outcome.items()} == {
        "ecr": (CheckStatus.SUCCEEDED, ""),
        "gcr": (CheckStatus.SUCCEEDED, ""),
        "wrong-password": (CheckStatus.FAILED, "unauthorized"),
        "tls": (CheckStatus.FAILED, "tls"),
        "timeout": (CheckStatus.FAILED, "timeout"),
    }
    keep("test history", admin_api.get(f"{URL}{ids['wrong-password']}/tests/"))

    admin_client.raise_request_exception = False  # the page is still being built: checked last
    images_page = admin_client.get("/images/")
    sinks["Images page"] = images_page.content.decode()

    # Django's error handling: an unexpected failure while saving, for a JSON and a form body.
    def failing_audit(**kwargs):
        raise RuntimeError("audit store unavailable")

    crashing = APIClient(raise_request_exception=False)
    crashing.credentials(HTTP_AUTHORIZATION=f"Bearer {factories.user_token(admin, team)}")
    crash = {"provider": "other", "endpoint": "crash.example.com", "username": "crash", "skip_validation": "true"}
    with monkeypatch.context() as patch:
        patch.setattr(services, "audit", failing_audit)
        for fmt in ("json", "form"):
            body = {**crash, "password": secret(f"password of a crashing save ({fmt})", None, "crash")}
            if fmt == "json":
                response = crashing.post(URL, body, format="json")
                assert response.status_code == 500
            else:  # the API reads JSON only (multipart on release uploads): a form body is refused unread
                response = crashing.post(URL, urlencode(body), content_type="application/x-www-form-urlencoded")
                assert response.status_code == 415
            sinks[f"{response.status_code} response ({fmt})"] = response.content.decode()
    crashes = [r for r in caplog.records if r.name == "django.request" and r.exc_info and r.request.path == URL]
    assert len(crashes) == 1
    for n, record in enumerate(crashes):
        reporter = ExceptionReporter(record.request, *record.exc_info, is_email=True)
        sinks[f"error report {n}"] = html.unescape(reporter.get_traceback_html()) + reporter.get_traceback_text()

    sinks["audit events"] = json.dumps(list(AuditEvent.objects.values()), default=str)
    sinks["registry tests"] = json.dumps(list(RegistryTest.objects.values()), default=str)
    sinks["registry rows"] = json.dumps(list(ExternalRegistry.objects.values()), default=str)
    sinks["pg_dump"] = _pg_dump()
    sinks["logs"] = _log_text(caplog.records) + caplog.text

    # The sinks are the real ones: the dump holds the rows, the logs the upstream calls.
    assert ExternalRegistry.objects.get(pk=ids["ecr"]).secret in sinks["pg_dump"]
    assert key.client_email in sinks["pg_dump"]
    assert "botocore" in sinks["logs"] and "httpx" in sinks["logs"]
    assert len(secrets) == 14
    assert find_leaks(sinks, secrets) == []
    assert images_page.status_code == 200
    assert "quay-robot" in sinks["Images page"]


# --- the sweep can fail ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db
def test_the_sweep_finds_a_canary_where_it_must_be(actor, loopback_server):
    """The decrypted secret in memory, and the Basic header the upstream received, do hold the canary."""
    upstream = loopback_server().on("/v2/", Reply.challenge("upstream", scheme="Basic"))
    password = Secret("password", canary(), "acme")
    registry = services.registry_create(
        actor=actor,
        provider="other",
        endpoint=upstream.url,
        username="acme",
        password=password.value,
        skip_validation=True,
    )
    test = RegistryTest.objects.create(registry=registry, image="acme/api:1.0.0")
    assert services.registry_test_run(test.pk).category == "unauthorized"
    sinks = {
        "memory": json.dumps(services.registry_secret(registry)),
        "upstream": "\n".join(r.headers.get("authorization", "") for r in upstream.requests),
        "encoded": base64.b64encode(password.value.encode()).decode(),
    }
    found = set(find_leaks(sinks, [password]))
    assert {"password (raw) in memory", "password (basic) in upstream", "password (base64) in encoded"} <= found
    assert not any(leak.endswith("in upstream") and "(raw)" in leak for leak in found)


# --- exception reports (C4) ----------------------------------------------------------------------


@pytest.fixture
def stored(actor):
    """An `other` registry whose password is a canary."""
    password = canary()
    registry = services.registry_create(
        actor=actor,
        provider="other",
        endpoint="registry.example.com",
        username="acme",
        password=password,
        skip_validation=True,
    )
    registry.canary = password
    return registry


@pytest.mark.django_db
def test_an_exception_inside_registry_credentials_hides_the_decrypted_secret(stored, monkeypatch, settings):
    # Fails right after the secret was decrypted into a local of registry_credentials.
    monkeypatch.setattr(ExternalRegistry, "mints_tokens", property(lambda self: 1 / 0))
    with pytest.raises(ZeroDivisionError) as caught:
        services.registry_credentials(stored)
    assert stored.canary not in error_report(caught.value)
    # The same report with the filter off (DEBUG=True) does show it: the check above can fail.
    settings.DEBUG = True
    assert stored.canary in error_report(caught.value)


@pytest.mark.django_db
def test_an_exception_while_saving_hides_the_secrets_given(actor, monkeypatch):
    password, key = canary(), canary_aws_secret()

    def failing_audit(**kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(services, "audit", failing_audit)
    with pytest.raises(RuntimeError) as caught:
        services.registry_create(
            actor=actor, provider="other", endpoint="r.example.com", username="u", password=password,
            skip_validation=True,
        )  # fmt: skip
    assert password not in error_report(caught.value)
    with pytest.raises(RuntimeError) as caught:
        services.registry_create(
            actor=actor, provider="ecr", endpoint="123456789012.dkr.ecr.us-east-1.amazonaws.com",
            username="AKIAIOSFODNN7EXAMPLE", secret_access_key=key, skip_validation=True,
        )  # fmt: skip
    assert key not in error_report(caught.value)


@pytest.mark.django_db
def test_an_exception_while_updating_hides_the_secrets_given(stored, actor, monkeypatch):
    new = canary()

    def failing_audit(**kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(services, "audit", failing_audit)
    with pytest.raises(RuntimeError) as caught:
        services.registry_update(actor=actor, registry=stored, password=new, skip_validation=True)
    text = error_report(caught.value)
    assert new not in text and stored.canary not in text


@pytest.mark.django_db
def test_a_decryption_failure_report_shows_neither_secret_nor_key(stored):
    ExternalRegistry.objects.filter(pk=stored.pk).update(secret=stored.secret[:-8] + "AAAAAAAA")
    stored.refresh_from_db()
    with pytest.raises(crypto.DecryptionError) as caught:
        services.registry_credentials(stored)
    assert stored.canary not in error_report(caught.value)
    ring = crypto.keyring()
    frames = ExceptionReporter(None, caught.type, caught.value, caught.tb.tb_next).get_traceback_frames()
    shown = [(f["function"], name) for f in frames for name, value in f["vars"] if value == ring.keys[ring.primary]]
    assert shown == [], f"the encryption key is a visible local in {shown}"


@pytest.mark.slow
@pytest.mark.django_db
def test_an_unexpected_error_inside_the_upstream_client_hides_the_password(stored, monkeypatch, loopback_server):
    upstream = loopback_server().on("/v2/", Reply.challenge("upstream", scheme="Basic"))
    ExternalRegistry.objects.filter(pk=stored.pk).update(endpoint=upstream.url)
    stored.refresh_from_db()

    def broken_basic(self):
        raise RuntimeError("bug in the client")

    monkeypatch.setattr(oci.OciClient, "_basic", broken_basic)
    test = RegistryTest.objects.create(registry=stored, image="acme/api:1.0.0")
    with pytest.raises(RuntimeError) as caught:
        services.registry_test_run(test.pk)
    frames = ExceptionReporter(None, caught.type, caught.value, caught.tb.tb_next).get_traceback_frames()
    shown = [(f["function"], name) for f in frames for name, value in f["vars"] if stored.canary in repr(value)]
    assert shown == [], f"the password is a visible local in {shown}"
