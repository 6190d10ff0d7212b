"""The proxy cache's bookkeeping (delivery/proxy/cache.py) on real storage: files under tmp_path
and a bucket of moto's S3 server. The least recently used objects go first and their bytes go
with them, a budget of 0 turns the cache off, keys are per team, and a deleted team or registry
takes its objects' bytes. Then Range requests on a cached blob through a live portal, answered
as the upstream Distribution answers the same ranges."""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.utils import timezone

from delivery.models import CachedLink, CachedObject, CachedTag
from delivery.proxy import cache
from delivery.routing import Upstream
from delivery.tasks import proxy_cache_sweep_task
from portal import metrics, ocispec
from portal.objectstore import StorageError
from registries import services as registries
from tests import factories
from tests.proxy.conftest import basic, proxy_name, wait_for
from tests.realparts.env import child_env
from tests.realparts.portal_server import ROOT, run_portal_server

pytestmark = pytest.mark.django_db(transaction=True)  # a row's bytes go when its delete commits

KiB = 1024


@pytest.fixture(params=["file", "s3"])
def store(request, settings, tmp_path):
    """The cache's storage: files under tmp_path, or a fresh bucket of moto's S3 server."""
    if request.param == "file":
        settings.PROXY_CACHE_URL = f"file://{tmp_path / 'cache'}"
    else:
        import boto3

        moto = request.getfixturevalue("moto_ecr")
        request.getfixturevalue("monkeypatch").setenv("AWS_ENDPOINT_URL_S3", moto.url)
        bucket = f"cache-{secrets.token_hex(4)}"
        boto3.client("s3", endpoint_url=moto.url).create_bucket(Bucket=bucket)
        settings.PROXY_CACHE_URL = f"s3://{bucket}/proxy"
    settings.PROXY_CACHE_STAGING_DIR = tmp_path / "staging"
    assert cache.store().kind == request.param
    return cache.store()


def _upstream(actor, repository: str = "acme/api", endpoint: str = "http://127.0.0.1:9") -> Upstream:
    registry = registries.registry_create(
        actor=actor, provider="other", endpoint=endpoint, username="vendor", password="secret", skip_validation=True
    )
    return Upstream(registry=registry, repository=repository)


def _add(upstream: Upstream, body: bytes, tmp_path: Path, kind: str = cache.BLOB) -> str:
    """Put `body` in the cache as a blob (or `kind`) that `upstream` served; its digest."""
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    path = tmp_path / f"incoming-{secrets.token_hex(4)}"
    path.write_bytes(body)
    cache.add(upstream, digest, kind, path, len(body), ocispec.OCI_MANIFEST if kind == cache.MANIFEST else "")
    assert not path.exists()
    return digest


def _stored(team_id: int, digest: str) -> bool:
    return cache.store().stat(cache.object_key(team_id, digest)) is not None


def _counted(counter) -> float:
    """This process's count of a prometheus_client Counter."""
    return next(sample.value for sample in counter.collect()[0].samples if sample.name.endswith("_total"))


def _used(digest: str, ago: timedelta) -> None:
    CachedObject.objects.filter(digest=digest).update(last_used_at=timezone.now() - ago)


def test_the_least_recently_used_object_goes_first_and_its_bytes_with_it(store, settings, actor, team, tmp_path):
    settings.PROXY_CACHE_MAX_BYTES = 30 * KiB  # three objects of 10 KiB
    upstream = _upstream(actor)
    first, second, third = (_add(upstream, secrets.token_bytes(10 * KiB), tmp_path) for _ in range(3))
    _used(first, timedelta(hours=3))
    _used(second, timedelta(hours=2))
    _used(third, timedelta(hours=1))
    # The oldest of them is pulled again: it is the most recently used now.
    found = cache.find(upstream, first, cache.BLOB)
    assert found is not None and found.linked and found.size == 10 * KiB

    fourth = _add(upstream, secrets.token_bytes(10 * KiB), tmp_path)
    kept = set(CachedObject.objects.values_list("digest", flat=True))
    assert kept == {first, third, fourth}
    assert cache.total_bytes() == 30 * KiB
    assert wait_for(lambda: not _stored(team.pk, second)), "an evicted object's bytes stayed in the storage"
    assert all(_stored(team.pk, d) for d in kept)

    # A smaller budget: the oldest go, in order, until it fits.
    evictions, evicted_bytes = _counted(metrics.CACHE_EVICTIONS), _counted(metrics.CACHE_EVICTED_BYTES)
    assert cache.evict(15 * KiB) == 2
    assert _counted(metrics.CACHE_EVICTIONS) - evictions == 2
    assert _counted(metrics.CACHE_EVICTED_BYTES) - evicted_bytes == 20 * KiB
    assert set(CachedObject.objects.values_list("digest", flat=True)) == {fourth}
    assert wait_for(lambda: not _stored(team.pk, first) and not _stored(team.pk, third))
    assert _stored(team.pk, fourth)


