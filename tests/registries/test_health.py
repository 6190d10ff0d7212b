"""Credential health apart from what one image's test found, and "untested since the
credentials changed", through the services, against real Distribution registries."""

from __future__ import annotations

import typing

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from registries import services, steps
from registries.clients.oci import check
from registries.models import CheckStatus, ExternalRegistry, Health, RegistryTest
from tests import factories
from tests.realparts.distribution import free_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def _run_test(registry, image, **fields):
    test = RegistryTest.objects.create(registry=registry, image=image, requested_by="test", **fields)
    return services.registry_test_run(test.pk)


def test_the_step_labels_name_every_step_the_client_runs_in_its_order():
    assert tuple(name for name, _ in steps.STEPS) == typing.get_args(check.StepName)


@pytest.mark.parametrize(
    ("image", "category", "message"),
    [
        ("acme/api:9.9.9", "manifest_unknown", "acme/api:9.9.9 not found"),
        ("acme/no-such-repo:1.0.0", "repository_unknown", "repository acme/no-such-repo not found"),
    ],
)
def test_a_missing_tag_or_repository_is_a_finding_about_the_image_and_the_registry_stays_healthy(
    actor, basic_registry, image, category, message
):
    registry = factories.connect_registry(actor, basic_registry)
    good = _run_test(registry, "acme/api:1.0.0")
    assert good.status == CheckStatus.SUCCEEDED

    test = _run_test(registry, image)
    assert (test.status, test.category, test.message) == (CheckStatus.FAILED, category, message)
    assert test.image_finding is True
    assert [s["outcome"] for s in test.labelled_steps] == ["ok", "ok", "failed", "skipped"]
    registry.refresh_from_db()
    assert (registry.health, registry.health_reason) == (Health.HEALTHY, "")
    assert registry.last_image_test == test, "the finding is shown with the registry"
    assert registry.last_good_image == "acme/api:1.0.0", "a failed image never becomes the last good one"


def test_a_missing_tag_behind_a_token_realm_is_a_finding_too(actor, token_registry):
    registry = factories.connect_registry(actor, token_registry)
    test = _run_test(registry, "acme/api:9.9.9")
    assert (test.category, test.image_finding) == ("manifest_unknown", True)
    registry.refresh_from_db()
    assert registry.health == Health.HEALTHY and registry.last_good_image == ""


def test_refused_credentials_make_the_registry_unhealthy_naming_the_step(actor, basic_registry):
    registry = factories.connect_registry(actor, basic_registry, skip_validation=True)
    services.registry_update(actor=actor, registry=registry, password="wrong-password", skip_validation=True)
    test = _run_test(registry, "acme/api:9.9.9")
    assert (test.category, test.image_finding) == ("unauthorized", False)
    registry.refresh_from_db()
    assert registry.health == Health.UNHEALTHY
    assert registry.health_reason == f"Log in: {basic_registry.netloc} rejected the credentials for the registry"
    assert registry.last_image_test == test


def test_an_endpoint_nothing_answers_on_is_unhealthy(actor):
    port = free_port()
    registry = services.registry_create(
        actor=actor, provider="other", endpoint=f"http://127.0.0.1:{port}", username="a", password="b",
        skip_validation=True,
    )  # fmt: skip
    test = _run_test(registry, "acme/api:1.0.0")
    assert (test.category, test.image_finding) == ("connect", False)
    registry.refresh_from_db()
    assert registry.health == Health.UNHEALTHY
    assert registry.health_reason.startswith(f"Reach /v2/: could not connect to 127.0.0.1:{port}")


def test_unreadable_stored_credentials_are_unhealthy(actor, basic_registry):
    registry = factories.connect_registry(actor, basic_registry)
    ExternalRegistry.objects.filter(pk=registry.pk).update(secret="v1:not-a-ciphertext")
    test = _run_test(registry, "acme/api:1.0.0")
    assert (test.category, test.image_finding) == ("credential_corrupt", False)
    registry.refresh_from_db()
    assert (registry.health, registry.health_reason) == (Health.UNHEALTHY, "stored credentials unreadable")


