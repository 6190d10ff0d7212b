"""The proxy's pull-through cache against a real Distribution, a real uvicorn and real skopeo:
what is cached is served without asking the upstream, what is not cached is fetched once however
many ask for it, the gate (license, repository rules, pull log) runs on every request, and a team
never reaches another team's bytes."""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from delivery.models import CachedObject, CachedTag
from delivery.proxy import cache
from licenses import services as licenses
from licenses.models import PullEvent
from registries import services as registries
from tests import factories
from tests.proxy.conftest import basic, proxy_name, skopeo, wait_for
from tests.realparts.distribution import Distribution
from tests.realparts.env import child_env
from tests.realparts.images import build_image, push
from tests.realparts.loopback import Reply
from tests.realparts.portal_server import run_portal_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _pull(server, app, upstream: Distribution, image, license_id: str, into, *, tag: str | None = None):
    name = proxy_name(app.slug, upstream.netloc, image.repository)
    return skopeo(
        "copy", "--src-tls-verify=false", "--src-creds", f"{license_id}:{license_id}",
        f"docker://{server.netloc}/{name}:{tag or image.tag}", f"dir:{into}",
    )  # fmt: skip


def test_a_second_pull_comes_from_the_cache_and_every_request_is_still_logged(
    portal_server, own_upstream, actor, team, tmp_path
):
    app, registry, license, license_id = factories.licensed_images(actor, team, own_upstream, "cached")
    image = own_upstream.images["api"]
    first = _pull(portal_server, app, own_upstream, image, license_id, tmp_path / "one")
    assert first.returncode == 0, first.stderr + portal_server.log()
    for digest in image.layer_digests:
        assert own_upstream.answered_gets("blobs", digest) == 1
    assert wait_for(lambda: CachedObject.objects.filter(team=team, digest__in=image.layer_digests).count() == 2)
    manifest_gets = own_upstream.answered_gets("manifests", image.tag)

    second = _pull(portal_server, app, own_upstream, image, license_id, tmp_path / "two")
    assert second.returncode == 0, second.stderr
    for digest in image.layer_digests:
        assert own_upstream.answered_gets("blobs", digest) == 1, "a cached blob was fetched upstream again"
        pulled = (tmp_path / "two" / digest.partition(":")[2]).read_bytes()
        assert "sha256:" + hashlib.sha256(pulled).hexdigest() == digest
    # The tag was asked within PROXY_TAG_TTL: the manifest came from the cache too.
    assert own_upstream.answered_gets("manifests", image.tag) == manifest_gets
    # Both pulls are in the pull log, blob by blob (the layers and the config).
    blobs = 2 * (len(image.layer_digests) + 1)
    logged = lambda: PullEvent.objects.filter(license=license, kind="blob", status=200).count() == blobs  # noqa: E731
    assert wait_for(logged), list(PullEvent.objects.filter(license=license).values_list("kind", "status", "reason"))