def test_a_budget_of_0_turns_the_cache_off(store, settings, actor, team, tmp_path):
    upstream = _upstream(actor)
    digest = _add(upstream, b"layer" * 1000, tmp_path)
    manifest = _add(upstream, b'{"layers": []}', tmp_path, cache.MANIFEST)
    cache.remember_tag(upstream, "1.0.0", manifest)
    assert cache.enabled() and cache.find(upstream, digest, cache.BLOB) is not None
    assert cache.find_by_tag(upstream, "1.0.0")[1].digest == manifest

    settings.PROXY_CACHE_MAX_BYTES = 0
    assert not cache.enabled()
    assert cache.find(upstream, digest, cache.BLOB) is None
    assert cache.find_by_tag(upstream, "1.0.0") == (None, None)


def test_a_tag_is_looked_up_with_the_cached_manifest_it_named_and_whether_that_is_recent(
    store, settings, actor, tmp_path
):
    settings.PROXY_TAG_TTL = 60
    upstream = _upstream(actor)
    sibling = Upstream(registry=upstream.registry, repository="acme/worker")
    manifest = _add(sibling, b'{"schemaVersion": 2, "layers": []}', tmp_path, cache.MANIFEST)
    assert cache.find_by_tag(upstream, "1.0.0") == (None, None)  # never asked

    cache.remember_tag(upstream, "1.0.0", manifest)
    found, tag = cache.find_by_tag(upstream, "1.0.0")
    assert (tag.digest, tag.fresh) == (manifest, True)
    assert found.digest == manifest and found.key == cache.object_key(upstream.registry.team_id, manifest)
    assert not found.linked  # the tag is this repository's; the manifest came from the sibling's
    assert cache.find_by_tag(sibling, "1.0.0") == (None, None)  # a tag is one repository's
    assert cache.find_by_tag(upstream, "2.0.0") == (None, None)

    CachedTag.objects.update(fetched_at=timezone.now() - timedelta(seconds=61))
    found, tag = cache.find_by_tag(upstream, "1.0.0")
    assert found.digest == manifest and not tag.fresh  # kept, to answer while the upstream is down

    cache.remember_tag(upstream, "1.0.0", "sha256:" + "0" * 64)  # it names one not cached
    assert cache.find_by_tag(upstream, "1.0.0") == (None, None)


def test_keys_are_per_team_and_one_teams_copy_is_not_the_others(
    store, actor, outsider_actor, team, other_team, tmp_path
):
    body = b"the same layer, pulled by two vendors" * 100
    ours, theirs = _upstream(actor), _upstream(outsider_actor)
    digest = _add(ours, body, tmp_path)
    assert _add(theirs, body, tmp_path) == digest
    key, other_key = cache.object_key(team.pk, digest), cache.object_key(other_team.pk, digest)
    assert key.startswith(f"team-{team.pk}/sha256/") and other_key.startswith(f"team-{other_team.pk}/sha256/")
    assert key != other_key
    assert CachedObject.objects.filter(digest=digest).count() == 2
    # Each team's look-up finds its own row (the key names its team), never the other's.
    assert cache.find(ours, digest, cache.BLOB).key == key
    assert cache.find(theirs, digest, cache.BLOB).key == other_key

    CachedObject.objects.filter(team=other_team).delete()
    assert wait_for(lambda: not _stored(other_team.pk, digest))
    assert _stored(team.pk, digest) and b"".join(cache.store().read(key)) == body
    assert cache.find(theirs, digest, cache.BLOB) is None


def test_a_deleted_team_takes_its_cached_bytes(store, outsider_actor, actor, other_team, team, tmp_path):
    theirs, ours = _upstream(outsider_actor), _upstream(actor)
    gone = [_add(theirs, secrets.token_bytes(2 * KiB), tmp_path) for _ in range(3)]
    cache.remember_tag(theirs, "1.0.0", gone[0])
    kept = _add(ours, secrets.token_bytes(2 * KiB), tmp_path)

    other_team.delete()
    assert not CachedObject.objects.filter(digest__in=gone).exists()
    assert not CachedTag.objects.filter(digest=gone[0]).exists()
    assert wait_for(lambda: not any(_stored(other_team.pk, d) for d in gone)), "a deleted team's bytes stayed"
    assert _stored(team.pk, kept)


