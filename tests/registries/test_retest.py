"""The daily re-test (registries_retest_task) asks for its tests through registry_test_request,
as the "daily check" actor: the same per-team limit, image check and queue as a person's test."""

from __future__ import annotations

import pytest

from registries import services
from registries.models import CheckStatus, ExternalRegistry, RegistryTest
from registries.tasks import registries_retest_task
from tests import factories
from tests.celery_worker import wait_for

IMAGE = "acme/api:1.0.0"


def _registry(actor, basic_registry) -> ExternalRegistry:
    registry = factories.connect_registry(actor, basic_registry)
    ExternalRegistry.objects.filter(pk=registry.pk).update(last_good_image=IMAGE)
    return registry


@pytest.mark.slow
def test_the_daily_retest_checks_every_registry_past_the_teams_limit_on_a_real_worker(
    celery_worker_process, settings, basic_registry, admin, team, outsider, other_team
):
    settings.REGISTRY_TEST_RATE = 1
    acme = _registry(factories.actor_of(admin, team), basic_registry)
    other = _registry(factories.actor_of(outsider, other_team), basic_registry)
    services.registry_test_request(actor=factories.actor_of(admin, team), registry=acme, image=IMAGE)  # Acme's one

    assert registries_retest_task() == "2 queued"

    requested = RegistryTest.objects.filter(registry=acme).order_by("pk").values_list("requested_by", flat=True)
    assert list(requested) == [admin.email, "daily check"]
    daily = RegistryTest.objects.get(registry=other)
    assert daily.requested_by == "daily check"
    assert wait_for(lambda: RegistryTest.objects.get(pk=daily.pk).done), celery_worker_process.log.read_text()
    finished = RegistryTest.objects.get(pk=daily.pk)
    assert finished.status == CheckStatus.SUCCEEDED, (finished.category, finished.message)
    assert finished.result["digest"] == basic_registry.images["api"].digest
    # The daily check spent none of the Other team's budget; Acme's one is still spent.
    services.registry_test_request(actor=factories.actor_of(outsider, other_team), registry=other, image=IMAGE)
    with pytest.raises(services.TooManyTests):
        services.registry_test_request(actor=factories.actor_of(admin, team), registry=acme, image=IMAGE)


@pytest.mark.django_db
def test_the_daily_retest_skips_an_image_the_test_request_refuses(admin, team, caplog):
    registry = services.registry_create(
        actor=factories.actor_of(admin, team),
        provider="other",
        endpoint="127.0.0.1:5999",
        username="acme",
        password="secret",
        skip_validation=True,
    )
    ExternalRegistry.objects.filter(pk=registry.pk).update(last_good_image="Not An Image!")
    assert registries_retest_task() == "0 queued, 1 skipped"
    assert not RegistryTest.objects.exists()
    assert f"daily check of registry {registry.pk} skipped: Not an image reference" in caplog.text