def test_a_cached_manifest_whose_bytes_are_damaged_or_gone_is_fetched_from_the_upstream_again(
    portal_server, own_upstream, actor, team, tmp_path
):
    app, registry, license, license_id = factories.licensed_images(actor, team, own_upstream, "damaged")
    image = own_upstream.images["api"]
    name = proxy_name(app.slug, own_upstream.netloc, image.repository)
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json", **basic(license_id)}
    by_tag, by_digest = (f"{portal_server.url}/v2/{name}/manifests/{ref}" for ref in (image.tag, image.digest))
    assert httpx.get(by_tag, headers=accept, timeout=30).status_code == 200
    key = cache.object_key(team.pk, image.digest)
    assert wait_for(lambda: cache.store().stat(key) is not None)
    asked = own_upstream.answered_gets("manifests", image.tag)
    assert httpx.get(by_tag, headers=accept, timeout=30).status_code == 200
    assert own_upstream.answered_gets("manifests", image.tag) == asked  # from the cache

    damaged = tmp_path / "damaged"
    damaged.write_bytes(b'{"schemaVersion": 2, "layers": ["not what was pulled"]}')
    cache.store().put_file(key, damaged, move=True)
    answer = httpx.get(by_tag, headers=accept, timeout=30)
    assert answer.status_code == 200 and answer.headers["docker-content-digest"] == image.digest
    assert "sha256:" + hashlib.sha256(answer.content).hexdigest() == image.digest
    assert own_upstream.answered_gets("manifests", image.tag) == asked + 1
    assert "does not match its digest" in portal_server.log()
    assert httpx.get(by_tag, headers=accept, timeout=30).status_code == 200
    assert own_upstream.answered_gets("manifests", image.tag) == asked + 1  # stored anew, from the cache again

    cache.store().delete(key)
    answer = httpx.get(by_digest, headers=accept, timeout=30)
    assert answer.status_code == 200 and "sha256:" + hashlib.sha256(answer.content).hexdigest() == image.digest
    assert own_upstream.answered_gets("manifests", image.digest) == 1
    assert "unreadable" in portal_server.log()
    assert wait_for(lambda: cache.store().stat(key) is not None)
    assert httpx.get(by_digest, headers=accept, timeout=30).status_code == 200
    assert own_upstream.answered_gets("manifests", image.digest) == 1


def test_a_stale_tag_whose_cached_bytes_are_damaged_while_the_upstream_is_down_is_a_logged_503(
    portal_server, own_upstream, actor, team, tmp_path
):
    app, registry, license, license_id = factories.licensed_images(actor, team, own_upstream, "damaged-down")
    image = own_upstream.images["api"]
    url = f"{portal_server.url}/v2/{proxy_name(app.slug, own_upstream.netloc, image.repository)}/manifests/{image.tag}"
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json", **basic(license_id)}
    assert httpx.get(url, headers=accept, timeout=30).status_code == 200
    key = cache.object_key(team.pk, image.digest)
    assert wait_for(lambda: cache.store().stat(key) is not None)
    CachedTag.objects.update(fetched_at=timezone.now() - timedelta(hours=1))  # past PROXY_TAG_TTL: ask again
    damaged = tmp_path / "damaged"
    damaged.write_bytes(b'{"schemaVersion": 2, "layers": ["not what was pulled"]}')
    cache.store().put_file(key, damaged, move=True)
    own_upstream.stop()

    answer = httpx.get(url, headers=accept, timeout=30)
    assert answer.status_code == 503 and answer.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert "not what was pulled" not in answer.text
    logged = lambda: PullEvent.objects.filter(license=license, kind="manifest", status=503).exists()  # noqa: E731
    assert wait_for(logged), list(PullEvent.objects.filter(license=license).values_list("kind", "status", "reason"))
    assert "answering" not in portal_server.log(), "the log said the cache answered; it could not"


def test_a_revoked_license_is_refused_a_blob_the_cache_holds(portal_server, own_upstream, actor, team, tmp_path):
    app, registry, license, license_id = factories.licensed_images(actor, team, own_upstream, "revoked-cached")
    image = own_upstream.images["api"]
    assert _pull(portal_server, app, own_upstream, image, license_id, tmp_path / "one").returncode == 0
    licenses.license_revoke(actor=actor, license=license)
    name = proxy_name(app.slug, own_upstream.netloc, image.repository)
    url = f"{portal_server.url}/v2/{name}/blobs/{image.layer_digests[0]}"
    refused = wait_for(lambda: httpx.get(url, headers=basic(license_id), timeout=10).status_code == 401, timeout=5)
    assert refused, "the cache served a revoked license"