@pytest.mark.parametrize(
    "change",
    [
        {"password": "another-password"},
        {"username": "someone-else"},
        {"endpoint": "{endpoint}/team"},
        {"realm_host": "auth.example.com"},
    ],
    ids=["secret", "username", "endpoint", "realm"],
)
def test_after_the_credentials_change_health_is_untested_until_the_next_test(actor, basic_registry, change):
    registry = factories.connect_registry(actor, basic_registry)
    assert _run_test(registry, "acme/api:1.0.0").status == CheckStatus.SUCCEEDED
    change = {k: v.format(endpoint=basic_registry.endpoint) for k, v in change.items()}
    registry = services.registry_update(actor=actor, registry=registry, skip_validation=True, **change)
    registry.refresh_from_db()
    assert registry.health == Health.CREDENTIALS_CHANGED
    assert registry.get_health_display() == "Untested since the credentials changed"
    assert registry.credentials_changed_at is not None

    test = _run_test(registry, "acme/api:1.0.0")
    registry.refresh_from_db()
    assert registry.health in (Health.HEALTHY, Health.UNHEALTHY) and registry.last_image_test == test


def test_changing_only_the_name_or_apps_keeps_the_health(actor, basic_registry, app):
    registry = factories.connect_registry(actor, basic_registry)
    _run_test(registry, "acme/api:1.0.0")
    services.registry_update(actor=actor, registry=registry, name="renamed", apps=[app.slug])
    registry.refresh_from_db()
    assert registry.health == Health.HEALTHY and registry.credentials_changed_at is None


def test_a_test_requested_before_the_change_does_not_settle_the_new_credentials(actor, basic_registry):
    registry = factories.connect_registry(actor, basic_registry)
    earlier = timezone.now()
    services.registry_update(actor=actor, registry=registry, password=basic_registry.password)
    old = _run_test(registry, "acme/api:1.0.0", created_at=earlier)
    assert old.status == CheckStatus.SUCCEEDED
    registry.refresh_from_db()
    assert registry.health == Health.CREDENTIALS_CHANGED and registry.last_image_test is None


@pytest.mark.django_db(transaction=True)
def test_the_migration_heals_registries_made_unhealthy_only_by_a_missing_image(team):
    executor = MigrationExecutor(connection)
    executor.migrate([("registries", "0002_private_images")])
    old_apps = executor.loader.project_state([("registries", "0002_private_images")]).apps
    Registry, Test = (
        old_apps.get_model("registries", "ExternalRegistry"),
        old_apps.get_model("registries", "RegistryTest"),
    )
    steps_missing = [{"name": "ping", "outcome": "ok"}, {"name": "auth", "outcome": "ok"},
                     {"name": "manifest", "outcome": "failed", "category": "manifest_unknown"}]  # fmt: skip
    steps_refused = [{"name": "ping", "outcome": "ok"}, {"name": "auth", "outcome": "failed"}]
    rows = {}
    for name, category, result in [
        ("missing", "manifest_unknown", {"steps": steps_missing}),
        ("refused", "unauthorized", {"steps": steps_refused}),
    ]:
        registry = Registry.objects.create(
            team_id=team.pk, name=name, provider="other", endpoint=f"{name}.example.com", health="unhealthy",
            health_reason="x",
        )  # fmt: skip
        Test.objects.create(registry=registry, image="acme/api:9", status="failed", category=category,
                            result=result, finished_at=timezone.now())  # fmt: skip
        rows[name] = registry.pk
    untested = Registry.objects.create(team_id=team.pk, name="new", provider="other", endpoint="new.example.com")

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    missing, refused = (
        ExternalRegistry.objects.get(pk=rows["missing"]),
        ExternalRegistry.objects.get(pk=rows["refused"]),
    )
    assert (missing.health, missing.health_reason) == (Health.HEALTHY, "")
    assert missing.last_image_test.category == "manifest_unknown"
    assert (refused.health, refused.health_reason) == (Health.UNHEALTHY, "x")
    assert refused.last_image_test.category == "unauthorized"
    assert ExternalRegistry.objects.get(pk=untested.pk).last_image_test is None
