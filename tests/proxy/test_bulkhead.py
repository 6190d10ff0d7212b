"""One team's stuck upstream cannot stall another team's pulls (SECURITY-TESTS L5, F2).

The bulkhead itself, then the whole: team Other's registry is a loopback listener that accepts
connections and never answers; 150 requests hang on it through a live portal (uvicorn) while
team Acme pulls from a real Distribution with skopeo.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest

from delivery.proxy import upstream
from delivery.proxy.bulkhead import Bulkhead
from licenses import services as licenses
from licenses.models import PullEvent
from portal.outbound.errors import RegistryError
from registries import services as registries
from tests import factories
from tests.proxy.conftest import basic, proxy_name, skopeo, wait_for
from tests.realparts.loopback import SilentListener

PER_HOST = 8
POOL_WAIT = 1.0
FIRST_BYTE = 5.0
STUCK_REQUESTS = 150


def _run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 10))


def test_a_full_team_is_told_it_is_busy_after_the_bounded_wait_while_another_team_goes_on():
    async def scenario():
        bulkhead = Bulkhead(per_team=10, per_host=2, wait=0.2)
        held = [await bulkhead.acquire(1, "stuck.example"), await bulkhead.acquire(1, "stuck.example")]
        started = time.monotonic()
        with pytest.raises(RegistryError) as error:
            await bulkhead.acquire(1, "stuck.example")
        waited = time.monotonic() - started
        assert (error.value.category, error.value.retry_after) == ("busy", 10)
        assert 0.15 < waited < 1
        # Another team at the same host, and the same team at another host, go straight in.
        started = time.monotonic()
        others = [await bulkhead.acquire(2, "stuck.example"), await bulkhead.acquire(1, "healthy.example")]
        assert time.monotonic() - started < 0.05
        for release in held + others:
            release()
        assert bulkhead.in_use(1) == bulkhead.in_use(2) == bulkhead.in_use(1, "stuck.example") == 0

    _run(scenario())


def test_the_team_limit_counts_requests_to_all_its_upstreams():
    async def scenario():
        bulkhead = Bulkhead(per_team=3, per_host=2, wait=0.1)
        held = [await bulkhead.acquire(1, host) for host in ("a.example", "a.example", "b.example")]
        with pytest.raises(RegistryError):
            await bulkhead.acquire(1, "c.example")
        assert bulkhead.in_use(1) == 3 and bulkhead.in_use(1, "c.example") == 0
        held.pop()()
        held.append(await bulkhead.acquire(1, "c.example"))
        for release in held:
            release()
            release()  # twice is once
        assert bulkhead.in_use(1) == 0

    _run(scenario())


def test_a_waiting_request_gets_the_slot_that_frees_within_the_wait():
    async def scenario():
        bulkhead = Bulkhead(per_team=5, per_host=1, wait=2)
        release = await bulkhead.acquire(1, "a.example")
        asyncio.get_running_loop().call_later(0.1, release)
        started = time.monotonic()
        (await bulkhead.acquire(1, "a.example"))()
        assert time.monotonic() - started < 1

    _run(scenario())


def test_the_upstream_login_cache_stays_bounded():
    cache = upstream._auth_cache
    assert cache.maxsize == upstream.AUTH_CACHE_ENTRIES
    try:
        for i in range(cache.maxsize + 100):
            cache[(i, None, "acme/api")] = ("Bearer t", 0.0)
        assert len(cache) == cache.maxsize
        assert (0, None, "acme/api") not in cache and (cache.maxsize + 99, None, "acme/api") in cache
    finally:
        cache.clear()


@pytest.fixture
def silent_upstream():
    listener = SilentListener()
    yield listener
    listener.stop()


@pytest.fixture
def small_bulkhead(settings_for_subprocess):
    """Small limits and short waits for the portal server, so the test takes seconds."""
    settings_for_subprocess.update(
        UPSTREAM_MAX_CONNECTIONS_PER_HOST=str(PER_HOST),
        UPSTREAM_MAX_CONNECTIONS_PER_TEAM=str(2 * PER_HOST),
        UPSTREAM_POOL_WAIT=str(POOL_WAIT),
        UPSTREAM_FIRST_BYTE_TIMEOUT=str(FIRST_BYTE),
        UPSTREAM_CONNECT_TIMEOUT="2",
    )


def _registry_and_license(team, user, endpoint: str, app_slug: str, **credentials) -> str:
    actor = factories.actor_of(user, team)
    app = factories.make_app(team, app_slug)
    registry = registries.registry_create(
        actor=actor, provider="other", endpoint=endpoint, skip_validation=True, **credentials
    )
    factories.allow_whole_registry(actor, app, registry)
    return licenses.license_create(actor=actor, app=app, customer_name="Globex")[1]


async def _fire(url: str, headers: dict[str, str], count: int) -> list[tuple[float, httpx.Response | Exception]]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(i: int) -> tuple[float, httpx.Response | Exception]:
            started = time.monotonic()
            try:
                response = await client.get(url.format(i=i), headers=headers)
            except httpx.HTTPError as e:
                return time.monotonic() - started, e
            return time.monotonic() - started, response

        return await asyncio.gather(*(one(i) for i in range(count)))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_stuck_upstream_fails_only_its_own_teams_requests_while_another_team_pulls(
    silent_upstream, small_bulkhead, basic_registry, portal_server, team, admin, other_team, outsider
):
    stuck_id = _registry_and_license(other_team, outsider, silent_upstream.url, "stuck", username="u", password="p")
    healthy_id = _registry_and_license(
        team, admin, basic_registry.endpoint, "healthy",
        username=basic_registry.username, password=basic_registry.password,
    )  # fmt: skip
    # A tag each: many images of a stuck upstream, one request each (requests for the same
    # manifest wait for one fetch and share its failure: test_cache.py).
    stuck_url = f"{portal_server.url}/v2/{proxy_name('stuck', silent_upstream.netloc, 'acme/api')}/manifests/1.0.{{i}}"
    results: list = []
    firing = threading.Thread(
        target=lambda: results.extend(asyncio.run(_fire(stuck_url, basic(stuck_id), STUCK_REQUESTS))), daemon=True
    )
    firing.start()
    # Every stuck slot is taken and the rest of the 150 are waiting for one.
    deadline = time.monotonic() + 10
    while silent_upstream.connections < PER_HOST and time.monotonic() < deadline:
        time.sleep(0.05)

    image = basic_registry.images["api"]
    healthy = proxy_name("healthy", basic_registry.netloc, image.repository)
    started = time.monotonic()
    inspect = skopeo(
        "inspect", "--tls-verify=false", "--creds", f"{healthy_id}:{healthy_id}",
        f"docker://{portal_server.netloc}/{healthy}:{image.tag}", timeout=60,
    )  # fmt: skip
    took = time.monotonic() - started
    assert inspect.returncode == 0, inspect.stderr + portal_server.log()[-3000:]
    assert json.loads(inspect.stdout)["Digest"] == image.digest
    assert took < POOL_WAIT + FIRST_BYTE, f"the healthy team's inspect took {took:.1f}s"

    firing.join(timeout=FIRST_BYTE + 15)
    assert not firing.is_alive() and len(results) == STUCK_REQUESTS
    responses = [r for _, r in results if isinstance(r, httpx.Response)]
    assert len(responses) == STUCK_REQUESTS, [r for _, r in results if not isinstance(r, httpx.Response)][:3]
    for response in responses:
        assert response.status_code == 503, response.content
        assert int(response.headers["retry-after"]) > 0
        assert response.json()["errors"][0]["code"] == "UNAVAILABLE"
    busy = [(t, r) for t, r in results if "in progress" in r.json()["errors"][0]["message"]]
    # All but the ones holding a slot were turned away after the bounded wait, not left hanging;
    # those holding a slot gave up at the first-byte timeout.
    assert len(busy) >= STUCK_REQUESTS - PER_HOST
    assert all(t < POOL_WAIT + 4 for t, _ in busy), max(t for t, _ in busy)
    assert max(t for t, _ in results) < FIRST_BYTE + 4
    assert silent_upstream.connections == PER_HOST  # no request beyond the team's share reached it

    # The pull log says what the customer was answered: 503, busy or timed out, never 502.
    stuck = PullEvent.objects.filter(app__slug="stuck")
    assert wait_for(lambda: stuck.count() == STUCK_REQUESTS, timeout=5), stuck.count()
    logged = set(stuck.values_list("status", "reason"))
    assert {status for status, _ in logged} == {503}, logged
    assert {reason for _, reason in logged} == {"busy", "timeout"}, logged


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_teams_slots_are_free_again_once_its_stuck_requests_time_out(
    silent_upstream, small_bulkhead, portal_server, other_team, outsider
):
    """After the stuck requests time out, the team's slots are all free again."""
    stuck_id = _registry_and_license(other_team, outsider, silent_upstream.url, "stuck", username="u", password="p")
    url = f"{portal_server.url}/v2/{proxy_name('stuck', silent_upstream.netloc, 'acme/api')}/manifests/1.0.{{i}}"
    for _ in range(2):
        results = asyncio.run(_fire(url, basic(stuck_id), 3 * PER_HOST))
        assert all(isinstance(r, httpx.Response) and r.status_code == 503 for _, r in results)
    # Each round reached the upstream with exactly the team's share: nothing leaked a slot.
    assert silent_upstream.connections == 2 * PER_HOST


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_requests_for_one_manifest_of_a_stuck_upstream_share_one_connection_and_its_failure(
    silent_upstream, small_bulkhead, portal_server, other_team, outsider
):
    stuck_id = _registry_and_license(other_team, outsider, silent_upstream.url, "stuck", username="u", password="p")
    url = f"{portal_server.url}/v2/{proxy_name('stuck', silent_upstream.netloc, 'acme/api')}/manifests/1.0.0"
    results = asyncio.run(_fire(url, basic(stuck_id), 3 * PER_HOST))
    assert all(isinstance(r, httpx.Response) and r.status_code == 503 for _, r in results), results[:3]
    # One fetch waited out the first-byte timeout; the others got its answer when it ended,
    # instead of each asking the stuck upstream again after it.
    assert silent_upstream.connections == 1
    assert max(t for t, _ in results) < FIRST_BYTE + 3