def test_cached_images_pull_while_the_upstream_is_stopped_and_others_get_a_clear_503(
    portal_server, own_upstream, actor, team, tmp_path
):
    app, registry, license, license_id = factories.licensed_images(
        actor, team, own_upstream, "stale", images=("api", "secret")
    )
    image = own_upstream.images["api"]
    assert _pull(portal_server, app, own_upstream, image, license_id, tmp_path / "warm").returncode == 0
    own_upstream.stop()

    # Still within the tag's TTL, and after it (the tag's last answer stands in): both pull.
    again = _pull(portal_server, app, own_upstream, image, license_id, tmp_path / "down")
    assert again.returncode == 0, again.stderr + portal_server.log()
    CachedTag.objects.update(fetched_at="2000-01-01T00:00:00Z")
    stale = _pull(portal_server, app, own_upstream, image, license_id, tmp_path / "stale")
    assert stale.returncode == 0, stale.stderr + portal_server.log()
    warned = lambda: PullEvent.objects.filter(  # noqa: E731
        license=license, kind="manifest", status=200, reason__startswith="served from the cache"
    ).exists()
    assert wait_for(warned), list(PullEvent.objects.filter(license=license).values_list("kind", "status", "reason"))

    # An image never pulled is not in the cache: the clear 503 as without one.
    secret = own_upstream.images["secret"]
    name = proxy_name(app.slug, own_upstream.netloc, secret.repository)
    response = httpx.get(f"{portal_server.url}/v2/{name}/manifests/{secret.tag}", headers=basic(license_id), timeout=30)
    assert response.status_code == 503, response.text
    assert response.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert "unavailable" in response.json()["errors"][0]["message"]


def test_concurrent_misses_of_one_manifest_and_one_blob_make_one_upstream_fetch_each(
    portal_server, own_upstream, actor, team, tmp_path
):
    big = build_image(tmp_path / "big", seed="big", layers=1, layer_size=8 * 1024 * 1024)
    pushed = push(big, own_upstream.netloc, "acme/big", creds=own_upstream.creds)
    own_upstream.images["big"] = pushed
    app, registry, license, license_id = factories.licensed_images(actor, team, own_upstream, "herd", images=("big",))
    name = proxy_name(app.slug, own_upstream.netloc, pushed.repository)
    digest = pushed.layer_digests[0]
    url = f"{portal_server.url}/v2/{name}/blobs/{digest}"

    async def pull_all(n: int) -> list[tuple[int, str]]:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=n)) as client:

            async def one():
                response = await client.get(url, headers=basic(license_id))
                return response.status_code, "sha256:" + hashlib.sha256(response.content).hexdigest()

            return await asyncio.gather(*(one() for _ in range(n)))

    async def manifests(n: int) -> list[tuple[int, str]]:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=n)) as client:

            async def one():
                response = await client.get(f"{portal_server.url}/v2/{name}/manifests/{pushed.tag}",
                                            headers=basic(license_id))  # fmt: skip
                return response.status_code, response.headers.get("docker-content-digest")

            return await asyncio.gather(*(one() for _ in range(n)))

    asked_before = own_upstream.answered_gets("manifests", pushed.tag)
    assert asyncio.run(manifests(12)) == [(200, pushed.digest)] * 12
    assert own_upstream.answered_gets("manifests", pushed.tag) - asked_before == 1, own_upstream.log_tail()

    results = asyncio.run(pull_all(12))
    assert results == [(200, digest)] * 12, results
    assert own_upstream.answered_gets("blobs", digest) == 1, own_upstream.log_tail()


def test_a_team_never_reaches_another_teams_cached_blob(
    portal_server, own_upstream, basic_registry, actor, team, other_team, outsider_actor, tmp_path
):
    # Acme pulls the api image from its own upstream: its layers are now in Acme's cache.
    app, registry, license, license_id = factories.licensed_images(actor, team, own_upstream, "owner")
    image = own_upstream.images["api"]
    assert _pull(portal_server, app, own_upstream, image, license_id, tmp_path / "one").returncode == 0
    digest = image.layer_digests[0]
    assert CachedObject.objects.filter(team=team, digest=digest).exists()

    # The other team's app pulls from a registry without that blob, asking for it by digest.
    other_app, _, _, other_id = factories.licensed_images(
        outsider_actor, other_team, basic_registry, "other-team", images=("secret",)
    )
    secret = basic_registry.images["secret"]
    name = proxy_name(other_app.slug, basic_registry.netloc, secret.repository)
    response = httpx.get(f"{portal_server.url}/v2/{name}/blobs/{digest}", headers=basic(other_id), timeout=30)
    assert response.status_code == 404, response.content[:300]
    assert response.json()["errors"][0]["code"] == "BLOB_UNKNOWN"


