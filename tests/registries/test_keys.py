"""The key ring's life cycle: rotation (also killed halfway), unknown key ids, start-up checks, dumps."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psycopg
import pytest
import yaml
from django.apps import apps as django_apps
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.db import connection
from django.db.models import CharField, TextField
from django.urls import reverse

from licenses import licensefile
from licenses import services as licenses
from licenses.models import License
from portal import crypto, keys
from portal.encrypted_fields import encrypted_fields
from registries import checks, services
from registries.models import CheckStatus, ExternalRegistry, Health, RegistryTest
from tests import factories
from tests.celery_worker import wait_for
from tests.proxy.conftest import basic, proxy_name
from tests.realparts.cloud import canary, canary_aws_secret

ROOT = Path(__file__).resolve().parents[2]
K0, K1, K2 = (crypto.generate_key(key_id) for key_id in ("k0", "k1", "k2"))
ECR_ENDPOINT = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


@pytest.fixture
def use_ring(settings):
    """`use_ring(K2, K1)`: this process now runs with that PORTAL_ENCRYPTION_KEYS."""

    def use(*entries: str) -> None:
        settings.PORTAL_ENCRYPTION_KEYS = ",".join(entries)
        crypto._keyring_for.cache_clear()

    yield use
    crypto._keyring_for.cache_clear()


def _make_rows(actor, count: int, first_endpoint: str = "") -> dict[int, tuple[dict, dict | None]]:
    """`count` registries with canary secrets (the last one ECR, with a cached minted token);
    returns {pk: (secret, minted token or None)} as they must read back. Their ports lie above
    Linux's ephemeral range, where a loopback server's port (first_endpoint) never falls."""
    expected: dict[int, tuple[dict, dict | None]] = {}
    for i in range(count - 1):
        password = canary()
        registry = services.registry_create(
            actor=actor,
            provider="other",
            endpoint=(first_endpoint if i == 0 and first_endpoint else f"127.0.0.1:{61000 + i}"),
            username="acme",
            password=password,
            skip_validation=True,
        )
        expected[registry.pk] = ({"password": password}, None)
    secret = canary_aws_secret()
    registry = services.registry_create(
        actor=actor,
        provider="ecr",
        endpoint=ECR_ENDPOINT,
        username="AKIAIOSFODNN7EXAMPLE",
        secret_access_key=secret,
        skip_validation=True,
    )
    minted = {"username": "AWS", "password": canary()}
    ExternalRegistry.objects.filter(pk=registry.pk).update(
        minted_token=crypto.encrypt(json.dumps(minted), aad=services._aad(registry, "minted"))
    )
    expected[registry.pk] = ({"secret_access_key": secret}, minted)
    return expected


def _assert_all_decrypt(expected: dict[int, tuple[dict, dict | None]]) -> None:
    """Every row reads back exactly what was stored: not lost, not encrypted twice."""
    for registry in ExternalRegistry.objects.filter(pk__in=expected):
        secret, minted = expected[registry.pk]
        assert services.registry_secret(registry) == secret, registry.pk
        if minted is not None:
            assert json.loads(crypto.decrypt(registry.minted_token, aad=services._aad(registry, "minted"))) == minted


def _key_ids() -> Counter[str]:
    """Ciphertexts per key id, every encrypted column together."""
    return sum(keys.encryption_key_usage().values(), Counter())


def test_rotation_drill_every_row_decrypts_at_every_step(actor, use_ring, loopback_server, client, admin_api):
    upstream = loopback_server()
    use_ring(K1)
    expected = _make_rows(actor, 10, first_endpoint=upstream.url)
    assert _key_ids() == {"k1": 11}  # 10 secrets and one minted token

    # A new key goes first; nothing is re-encrypted yet and every reader keeps working.
    use_ring(K2, K1)
    _assert_all_decrypt(expected)
    assert client.get("/healthz").status_code == 200

    # Stopped after 4 rows (as if killed): those are under k2, the rest still under k1.
    partial = keys.encryption_keys_rotate(batch_size=3, limit=4)
    assert (partial.rotated, partial.remaining, partial.failures) == (4, 6, [])
    assert _key_ids() == {"k2": 4, "k1": 7}
    _assert_all_decrypt(expected)

    # Running again finishes the rest and nothing else.
    done = keys.encryption_keys_rotate(batch_size=3)
    assert (done.rotated, done.remaining, done.failures) == (6, 0, [])
    assert _key_ids() == {"k2": 11}
    _assert_all_decrypt(expected)

    # Idempotent: a third run finds nothing to do and rewrites nothing.
    before = list(ExternalRegistry.objects.order_by("pk").values_list("secret", "minted_token"))
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "Re-encrypted 0 rows under key k2; 0 rows left" in out.getvalue()
    assert list(ExternalRegistry.objects.order_by("pk").values_list("secret", "minted_token")) == before

    # k1 can go now.
    use_ring(K2)
    _assert_all_decrypt(expected)
    assert client.get("/healthz").json() == {"status": "ok"}

    # Booting with the old ring only fails closed: a clear error naming k2, nothing sent upstream.
    use_ring(K1)
    first = ExternalRegistry.objects.get(endpoint=upstream.url)
    with pytest.raises(crypto.DecryptionError, match="key 'k2'"):
        services.registry_secret(first)
    test = services.registry_test_run(RegistryTest.objects.create(registry=first, image="acme/api:1.0.0").pk)
    assert (test.status, test.category) == (CheckStatus.FAILED, "credential_corrupt")
    assert "'k2'" in test.message and expected[first.pk][0]["password"] not in test.message
    assert upstream.requests == []
    first.refresh_from_db()
    assert first.health == Health.UNHEALTHY
    health = client.get("/healthz")
    assert (health.status_code, health.json()) == (503, {"status": "error"})
    details = admin_api.get("/api/v1/health")
    assert details.status_code == 503
    assert (
        "key id k2 (registries.ExternalRegistry.minted_token, registries.ExternalRegistry.secret) missing"
        in details.json()["checks"]["encryption_keys"]
    )


def _ciphertext_columns() -> set[str]:
    """`app.Model.field` of every text column of every model that holds a ciphertext right now."""
    found = set()
    for model in django_apps.get_models():
        for column in model._meta.concrete_fields:
            if isinstance(column, CharField | TextField):
                if model._default_manager.filter(**{f"{column.name}__regex": r"^v1:[A-Za-z0-9_-]+:"}).exists():
                    found.add(f"{model._meta.label}.{column.name}")
    return found


@pytest.mark.slow
def test_after_rotating_every_encrypted_column_opens_with_only_the_new_key(
    actor, app, use_ring, basic_registry, admin_client, admin_api
):
    """W6: a registry's secret, an ECR minted token and a license ID are written under k1, rotated
    to k2, and k1 is dropped: every one still opens, through the pages, the API and the proxy."""
    use_ring(K1)
    registry = services.registry_create(
        actor=actor,
        provider="other",
        endpoint=basic_registry.endpoint,
        username=basic_registry.username,
        password=basic_registry.password,
    )
    api = basic_registry.images["api"]
    factories.make_release(actor, app, [(registry.name, api.repository, api.tag)])  # what the license pulls
    ecr = _make_rows(actor, 1)  # an ECR registry with a minted token
    license, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    # The registry list is complete: no column holds a ciphertext the rotation would not know.
    assert (
        _ciphertext_columns()
        == {entry.label for entry in encrypted_fields()}
        == {
            "registries.ExternalRegistry.secret",
            "registries.ExternalRegistry.minted_token",
            "licenses.License.license_id_encrypted",
        }
    )

    use_ring(K2, K1)
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "licenses.License: 1 rows have ciphertexts under another key." in out.getvalue()
    assert "registries.ExternalRegistry: 2 rows have ciphertexts under another key." in out.getvalue()
    assert "licenses.License.license_id_encrypted: 1 re-encrypted, 0 left under other keys" in out.getvalue()
    assert "registries.ExternalRegistry.secret: 2 re-encrypted, 0 left under other keys" in out.getvalue()
    assert "registries.ExternalRegistry.minted_token: 1 re-encrypted, 0 left under other keys" in out.getvalue()
    assert "Done: no stored credential uses a key other than k2." in out.getvalue()
    assert _key_ids() == {"k2": 4}

    use_ring(K2)  # k1 is gone
    assert keys.encryption_keys_missing() == {}
    # The registry's secret: the proxy logs in upstream with it for the customer's pull.
    api = basic_registry.images["api"]
    name = proxy_name(app.slug, basic_registry.netloc, api.repository)
    pulled = admin_client.get(f"/v2/{name}/manifests/{api.tag}", headers=basic(license_id))
    assert pulled.status_code == 200, pulled.content
    assert pulled.content == api.manifest
    _assert_all_decrypt(ecr)  # its secret and minted token
    # The license ID: on the license page and in the API.
    page = admin_client.get(reverse("delivery:license-detail", args=[license.pk]))
    assert license_id in page.content.decode()
    assert admin_api.get(f"/api/v1/licenses/{license.pk}/").json()["license_id"] == license_id
    # The license file, from the page and the API, verifies and carries the license ID.
    public_key = licensefile.public_key_pem()
    for response in (
        admin_client.get(reverse("licenses:license-file", args=[license.pk])),
        admin_api.get(f"/api/v1/licenses/{license.pk}/license-file"),
    ):
        assert response.status_code == 200, response.content
        assert licensefile.verify_license_file(response.content.decode(), public_key)["licenseId"] == license_id
    # The pull secret, from the page and the API, holds the license ID.
    for response in (
        admin_client.get(reverse("delivery:license-pull-secret", args=[license.pk])),
        admin_api.get(f"/api/v1/licenses/{license.pk}/pull-secret"),
    ):
        assert response.status_code == 200, response.content
        config = json.loads(base64.b64decode(yaml.safe_load(response.content)["data"][".dockerconfigjson"]))
        assert {auth["password"] for auth in config["auths"].values()} == {license_id}


def test_a_license_edit_begun_before_a_rotation_does_not_write_the_old_ciphertext_back(actor, app, use_ring):
    use_ring(K1)
    license, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    stale = License.objects.get(pk=license.pk)  # as a page loaded it, before the rotation
    use_ring(K2, K1)
    keys.encryption_keys_rotate()
    licenses.license_update(actor=actor, license=stale, customer_name="Globex Corp")
    use_ring(K2)
    license.refresh_from_db()
    assert license.customer_name == "Globex Corp"
    assert licenses.license_id_of(license) == license_id
    assert _key_ids() == {"k2": 1}


def test_the_command_names_rows_it_cannot_decrypt_and_rotates_the_rest(actor, use_ring):
    use_ring(K0)
    lost = _make_rows(actor, 2)  # written under k0, which the new ring forgets
    use_ring(K1)
    kept = {}
    for i in range(3):
        password = canary()
        registry = services.registry_create(
            actor=actor,
            provider="other",
            endpoint=f"127.0.0.1:{62000 + i}",
            username="acme",
            password=password,
            skip_validation=True,
        )
        kept[registry.pk] = ({"password": password}, None)
    use_ring(K2, K1)

    dry = io.StringIO()
    call_command("rotate_encryption_keys", "--dry-run", stdout=dry)
    assert "secret rows per key id: k0=2, k1=3" in dry.getvalue()
    assert "minted_token rows per key id: k0=1" in dry.getvalue()
    assert "not in PORTAL_ENCRYPTION_KEYS (those rows cannot be read): k0" in dry.getvalue()
    assert (
        "Would re-encrypt 5 rows under key k2 (licenses.License: 0, registries.ExternalRegistry: 5)." in dry.getvalue()
    )
    assert _key_ids() == {"k0": 3, "k1": 3}  # a dry run changes nothing

    out = io.StringIO()
    with pytest.raises(CommandError) as e:
        call_command("rotate_encryption_keys", "--batch-size", "2", stdout=out)
    message = str(e.value)
    for pk in lost:
        assert f"registries.ExternalRegistry {pk} (secret)" in message
    assert "'k0'" in message and "Add the missing key" in message
    every_secret = [
        s for secret, minted in [*lost.values(), *kept.values()] for s in [*secret.values(), *(minted or {}).values()]
    ]
    assert not any(s in message or s in out.getvalue() for s in every_secret)
    assert "3/5 rows re-encrypted" in out.getvalue()
    assert "Re-encrypted 3 rows under key k2; 2 rows left under other keys." in out.getvalue()
    _assert_all_decrypt(kept)
    assert _key_ids() == {"k0": 3, "k2": 3}


def test_a_license_sealed_with_a_key_no_longer_in_the_ring_fails_the_check_and_healthz(actor, app, use_ring, client):
    """The registries are all readable; only a license ID names the dropped key k0."""
    use_ring(K0)
    licenses.license_create(actor=actor, app=app, customer_name="Globex")
    use_ring(K1)
    _make_rows(actor, 2)
    assert checks.check_encryption_keys_cover_stored_values(None, databases=["default"]) != []
    with pytest.raises(SystemCheckError) as e:
        call_command("check", "--database", "default", stdout=io.StringIO(), stderr=io.StringIO())
    assert (
        "(registries.E002) key id k0 (licenses.License.license_id_encrypted) missing from PORTAL_ENCRYPTION_KEYS"
        in (str(e.value))
    )
    assert client.get("/healthz").status_code == 503

    use_ring(K1, K0)  # the key is back: both are happy again
    assert checks.check_encryption_keys_cover_stored_values(None, databases=["default"]) == []
    assert client.get("/healthz").status_code == 200


def test_generate_encryption_key_prints_an_entry_the_ring_accepts():
    out = io.StringIO()
    call_command("generate_encryption_key", "--id", "k7", stdout=out, stderr=io.StringIO())
    entry = out.getvalue().strip()
    assert crypto.parse_keyring(entry).primary == "k7"
    with pytest.raises(CommandError, match="--id may use only"):
        call_command("generate_encryption_key", "--id", "no spaces", stdout=io.StringIO())


def test_a_malformed_key_ring_is_a_check_error_and_a_health_error(settings, use_ring, client, admin_api):
    use_ring("k1:c2hvcnQ=")  # 5 bytes
    errors = checks.check_encryption_keys_parse(None)
    assert [e.id for e in errors] == ["registries.E001"]
    assert "PORTAL_ENCRYPTION_KEYS: key 'k1' must be 32 bytes" in errors[0].msg
    health = client.get("/healthz")
    assert (health.status_code, health.json()) == (503, {"status": "error"})
    details = admin_api.get("/api/v1/health")
    assert details.status_code == 503
    assert "key 'k1' must be 32 bytes" in details.json()["checks"]["encryption_keys"]


def test_healthz_tells_anonymous_callers_only_error_and_team_members_why(
    actor, app, use_ring, client, viewer_api, viewer_client, outsider_api, caplog
):
    use_ring(K0)
    licenses.license_create(actor=actor, app=app, customer_name="Globex")
    use_ring(K1)
    reason = "key id k0 (licenses.License.license_id_encrypted) missing from PORTAL_ENCRYPTION_KEYS"

    anonymous = client.get("/healthz")
    assert (anonymous.status_code, anonymous.content) == (503, b'{"status": "error"}')
    assert client.get("/api/v1/health").status_code == 401
    # The reason is in the log, for the operator; the key itself is not.
    logged = [r.getMessage() for r in caplog.records if r.name == "portal.health"]
    assert any(reason in line for line in logged), logged
    assert not any(key.split(":", 1)[1] in caplog.text for key in (K0, K1))

    # Any member of any team may read why (a key id and a column name are no secret); by token or session.
    for member in (viewer_api, outsider_api, viewer_client):
        details = member.get("/api/v1/health")
        assert details.status_code == 503
        assert details.json()["status"] == "error"
        assert details.json()["checks"]["database"] == "ok"
        assert reason in details.json()["checks"]["encryption_keys"]

    use_ring(K1, K0)
    assert client.get("/healthz").content == b'{"status": "ok"}'
    assert viewer_api.get("/api/v1/health").json() == {
        "status": "ok",
        "checks": {"database": "ok", "encryption_keys": "ok"},
    }


def test_a_malformed_key_ring_stops_manage_py_with_its_message(tmp_path):
    env = {"PATH": os.environ["PATH"], "PORTAL_VAR_DIR": str(tmp_path), "PORTAL_ENCRYPTION_KEYS": "k1:not base64!"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "(registries.E001) PORTAL_ENCRYPTION_KEYS: key 'k1'" in result.stderr


def test_deploy_check_warns_when_the_key_ring_is_not_from_the_environment(use_ring):
    use_ring("")
    assert [w.id for w in checks.check_encryption_keys_from_environment(None)] == ["registries.W001"]
    use_ring(K1)
    assert checks.check_encryption_keys_from_environment(None) == []


# --- with real processes ---------------------------------------------------------------


def _db_env() -> dict[str, str]:
    db = connection.settings_dict
    return {"DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"}


def _connect() -> psycopg.Connection:
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"] or None, dbname=db["NAME"]
    )


@pytest.mark.slow
def test_a_rotation_killed_halfway_leaves_every_row_readable_and_a_rerun_finishes(
    transactional_db, actor, use_ring, tmp_path
):
    """F8(b): `kill -9` the command while it works. A second connection holds row 6 locked, so the
    command stops there for certain, with rows 1-5 done; then it is killed."""
    use_ring(K1)
    expected = _make_rows(actor, 10)
    use_ring(K2, K1)
    pks = sorted(expected)
    app_name = f"rotate-drill-{os.getpid()}"
    env = {
        **os.environ,
        **_db_env(),
        "PORTAL_ENCRYPTION_KEYS": f"{K2},{K1}",
        "PORTAL_VAR_DIR": str(tmp_path),
        "PGAPPNAME": app_name,
    }
    blocker = _connect()
    try:
        blocker.execute("SELECT id FROM registries_externalregistry WHERE id = %s FOR UPDATE", [pks[5]])
        log = tmp_path / "rotate.log"
        with open(log, "w") as out:
            run = subprocess.Popen(
                [sys.executable, "manage.py", "rotate_encryption_keys", "--batch-size", "2"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        under_k2 = lambda: ExternalRegistry.objects.filter(secret__startswith="v1:k2:").count()  # noqa: E731
        assert wait_for(lambda: under_k2() == 5, timeout=30), log.read_text()
        assert run.poll() is None, log.read_text()  # waiting for row 6's lock
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=10)
        # End its server session too, so the lock it queued for never gets taken.
        blocker.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", [app_name]
        )
    finally:
        blocker.rollback()
        blocker.close()

    assert run.returncode == -signal.SIGKILL
    assert _key_ids() == {"k2": 5, "k1": 6}
    _assert_all_decrypt(expected)  # every row readable after the kill

    out = io.StringIO()
    call_command("rotate_encryption_keys", "--batch-size", "2", stdout=out)
    assert "5 rows have credentials under another key." in out.getvalue()
    assert "Done: no stored credential uses a key other than k2." in out.getvalue()
    assert _key_ids() == {"k2": 11}
    use_ring(K2)
    _assert_all_decrypt(expected)


@pytest.mark.slow
def test_a_database_dump_holds_no_usable_credential(transactional_db, actor, use_ring, service_account_key):
    """C6: pg_dump of the test database after credentials of each kind are stored."""
    use_ring(K1)
    expected = _make_rows(actor, 3)
    key = service_account_key()
    gcr = services.registry_create(actor=actor, provider="gcr", endpoint="gcr.io", service_account_key=key.text, skip_validation=True)  # fmt: skip
    db = connection.settings_dict
    dump = subprocess.run(
        ["pg_dump", "-h", db["HOST"], "-p", str(db["PORT"] or 5432), "-U", db["USER"], "--no-owner", db["NAME"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "v1:k1:" in dump  # the rows are in it, as ciphertext

    # The minted token's user name ("AWS") is no secret, and three letters turn up by chance in
    # a dump full of base64 ciphertext: only the secret values are looked for.
    secrets = [
        s for secret, minted in expected.values() for s in [*secret.values(), (minted or {}).get("password")] if s
    ]
    forms = []
    for value in secrets:
        for raw in (value, f"acme:{value}", f"AWS:{value}"):
            forms += [raw, base64.b64encode(raw.encode()).decode(), base64.urlsafe_b64encode(raw.encode()).decode()]
    forms += [key.secret_marker, K1.split(":", 1)[1]]  # the SA private key, and the key ring itself
    leaked = [form for form in forms if form in dump]
    assert leaked == []

    # The ciphertexts in the dump are useless without the key from the environment.
    stranger = crypto.parse_keyring(crypto.generate_key("k1"))
    for registry in ExternalRegistry.objects.all():
        with pytest.raises(crypto.DecryptionError, match="corrupt or belongs to another record"):
            crypto.decrypt(registry.secret, aad=services._aad(registry, "secret"), ring=stranger)
        with pytest.raises(crypto.DecryptionError, match="key 'k1'"):
            crypto.decrypt(registry.secret, aad=services._aad(registry, "secret"), ring=crypto.parse_keyring(K2))
    assert json.loads(services.registry_secret(gcr)["service_account_key"])["private_key"] == key.info["private_key"]
