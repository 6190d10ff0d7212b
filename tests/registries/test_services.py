"""Saving and testing registries through the service layer, against real Distribution, moto and google-auth."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError

from portal import crypto
from registries import services
from registries.models import CheckStatus, ExternalRegistry, Health
from tests import factories
from tests.realparts.distribution import free_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def _run_test(registry, image):
    from registries.models import RegistryTest

    test = RegistryTest.objects.create(registry=registry, image=image, requested_by="test")
    return services.registry_test_run(test.pk)


def test_a_basic_auth_registry_is_verified_saved_encrypted_and_tested(actor, basic_registry):
    registry = factories.connect_registry(actor, basic_registry)
    assert registry.secret.startswith("v1:") and basic_registry.password not in registry.secret
    assert services.registry_secret(registry) == {"password": basic_registry.password}
    image = basic_registry.images["api"]
    test = _run_test(registry, f"{image.repository}:{image.tag}")
    assert test.status == CheckStatus.SUCCEEDED, test.message
    assert test.result["digest"] == image.digest
    registry.refresh_from_db()
    assert registry.health == Health.HEALTHY and registry.last_good_image == "acme/api:1.0.0"


def test_a_wrong_password_is_refused_on_save_and_nothing_is_stored(actor, basic_registry):
    with pytest.raises(ValidationError) as e:
        services.registry_create(
            actor=actor, provider="other", endpoint=basic_registry.endpoint, username="acme", password="wrong-password"
        )
    message = e.value.message_dict["password"][0]
    assert "unauthorized" in message
    assert f"{basic_registry.netloc} rejected the credentials" in message, "the endpoint is named with its port"
    assert not ExternalRegistry.objects.exists()


def test_a_registry_nothing_answers_on_is_named_with_its_port(actor):
    port = free_port()  # bound and closed again: connections to it are refused
    with pytest.raises(ValidationError) as e:
        services.registry_create(
            actor=actor, provider="other", endpoint=f"http://127.0.0.1:{port}", username="acme", password="pw"
        )
    [field] = e.value.message_dict
    assert f"could not connect to 127.0.0.1:{port}" in e.value.message_dict[field][0]
    assert not ExternalRegistry.objects.exists()


def test_skip_validation_saves_and_the_test_reports_the_wrong_password(actor, basic_registry):
    registry = services.registry_create(
        actor=actor,
        provider="other",
        endpoint=basic_registry.endpoint,
        username="acme",
        password="wrong-password",
        skip_validation=True,
    )
    test = _run_test(registry, "acme/api:1.0.0")
    assert (test.status, test.category) == (CheckStatus.FAILED, "unauthorized")
    registry.refresh_from_db()
    assert registry.health == Health.UNHEALTHY


def test_a_token_auth_registry_works_through_its_realm(actor, token_registry):
    registry = services.registry_create(
        actor=actor,
        provider="other",
        endpoint=token_registry.endpoint,
        username=token_registry.username,
        password=token_registry.password,
    )
    test = _run_test(registry, "acme/multi:1.0.0")
    assert test.status == CheckStatus.SUCCEEDED, test.message
    assert sorted(test.result["platforms"]) == ["linux/amd64", "linux/arm64"]


def test_a_ciphertext_copied_to_another_row_does_not_decrypt(actor, basic_registry, outsider_actor):
    mine = services.registry_create(
        actor=actor, provider="other", endpoint=basic_registry.endpoint, username="acme", password="x" * 12,
        skip_validation=True,
    )  # fmt: skip
    theirs = services.registry_create(
        actor=outsider_actor, provider="other", endpoint=basic_registry.endpoint,
        username="acme", password="y" * 12, skip_validation=True,
    )  # fmt: skip
    ExternalRegistry.objects.filter(pk=mine.pk).update(secret=theirs.secret)
    mine.refresh_from_db()
    with pytest.raises(crypto.DecryptionError, match="another record"):
        services.registry_secret(mine)
    test = _run_test(mine, "acme/api:1.0.0")
    assert (test.status, test.category) == (CheckStatus.FAILED, "credential_corrupt")


def test_ecr_mints_a_token_with_moto_and_pulls_from_the_registry(actor, moto_ecr, ecr_basic_registry):
    registry = services.registry_create(
        actor=actor,
        provider="ecr",
        endpoint=ecr_basic_registry.endpoint,
        region="us-east-1",
        username="AKIAIOSFODNN7EXAMPLE",
        secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )
    assert registry.minted_token == ""  # verification mints without caching
    test = _run_test(registry, "acme/api:1.0.0")
    assert test.status == CheckStatus.SUCCEEDED, test.message
    registry.refresh_from_db()
    assert registry.minted_token and registry.minted_token_expires_at
    cached = json.loads(crypto.decrypt(registry.minted_token, aad=services._aad(registry, "minted")))
    assert cached["username"] == "AWS"


def test_gcr_mints_an_access_token_with_google_auth_and_pulls(
    actor, service_account_key, google_token_endpoint, gcr_token_registry
):
    key = service_account_key()
    registry = services.registry_create(
        actor=actor, provider="gcr", endpoint=gcr_token_registry.endpoint, service_account_key=key.text
    )
    assert registry.username == key.client_email
    test = _run_test(registry, "acme/v2s2:1.0.0")
    assert test.status == CheckStatus.SUCCEEDED, test.message
    assert test.result["media_type"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert all(r.claims is not None for r in google_token_endpoint.requests)  # real signatures verified
