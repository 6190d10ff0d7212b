"""Building air-gap bundles against real registries: Distribution with basic, token and no auth
(skopeo-seeded), every image pulled by the digest the release resolved, indexes whole or only
the app's platforms, shared blobs once; skopeo reads each image back from the bundle."""

from __future__ import annotations

import hashlib
import json
import tarfile

import pytest

from accounts.models import AuditEvent
from delivery.airgap import build as airgap_build
from delivery.models import AirgapBundle, BundleStatus
from portal_cli import bundleformat as fmt
from tests import factories
from tests.airgap.conftest import build, resolved_release, skopeo_raw, stored_path, verify

pytestmark = [pytest.mark.slow]

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  template:
    spec:
      containers:
      - name: api
        image: %s
      - name: sidecar
        image: %s
"""


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.django_db
def test_every_image_is_bundled_by_its_resolved_digest_and_the_bundle_verifies(
    actor, app, airgap, basic_registry, token_registry, open_registry
):
    factories.connect_registry(actor, basic_registry, name="basic")
    factories.connect_registry(actor, token_registry, name="token")
    deployment = DEPLOYMENT % (f"{basic_registry.netloc}/acme/api:1.0.0", f"{open_registry.netloc}/acme/multi@sha256:x")
    release = resolved_release(
        actor, app,
        {"source": "basic", "name": "acme/api", "tag": "1.0.0"},
        {"source": "token", "name": "acme/multi", "tag": "1.0.0"},
        {"source": "basic", "name": "acme/v2s2", "tag": "1.0.0"},
        {"source": "public", "name": f"{open_registry.netloc}/acme/multi", "digest": open_registry.images["multi"].digest},
        files={"manifests/deploy.yaml": deployment},
    )  # fmt: skip
    images = list(release.images.order_by("position"))

    bundle = build(actor, release)

    assert bundle.status == BundleStatus.READY, bundle.error
    path = stored_path(bundle)
    verified = verify(path)
    assert [i.reference for i in verified.images] == [i.reference for i in images]
    assert [i.digest for i in verified.images] == [i.resolved_digest for i in images]
    assert verified.files == ["install/app.yaml", "install/manifests/deploy.yaml"]
    # skopeo reads each image from the tar by its reference, byte for byte what was resolved.
    # (skopeo 1.9 looks up only OCI-typed index.json entries: the Docker schema 2 image is
    # checked by its blob instead.)
    for image in images:
        if image.media_type.startswith("application/vnd.oci."):
            assert sha256(skopeo_raw(path, image.reference)) == image.resolved_digest
    with fmt.BundleReader(str(path)) as reader:
        assert sha256(reader.read(fmt.blob_path(images[2].resolved_digest))) == images[2].resolved_digest
    # The row says what is in the store.
    data = path.read_bytes()
    assert (bundle.size, bundle.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert bundle.blob_count == verified.blobs
    assert bundle.storage_key == f"team-{app.team_id}/release-{release.pk}.tar"
    assert (bundle.images_total, bundle.images_done, bundle.attempts) == (4, 4, 1)
    assert bundle.bytes_done == bundle.bytes_total > 0 and bundle.bytes_reused == 0
    assert bundle.started_at and bundle.finished_at and bundle.error == ""
    assert not (airgap / "work" / f"bundle-{bundle.pk}").exists()
    # images.json: where each goes in the customer's registry, and the names the manifests use.
    api, multi, v2s2, public_multi = verified.metadata["images"]
    assert (api["repository"], api["spellings"]) == ("acme/api", [f"{basic_registry.netloc}/acme/api"])
    assert (public_multi["repository"], public_multi["spellings"]) == (
        "acme/multi", [f"{open_registry.netloc}/acme/multi"]
    )  # fmt: skip
    assert multi["spellings"] == [] and multi["platforms"] == ["linux/amd64", "linux/arm64"]
    assert v2s2["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert api["size"] == sum(verified_size for d, verified_size in _blob_sizes(path, api["digest"]).items())
    event = AuditEvent.objects.get(action="airgap.build_finish")
    assert (event.actor, event.target, event.detail["status"]) == ("air-gap builder", f"{app.slug}#1", "ready")


def _blob_sizes(path, digest: str) -> dict[str, int]:
    with fmt.BundleReader(str(path)) as reader:
        image = next(i for i in reader.images() if i.digest == digest)
        return {d: size for d, _, size in fmt.walk(reader, image.digest, image.media_type, image.size)}


@pytest.mark.django_db
def test_a_layer_shared_by_two_images_is_fetched_and_stored_once(
    actor, app, airgap, open_registry, shared_layer_images
):
    base, plus = shared_layer_images["base"], shared_layer_images["plus"]
    release = resolved_release(
        actor, app,
        {"source": "public", "name": f"{open_registry.netloc}/airgap/base", "tag": "1.0.0"},
        {"source": "public", "name": f"{open_registry.netloc}/airgap/plus", "tag": "1.0.0"},
    )  # fmt: skip

    bundle = build(actor, release)

    assert bundle.status == BundleStatus.READY, bundle.error
    path = stored_path(bundle)
    verify(path)
    with tarfile.open(path) as tar:
        names = [m.name for m in tar.getmembers()]
    for layer in plus.layer_digests:
        assert names.count(fmt.blob_path(layer)) == 1
    # Two manifests, two configs, three distinct layers.
    assert bundle.blob_count == 2 + 2 + 3
    sizes = {**_blob_sizes(path, release.images.get(position=0).resolved_digest)}
    sizes.update(_blob_sizes(path, release.images.get(position=1).resolved_digest))
    assert bundle.bytes_total == bundle.bytes_done == sum(sizes.values())
    assert base.layer_digests[0] in sizes


@pytest.mark.django_db
def test_the_apps_platforms_keep_only_those_children_under_a_new_index(actor, app, airgap, open_registry):
    pushed = open_registry.images["multi"]
    app.airgap_platforms = ["linux/arm64"]
    app.save()
    release = resolved_release(
        actor, app, {"source": "public", "name": f"{open_registry.netloc}/acme/multi", "tag": "1.0.0"}
    )
    image = release.images.get()

    bundle = build(actor, release)

    assert bundle.status == BundleStatus.READY, bundle.error
    assert bundle.platforms == ["linux/arm64"]
    path = stored_path(bundle)
    verified = verify(path)
    (entry,) = verified.metadata["images"]
    assert entry["resolvedDigest"] == image.resolved_digest == pushed.digest
    assert entry["digest"] != pushed.digest and entry["platforms"] == ["linux/arm64"]
    index = json.loads(skopeo_raw(path, image.reference))
    assert sha256(skopeo_raw(path, image.reference)) == entry["digest"]
    original = json.loads(pushed.manifest)
    arm64 = [m for m in original["manifests"] if m["platform"]["architecture"] == "arm64"]
    assert index["manifests"] == arm64 and index["mediaType"] == original["mediaType"]
    # The amd64 child and its blobs are not in the bundle.
    amd64 = next(m["digest"] for m in original["manifests"] if m["platform"]["architecture"] == "amd64")
    with fmt.BundleReader(str(path)) as reader:
        assert reader.size_of(amd64) is None
        assert reader.size_of(arm64[0]["digest"]) == arm64[0]["size"]


@pytest.mark.django_db
def test_a_chosen_platform_an_image_lacks_fails_the_build_naming_the_image_and_its_platforms(
    actor, app, airgap, open_registry
):
    app.airgap_platforms = ["linux/amd64", "linux/s390x"]
    app.save()
    release = resolved_release(
        actor, app,
        {"source": "public", "name": f"{open_registry.netloc}/acme/api", "tag": "1.0.0"},
        {"source": "public", "name": f"{open_registry.netloc}/acme/multi", "tag": "1.0.0"},
    )  # fmt: skip

    bundle = build(actor, release)

    assert bundle.status == BundleStatus.FAILED
    assert f"{open_registry.netloc}/acme/api:1.0.0 has no linux/s390x (it has linux/amd64)" in bundle.error
    assert bundle.finished_at is not None and bundle.storage_key == ""
    event = AuditEvent.objects.get(action="airgap.build_finish")
    assert event.detail["status"] == "failed" and "s390x" in event.detail["error"]


@pytest.mark.django_db
def test_an_image_gone_from_its_registry_fails_the_build_with_the_image_named(actor, app, airgap, basic_registry):
    factories.connect_registry(actor, basic_registry, name="basic")
    release = resolved_release(
        actor, app,
        {"source": "basic", "name": "acme/api", "tag": "1.0.0"},
        {"source": "basic", "name": "acme/v2s2", "tag": "1.0.0"},
    )  # fmt: skip
    # The vendor deleted the manifest upstream after the release resolved: its digest is unknown now.
    gone = "sha256:" + "0" * 64
    release.images.filter(position=1).update(resolved_digest=gone)

    bundle = build(actor, release)

    assert bundle.status == BundleStatus.FAILED
    assert bundle.error.startswith("basic/acme/v2s2:1.0.0 is not in ")
    assert gone in bundle.error and "build the bundle again" in bundle.error
    # What was fetched stays staged for the next try.
    staged = airgap / "work" / f"bundle-{bundle.pk}" / "blobs" / "sha256"
    assert (staged / release.images.get(position=0).resolved_digest.split(":")[1]).is_file()


@pytest.mark.django_db
def test_refused_credentials_fail_the_build_in_resolvings_words(actor, app, airgap, basic_registry):
    from registries import services as registries

    registry = factories.connect_registry(actor, basic_registry, name="basic")
    release = resolved_release(actor, app, {"source": "basic", "name": "acme/api", "tag": "1.0.0"})
    registries.registry_update(actor=actor, registry=registry, password="changed-since", skip_validation=True)

    bundle = build(actor, release)

    assert bundle.status == BundleStatus.FAILED
    assert bundle.error.startswith(f"basic/acme/api:1.0.0: {basic_registry.url} refused registry “basic”'s credentials")
    assert "changed-since" not in bundle.error


@pytest.mark.django_db
def test_a_blob_that_does_not_match_its_digest_fails_the_build_as_a_digest_mismatch(
    actor, app, airgap, loopback_server, oci_layouts
):
    """The loopback server serves the api image's manifest and config as they are and its
    first layer damaged: what a registry with a corrupted store would send."""
    from tests.realparts.loopback import Reply

    layout = oci_layouts["api"]
    blobs = layout.directory / "blobs" / "sha256"
    manifest = (blobs / layout.digest.split(":")[1]).read_bytes()
    data = json.loads(manifest)
    server = loopback_server()
    oci_type = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    server.on("/v2/", Reply(200))
    server.on("/v2/acme/api/manifests/1.0.0", Reply(200, oci_type, manifest))
    server.on(f"/v2/acme/api/manifests/{layout.digest}", Reply(200, oci_type, manifest))
    config = data["config"]["digest"]
    server.on(f"/v2/acme/api/blobs/{config}", Reply(200, {}, (blobs / config.split(":")[1]).read_bytes()))
    for layer in data["layers"]:
        body = (blobs / layer["digest"].split(":")[1]).read_bytes()
        server.on(f"/v2/acme/api/blobs/{layer['digest']}", Reply(200, {}, bytes([body[0] ^ 1]) + body[1:]))
    release = resolved_release(actor, app, {"source": "public", "name": f"{server.netloc}/acme/api", "tag": "1.0.0"})

    bundle = build(actor, release)

    assert bundle.status == BundleStatus.FAILED
    assert bundle.error.startswith(f"{server.netloc}/acme/api:1.0.0: digest mismatch: ")
    staged = airgap / "work" / f"bundle-{bundle.pk}" / "blobs" / "sha256"
    assert sorted(p.name for p in staged.iterdir()) == sorted([layout.digest.split(":")[1], config.split(":")[1]]), (
        bundle.error
    )


@pytest.mark.django_db
def test_an_unreachable_upstream_leaves_the_bundle_queued_until_the_last_try(
    actor, app, airgap, basic_registry, closed_port
):
    from registries.models import ExternalRegistry

    registry = factories.connect_registry(actor, basic_registry, name="basic")
    release = resolved_release(actor, app, {"source": "basic", "name": "acme/api", "tag": "1.0.0"})
    ExternalRegistry.objects.filter(pk=registry.pk).update(endpoint=f"http://127.0.0.1:{closed_port}")
    bundle = AirgapBundle.objects.get(pk=build_request(actor, release))

    with pytest.raises(airgap_build.TryAgain):
        airgap_build.bundle_build(bundle.pk, final=False)
    bundle.refresh_from_db()
    assert bundle.status == BundleStatus.QUEUED and f"127.0.0.1:{closed_port}" in bundle.error

    airgap_build.bundle_build(bundle.pk, final=True)
    bundle.refresh_from_db()
    assert (bundle.status, bundle.attempts) == (BundleStatus.FAILED, 2)
    assert bundle.error.startswith("basic/acme/api:1.0.0: ") and "could not be reached" in bundle.error


def build_request(actor, release) -> int:
    from delivery.airgap.bundles import bundle_request

    return bundle_request(actor=actor, release=release).pk


@pytest.mark.django_db
def test_the_task_tries_an_unreachable_upstream_again_before_failing_the_bundle(
    actor, app, airgap, basic_registry, closed_port, monkeypatch
):
    """Run eagerly (`apply`): Celery then runs each retry at once instead of after its countdown."""
    from delivery import tasks
    from registries.models import ExternalRegistry

    registry = factories.connect_registry(actor, basic_registry, name="basic")
    release = resolved_release(actor, app, {"source": "basic", "name": "acme/api", "tag": "1.0.0"})
    ExternalRegistry.objects.filter(pk=registry.pk).update(endpoint=f"http://127.0.0.1:{closed_port}")
    bundle_id = build_request(actor, release)
    calls = []
    real = airgap_build.bundle_build

    def counted(bundle_id, *, final):
        calls.append(final)
        return real(bundle_id, final=final)

    monkeypatch.setattr(airgap_build, "bundle_build", counted)

    tasks.airgap_build_task.apply(args=[bundle_id])

    assert calls == [False] * tasks.BUILD_RETRIES + [True]
    bundle = AirgapBundle.objects.get(pk=bundle_id)
    assert (bundle.status, bundle.attempts) == (BundleStatus.FAILED, tasks.BUILD_RETRIES + 1)


@pytest.mark.django_db
def test_a_build_already_running_is_not_started_twice(actor, app, airgap, open_registry):
    from django.core.cache import cache

    release = resolved_release(
        actor, app, {"source": "public", "name": f"{open_registry.netloc}/acme/api", "tag": "1.0.0"}
    )
    bundle_id = build_request(actor, release)
    cache.add(airgap_build.lock_key(bundle_id), 1, timeout=60)
    try:
        assert airgap_build.bundle_build(bundle_id) is None
    finally:
        cache.delete(airgap_build.lock_key(bundle_id))
    assert AirgapBundle.objects.get(pk=bundle_id).status == BundleStatus.QUEUED

    # A message delivered again after the build finished changes nothing.
    first = airgap_build.bundle_build(bundle_id)
    again = airgap_build.bundle_build(bundle_id)
    assert first.status == again.status == BundleStatus.READY and again.attempts == 1