def test_a_deleted_registry_takes_the_bytes_only_it_served(store, actor, team, tmp_path):
    leaving, staying = _upstream(actor, endpoint="http://127.0.0.1:9"), _upstream(actor, endpoint="http://127.0.0.2:9")
    only_there = _add(leaving, secrets.token_bytes(2 * KiB), tmp_path)
    shared = secrets.token_bytes(2 * KiB)
    both = _add(leaving, shared, tmp_path)
    assert _add(staying, shared, tmp_path) == both  # the same object, linked to both registries
    cache.remember_tag(leaving, "1.0.0", only_there)

    registries.registry_delete(actor=actor, registry=leaving.registry)
    assert not CachedTag.objects.exists()
    assert set(CachedObject.objects.values_list("digest", flat=True)) == {both}
    assert list(CachedLink.objects.values_list("registry_id", flat=True)) == [staying.registry.pk]
    assert wait_for(lambda: not _stored(team.pk, only_there)), "a deleted registry's bytes stayed"
    assert _stored(team.pk, both)


def _put(key: str, body: bytes, tmp_path: Path) -> None:
    """Bytes straight into the storage, as a process that died before recording them left them."""
    path = tmp_path / f"left-{secrets.token_hex(4)}"
    path.write_bytes(body)
    cache.store().put_file(key, path)


def test_bytes_no_row_records_are_swept_once_old_and_nothing_else_is(
    store, actor, outsider_actor, team, other_team, tmp_path
):
    recorded = _add(_upstream(actor), b"a layer the cache recorded" * 100, tmp_path)
    orphan = "sha256:" + hashlib.sha256(b"stored, never recorded").hexdigest()
    _put(cache.object_key(team.pk, orphan), b"stored, never recorded", tmp_path)
    # The other team's copy of our recorded digest: a row is per team, so no row records it.
    _put(cache.object_key(other_team.pk, recorded), b"a layer the cache recorded" * 100, tmp_path)
    foreign = [f"team-{team.pk}/bundle-7.tar", "docker/registry/v2/blobs/sha256/ab/abcd/data", "notes.txt"]
    for key in foreign:  # a bucket shared with bundles or Distribution
        _put(key, b"not the cache's", tmp_path)

    assert cache.sweep_orphans() == 0, "bytes younger than an hour may be an add between its two steps"
    assert _stored(team.pk, orphan)

    assert cache.sweep_orphans(older_than=-60) == 2  # -60: everything stored counts as old
    assert not _stored(team.pk, orphan) and not _stored(other_team.pk, recorded)
    assert cache.read_all(cache.object_key(team.pk, recorded)) == b"a layer the cache recorded" * 100
    assert all(store.stat(key) is not None for key in foreign), "the sweep touched what the cache did not write"
    assert cache.sweep_orphans(older_than=-60) == 0


def test_a_partial_copy_left_in_the_folder_store_is_swept_even_when_its_object_is_recorded(
    settings, actor, team, tmp_path
):
    settings.PROXY_CACHE_URL = f"file://{tmp_path / 'cache'}"
    digest = _add(_upstream(actor), b"a layer" * 100, tmp_path)
    key = cache.object_key(team.pk, digest)
    partial = cache.store().path(key).with_name(Path(key).name + ".partial")
    partial.write_bytes(b"a lay")  # the copy stopped here when its process died

    assert cache.sweep_orphans(older_than=-60) == 1
    assert not partial.exists() and cache.read_all(key) == b"a layer" * 100


def test_the_sweep_says_which_bucket_it_could_not_list(settings, moto_ecr, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_ecr.url)
    settings.PROXY_CACHE_URL = "s3://no-such-bucket/proxy"
    with pytest.raises(
        StorageError, match=r"bucket no-such-bucket: listing s3://no-such-bucket/proxy/ failed: NoSuchBucket"
    ):
        cache.sweep_orphans()


def test_beat_sweeps_the_proxy_cache_every_six_hours(settings, actor, team, tmp_path):
    from portal.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["sweep-proxy-cache"]
    assert entry == {"task": "delivery.tasks.proxy_cache_sweep_task", "schedule": 6 * 3600}
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks
    settings.PROXY_CACHE_URL = f"file://{tmp_path / 'cache'}"
    _put(cache.object_key(team.pk, "sha256:" + "ab" * 32), b"left over", tmp_path)
    old = time.time() - cache.ORPHAN_SECONDS - 60
    os.utime(cache.store().path(cache.object_key(team.pk, "sha256:" + "ab" * 32)), (old, old))
    assert proxy_cache_sweep_task() == "1 removed"
    assert proxy_cache_sweep_task() == "0 removed"


