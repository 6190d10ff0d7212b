"""`portal registry add other` with a cloud's login, as the clouds' docs give it: the portal (not the
CLI) recognises it, saves it as the cloud's provider, and the CLI says which."""

from __future__ import annotations

import json

import pytest

from registries.models import ExternalRegistry

# The GCR upstream (loopback Google token endpoint + token-auth Distribution) lives with the registries tests.
from tests.registries.conftest import gcr_token_registry  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def _add_json_key(portal, endpoint: str, password: str, *extra: str):
    return portal(
        "registry", "add", "other", "--endpoint", endpoint, "--username", "_json_key", "--password-stdin", *extra,
        input=password + "\n",
    )  # fmt: skip


@pytest.mark.slow
def test_add_other_with_a_json_key_on_stdin_is_saved_as_gcr_and_its_test_pulls(
    portal,
    service_account_key,
    google_token_endpoint,
    gcr_token_registry,  # noqa: F811 (the fixture imported above)
    celery_worker_process,
):
    key = service_account_key()
    result = _add_json_key(portal, gcr_token_registry.endpoint, key.text, "--name", "gcr-local")
    assert (result.returncode, result.stdout) == (0, "gcr-local\n"), result.stderr
    assert result.stderr == (
        "Saved as provider gcr: the portal recognised the credentials and mints short-lived tokens with them.\n"
    )
    row = ExternalRegistry.objects.get()
    assert (row.name, row.provider, row.username) == ("gcr-local", "gcr", key.client_email)

    tested = portal("registry", "test", "gcr-local", "--image", "acme/v2s2:1.0.0", "--timeout", "30")
    assert tested.returncode == 0, tested.stderr + tested.stdout
    assert "result      succeeded" in tested.stdout.splitlines()
    assert key.secret_marker not in result.stdout + result.stderr + tested.stdout + tested.stderr


def test_add_other_with_a_json_key_whose_private_key_is_broken_names_it_and_saves_nothing(portal, service_account_key):
    key = service_account_key()
    broken = json.dumps(
        {**key.info, "private_key": "-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----"}
    )
    result = _add_json_key(portal, "gcr.io", broken, "--skip-validation")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "error: password: With the user name _json_key the password must be a service-account JSON key: "
        'Field "private_key" is not a PEM-encoded, unencrypted RSA private key.\n'
    )
    assert ExternalRegistry.objects.count() == 0


def test_add_other_with_an_ecr_host_and_access_key_prints_provider_ecr(portal):
    result = portal(
        "registry", "add", "other", "--endpoint", "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        "--username", "AKIAIOSFODNN7EXAMPLE", "--password-stdin", "--skip-validation", "-o", "json",
        input="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert (created["provider"], created["region"]) == ("ecr", "eu-west-1")
    assert result.stderr.startswith("Saved as provider ecr:")
