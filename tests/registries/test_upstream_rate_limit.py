"""Docker Hub's pull limit headers (`ratelimit-limit`, `ratelimit-remaining`), kept per registry
when a connection test or the proxy sees them, shown on the Images page and in the API. The
upstream is a real Distribution behind a loopback relay that adds the headers as Docker Hub does
(tests/realparts/ratelimit_relay.py)."""

from __future__ import annotations

import httpx
import pytest
from django.urls import reverse

from licenses import services as licenses
from registries import services as registries
from registries.models import ExternalRegistry, RegistryTest
from tests import factories
from tests.proxy.conftest import basic, proxy_name, wait_for
from tests.realparts.env import child_env
from tests.realparts.portal_server import run_portal_server
from tests.realparts.ratelimit_relay import RateLimitRelay

pytestmark = pytest.mark.slow


@pytest.fixture
def relay(basic_registry):
    relay = RateLimitRelay(basic_registry.netloc, limit=100, window=21600)
    yield relay
    relay.stop()


def _connect(actor, endpoint: str, upstream) -> ExternalRegistry:
    return registries.registry_create(
        actor=actor, provider="other", endpoint=endpoint, name="hub",
        username=upstream.username, password=upstream.password,
    )  # fmt: skip


def _test(registry: ExternalRegistry, image: str) -> RegistryTest:
    """The worker's half of a connection test (the task only calls it with the id)."""
    test = RegistryTest.objects.create(registry=registry, image=image)
    return registries.registry_test_run(test.pk)


@pytest.mark.django_db
def test_a_connection_test_keeps_the_pull_limit_the_registry_stated(
    relay, basic_registry, actor, admin_client, admin_api
):
    registry = _connect(actor, relay.url, basic_registry)
    assert registry.rate_limit is None
    image = basic_registry.images["api"]
    test = _test(registry, f"{image.repository}:{image.tag}")
    assert test.status == "succeeded", test.message
    assert relay.manifest_gets >= 1

    registry.refresh_from_db()
    assert (registry.rate_limit_limit, registry.rate_limit_remaining, registry.rate_limit_window) == (
        100, relay.remaining, 21600,
    )  # fmt: skip
    assert relay.remaining < 100 and registry.rate_limit_seen_at is not None

    body = admin_api.get(f"/api/v1/external-registries/{registry.pk}/").json()
    assert {k: body["rate_limit"][k] for k in ("limit", "remaining", "window_seconds")} == {
        "limit": 100, "remaining": relay.remaining, "window_seconds": 21600,
    }  # fmt: skip
    assert body["rate_limit"]["seen_at"]

    page = admin_client.get(reverse("registries:image-list")).content.decode()
    assert f"{relay.remaining} of 100 left per 6 hours" in page


@pytest.mark.django_db
def test_a_registry_that_states_no_limit_shows_none(basic_registry, actor, admin_client, admin_api):
    registry = _connect(actor, basic_registry.endpoint, basic_registry)
    image = basic_registry.images["api"]
    assert _test(registry, f"{image.repository}:{image.tag}").status == "succeeded"
    registry.refresh_from_db()
    assert registry.rate_limit_seen_at is None
    assert admin_api.get(f"/api/v1/external-registries/{registry.pk}/").json()["rate_limit"] is None
    assert "Pull limit" not in admin_client.get(reverse("registries:image-list")).content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_proxy_keeps_the_latest_pull_limit_it_saw(relay, basic_registry, actor, team, tmp_path):
    registry = _connect(actor, relay.url, basic_registry)
    app = factories.make_app(team, "hub-app")
    image = basic_registry.images["api"]
    factories.make_release(actor, app, [(registry.name, image.repository, image.tag)])
    _, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    name = proxy_name(app.slug, relay.netloc, image.repository)

    def kept() -> tuple | None:
        row = ExternalRegistry.objects.get(pk=registry.pk)
        seen = (row.rate_limit_limit, row.rate_limit_remaining, row.rate_limit_window)
        return seen if seen == (100, 97, 21600) else None

    # PROXY_TAG_TTL=0: every pull asks the upstream for its tag (within the TTL, the cache would
    # answer, and Docker Hub would count one pull: tests/proxy/test_cache.py).
    with run_portal_server(tmp_path, child_env(PROXY_TAG_TTL="0")) as server:
        for _ in range(3):  # three pulls' manifests: Docker Hub counts each
            response = httpx.get(f"{server.url}/v2/{name}/manifests/{image.tag}", headers=basic(license_id))
            assert response.status_code == 200, response.text
        assert relay.remaining == 97
        assert "ratelimit-remaining" not in response.headers  # the upstream's headers stay upstream
        assert wait_for(kept, timeout=5), ExternalRegistry.objects.filter(pk=registry.pk).values().first()


@pytest.mark.django_db
def test_an_older_sighting_never_replaces_a_newer_one(basic_registry, actor):
    from datetime import timedelta

    from django.utils import timezone

    from registries.clients.oci import RateLimit
    from registries.upstream_limits import registry_rate_limit_record

    registry = _connect(actor, basic_registry.endpoint, basic_registry)
    now = timezone.now()
    registry_rate_limit_record(registry_id=registry.pk, rate_limit=RateLimit(100, 40, 21600), seen_at=now)
    late = RateLimit(100, 90, 21600)  # another process saw it earlier and writes it only now
    registry_rate_limit_record(registry_id=registry.pk, rate_limit=late, seen_at=now - timedelta(seconds=2))
    registry.refresh_from_db()
    assert registry.rate_limit_remaining == 40 and registry.rate_limit_seen_at == now