@pytest.mark.slow
def test_a_team_deleted_by_a_process_that_never_served_the_proxy_takes_its_cached_bytes(
    store, settings, outsider_actor, other_team, tmp_path
):
    digest = _add(_upstream(outsider_actor), secrets.token_bytes(2 * KiB), tmp_path)
    # `manage.py shell` loads the apps but none of the proxy's views (nor does a Celery worker).
    code = f"from accounts.models import Team; Team.objects.get(pk={other_team.pk}).delete()"
    deleted = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT, env=child_env(PROXY_CACHE_URL=settings.PROXY_CACHE_URL), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert deleted.returncode == 0, deleted.stderr
    assert not CachedObject.objects.filter(digest=digest).exists()
    assert not _stored(other_team.pk, digest), "the team's rows went, its cached bytes stayed"


# --- Range requests on a cached blob, through a live portal ----------------------------------


def _distribution_blob(upstream, repository: str, digest: str, headers: dict[str, str]) -> httpx.Response:
    """Distribution's answer; the body only of a 206 (its 416 states the blob's length as
    Content-Length, then sends Go's 33-byte "invalid range" text)."""
    url = f"{upstream.url}/v2/{repository}/blobs/{digest}"
    with httpx.stream("GET", url, headers=headers, auth=(upstream.username, upstream.password), timeout=30) as answer:
        if answer.status_code == 206:
            answer.read()
    return answer


RANGES = ["bytes=0-99", "bytes=100-", "bytes=-100", "bytes=1000-999999", "bytes=0-0"]


@pytest.mark.slow
def test_ranges_of_a_cached_blob_are_answered_as_the_upstream_answers_them(
    store, own_upstream, actor, team, tmp_path, settings
):
    image = own_upstream.images["api"]
    app, registry, license, license_id = factories.licensed_images(actor, team, own_upstream, "ranges")
    digest = image.layer_digests[0]
    with run_portal_server(tmp_path, child_env(PROXY_CACHE_URL=settings.PROXY_CACHE_URL)) as server:
        _compare_ranges(server, own_upstream, image, license_id, app, team, digest)


def _compare_ranges(server, own_upstream, image, license_id: str, app, team, digest: str) -> None:
    url = f"{server.url}/v2/{proxy_name(app.slug, own_upstream.netloc, image.repository)}/blobs/{digest}"
    whole = httpx.get(url, headers=basic(license_id), timeout=30)
    assert whole.status_code == 200 and "sha256:" + hashlib.sha256(whole.content).hexdigest() == digest
    assert wait_for(lambda: CachedObject.objects.filter(team=team, digest=digest).exists())
    size = len(whole.content)
    unsatisfiable = f"bytes={size}-"
    expected = {r: _distribution_blob(own_upstream, image.repository, digest, {"Range": r}) for r in RANGES}
    expected[unsatisfiable] = _distribution_blob(own_upstream, image.repository, digest, {"Range": unsatisfiable})
    own_upstream.stop()  # from here on, only the cache can answer

    for header in RANGES:
        answer = httpx.get(url, headers={**basic(license_id), "Range": header}, timeout=30)
        upstream = expected[header]
        assert upstream.status_code == 206, (header, upstream.status_code)
        assert (answer.status_code, answer.headers["content-range"], answer.content) == (
            206, upstream.headers["content-range"], upstream.content,
        ), header  # fmt: skip
        assert int(answer.headers["content-length"]) == len(upstream.content)
    assert expected["bytes=-100"].headers["content-range"] == f"bytes {size - 100}-{size - 1}/{size}"

    refused = httpx.get(url, headers={**basic(license_id), "Range": unsatisfiable}, timeout=30)
    assert expected[unsatisfiable].status_code == 416
    assert refused.status_code == 416
    assert refused.headers["content-range"] == expected[unsatisfiable].headers["content-range"] == f"bytes */{size}"


@pytest.mark.slow
def test_with_a_budget_of_0_every_pull_goes_upstream_and_nothing_is_kept(
    store, own_upstream, actor, team, tmp_path, settings
):
    image = own_upstream.images["api"]
    app, registry, license, license_id = factories.licensed_images(actor, team, own_upstream, "no-cache")
    digest = image.layer_digests[0]
    with run_portal_server(
        tmp_path,
        child_env(
            PROXY_CACHE_URL=settings.PROXY_CACHE_URL,
            PROXY_CACHE_STAGING_DIR=str(settings.PROXY_CACHE_STAGING_DIR),
            PROXY_CACHE_MAX_BYTES="0",
        ),
    ) as server:
        url = f"{server.url}/v2/{proxy_name(app.slug, own_upstream.netloc, image.repository)}/blobs/{digest}"
        for _ in range(2):
            response = httpx.get(url, headers=basic(license_id), timeout=30)
            assert response.status_code == 200 and "sha256:" + hashlib.sha256(response.content).hexdigest() == digest
    assert own_upstream.answered_gets("blobs", digest) == 2
    assert not CachedObject.objects.exists()
    assert not _stored(team.pk, digest)
    assert not list(Path(settings.PROXY_CACHE_STAGING_DIR).glob("*")), "a blob was staged"
