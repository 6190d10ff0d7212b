"""The build on a real Celery worker: asked for as a vendor would, killed with SIGKILL while it
streams a large layer (behind a slow link, so the kill lands mid-blob), then asked for again:
the second build reuses every blob the first one finished and the bundle verifies."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from delivery.airgap import build as airgap_build
from delivery.airgap.bundles import STALE_AFTER, bundle_request
from delivery.models import AirgapBundle, BundleStatus
from tests.airgap.conftest import resolved_release, stored_path, verify
from tests.celery_worker import celery_worker, wait_for
from tests.realparts.env import child_env
from tests.realparts.images import build_image, push
from tests.realparts.slowlink import SlowLink

pytestmark = [pytest.mark.slow]

LAYER_BYTES = 24 * 1024 * 1024
LINK_RATE = 6 * 1024 * 1024  # bytes per second per connection: a layer takes ~4 s


@pytest.fixture(scope="session")
def large_image(tmp_path_factory, open_registry):
    """airgap/large:1.0.0 on the open registry: two layers of ~24 MiB of random bytes."""
    image = build_image(tmp_path_factory.mktemp("large"), seed="large", layers=2, layer_size=LAYER_BYTES)
    push(image, open_registry.netloc, "airgap/large")
    return image


@pytest.fixture
def slow_link(open_registry):
    link = SlowLink(open_registry.port, LINK_RATE)
    yield link
    link.stop()


def _partials(stage) -> list:
    return [p for p in stage.glob("blobs/sha256/*.partial") if p.stat().st_size > 1024 * 1024]


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_build_leaves_its_blobs_and_the_next_build_reuses_them(
    actor, app, airgap, private_queue, large_image, slow_link
):
    release = resolved_release(
        actor, app, {"source": "public", "name": f"{slow_link.netloc}/airgap/large", "tag": "1.0.0"}
    )
    env = child_env(AIRGAP_WORK_DIR=str(airgap / "work"), AIRGAP_STORAGE_URL=f"file://{airgap / 'store'}")

    with celery_worker(airgap / "worker-1.log", queue=private_queue, env=env) as worker:
        bundle = bundle_request(actor=actor, release=release)
        stage = airgap / "work" / f"bundle-{bundle.pk}"
        assert wait_for(lambda: bool(_partials(stage)), timeout=60), (airgap / "worker-1.log").read_text()
        worker.process.kill()
        worker.process.wait()
    bundle.refresh_from_db()
    assert (bundle.status, bundle.attempts) == (BundleStatus.BUILDING, 1)
    finished = [p for p in stage.glob("blobs/sha256/*") if not p.name.endswith(".partial")]
    finished_bytes = sum(p.stat().st_size for p in finished)
    assert len(finished) >= 2  # the manifest and the config at least

    # Asked for again once the build counts as stale (bundle_request's rule). The killed worker's
    # run lock would lapse LOCK_SECONDS after its last renewal; the test does not wait for it.
    AirgapBundle.objects.filter(pk=bundle.pk).update(started_at=timezone.now() - STALE_AFTER - timedelta(minutes=1))
    cache.delete(airgap_build.lock_key(bundle.pk))
    with celery_worker(airgap / "worker-2.log", queue=private_queue, env=env):
        bundle_request(actor=actor, release=release)
        done = wait_for(
            lambda: AirgapBundle.objects.get(pk=bundle.pk).status in (BundleStatus.READY, BundleStatus.FAILED),
            timeout=120,
        )
        assert done, (airgap / "worker-2.log").read_text()

    bundle.refresh_from_db()
    assert bundle.status == BundleStatus.READY, bundle.error
    assert bundle.attempts == 2
    assert bundle.bytes_reused == finished_bytes > 0  # fetched once, by the killed worker
    assert bundle.bytes_done == bundle.bytes_total
    verified = verify(stored_path(bundle))
    assert verified.images[0].digest == release.images.get().resolved_digest