def test_a_repository_that_never_held_a_cached_blob_does_not_get_it(portal_server, own_upstream, actor, team, tmp_path):
    # One app of the team may pull both repositories; a blob cached from one is asked for
    # through the other, which does not hold it upstream.
    app, registry, license, license_id = factories.licensed_images(
        actor, team, own_upstream, "two-repos", images=("api", "secret")
    )
    image = own_upstream.images["api"]
    assert _pull(portal_server, app, own_upstream, image, license_id, tmp_path / "one").returncode == 0
    secret = own_upstream.images["secret"]
    name = proxy_name(app.slug, own_upstream.netloc, secret.repository)
    response = httpx.get(
        f"{portal_server.url}/v2/{name}/blobs/{image.layer_digests[0]}", headers=basic(license_id), timeout=30
    )
    assert response.status_code == 404, response.content[:300]


def test_a_tag_is_asked_again_once_its_ttl_has_passed(tmp_path, own_upstream, actor, team, oci_layouts):
    app, registry, license, license_id = factories.licensed_images(actor, team, own_upstream, "ttl")
    image = own_upstream.images["api"]
    name = proxy_name(app.slug, own_upstream.netloc, image.repository)
    with run_portal_server(tmp_path, child_env(PROXY_TAG_TTL="2")) as server:
        url = f"{server.url}/v2/{name}/manifests/{image.tag}"
        first = httpx.get(url, headers=basic(license_id), timeout=30)
        assert first.headers["docker-content-digest"] == image.digest
        # The vendor moves the tag to another image.
        moved = push(oci_layouts["secret"], own_upstream.netloc, image.repository, creds=own_upstream.creds)
        assert moved.digest != image.digest
        within = httpx.get(url, headers=basic(license_id), timeout=30)
        assert within.headers["docker-content-digest"] == image.digest  # the remembered answer
        after = wait_for(
            lambda: (
                httpx.get(url, headers=basic(license_id), timeout=30).headers["docker-content-digest"] == moved.digest
            ),
            timeout=6,
            interval=0.5,
        )
        assert after, "the tag's answer was kept past PROXY_TAG_TTL"


def test_the_cache_keeps_to_its_budget_evicting_the_least_recently_used(
    tmp_path, own_upstream, actor, team, oci_layouts
):
    app, registry, license, license_id = factories.licensed_images(
        actor, team, own_upstream, "budget", images=("api", "secret")
    )
    api, secret = own_upstream.images["api"], own_upstream.images["secret"]
    # Room for about one image's layers (two of 32 KiB each) and its small manifest and config.
    with run_portal_server(tmp_path, child_env(PROXY_CACHE_MAX_BYTES=str(80 * 1024))) as server:
        assert _pull(server, app, own_upstream, api, license_id, tmp_path / "api").returncode == 0
        assert wait_for(lambda: CachedObject.objects.filter(digest__in=api.layer_digests).count() == 2)
        assert _pull(server, app, own_upstream, secret, license_id, tmp_path / "secret").returncode == 0
        kept = wait_for(lambda: CachedObject.objects.filter(digest__in=secret.layer_digests).count() == 2)
        assert kept
        assert cache.total_bytes() <= 80 * 1024
        assert not CachedObject.objects.filter(digest__in=api.layer_digests).exists(), "the older image stayed"
        for digest in api.layer_digests:
            assert cache.store().stat(cache.object_key(team.pk, digest)) is None


def test_a_blob_that_does_not_match_its_digest_never_enters_the_cache(portal_server, actor, team, loopback_server):
    up = loopback_server()
    layer = b"the real layer" * 4096
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    up.on(f"/v2/acme/api/blobs/{digest}", Reply(200, {"Content-Type": "application/octet-stream"}, layer[:-1] + b"X"))
    app = factories.make_app(team, "lying")
    registry = registries.registry_create(
        actor=actor, provider="other", endpoint=up.url, username="vendor", password="secret", skip_validation=True
    )
    factories.allow_whole_registry(actor, app, registry)
    license, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    url = f"{portal_server.url}/v2/{proxy_name(app.slug, up.netloc, 'acme/api')}/blobs/{digest}"

    for _ in range(2):
        with httpx.stream("GET", url, headers=basic(license_id), timeout=30) as response:
            assert response.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):  # cut before its last piece
                response.read()
    assert not CachedObject.objects.filter(digest=digest).exists()
    assert cache.store().stat(cache.object_key(team.pk, digest)) is None
    assert len([r for r in up.requests if "/blobs/" in r.path]) == 2, "the bad blob was served from somewhere"
    events = wait_for(lambda: list(PullEvent.objects.filter(kind="blob").values_list("status", "reason")))
    assert events and all(status == 502 and "digest" in reason for status, reason in events), events


def test_a_rate_limited_upstream_answers_a_tag_from_its_last_digest_with_a_warning(
    tmp_path, actor, team, loopback_server
):
    up = loopback_server()
    manifest = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}'
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    typed = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    # Docker Hub's way: the first pull is answered, the next ones get 429.
    up.on("/v2/acme/api/manifests/1.0.0", Reply(200, typed, manifest), Reply.rate_limited())
    app = factories.make_app(team, "limited")
    registry = registries.registry_create(
        actor=actor, provider="other", endpoint=up.url, username="vendor", password="secret", skip_validation=True
    )
    factories.allow_whole_registry(actor, app, registry)
    license, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    url_of = lambda server: f"{server.url}/v2/{proxy_name(app.slug, up.netloc, 'acme/api')}/manifests/1.0.0"  # noqa: E731

    with run_portal_server(tmp_path, child_env(PROXY_TAG_TTL="0")) as server:
        first = httpx.get(url_of(server), headers=basic(license_id), timeout=30)
        assert first.status_code == 200 and first.headers["docker-content-digest"] == digest
        limited = httpx.get(url_of(server), headers=basic(license_id), timeout=30)
        assert limited.status_code == 200, limited.text
        assert limited.content == manifest and limited.headers["docker-content-digest"] == digest
        assert len([r for r in up.requests if r.path.endswith("/manifests/1.0.0")]) == 2  # asked, and it said 429
        warned = wait_for(
            lambda: PullEvent.objects.filter(
                license=license, status=200, reason="served from the cache: the upstream registry failed (rate_limited)"
            ).exists()
        )
        assert warned, list(PullEvent.objects.values_list("status", "reason"))

    # Without the cache the same answer is the upstream's 429, as before.
    with run_portal_server(tmp_path, child_env(PROXY_CACHE_MAX_BYTES="0")) as server:
        refused = httpx.get(url_of(server), headers=basic(license_id), timeout=30)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "30"


def test_a_client_hanging_up_during_a_read_of_a_cached_blob_closes_the_file_after_that_read(monkeypatch):
    """The hang-up has to land while a read runs in the worker thread (a bucket's reads run there),
    which no real client can time, so the storage here is a stand-in whose reads are slow (the
    one mock in this file).
    Closing the reader during that read raised "generator already executing" and left it open."""
    from delivery.proxy import blobs

    closed = []

    def slow_chunks():
        try:
            for _ in range(5):
                time.sleep(0.2)
                yield b"x"
        finally:
            closed.append(True)

    monkeypatch.setattr(
        cache, "store", lambda: type("Store", (), {"kind": "s3", "read": lambda self, *a: slow_chunks()})()
    )

    async def hang_up():
        chunks = await blobs._store_chunks("team-1/sha256/ab/ab")

        async def consume():
            async for _ in chunks:
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(hang_up())
    assert closed == [True]
