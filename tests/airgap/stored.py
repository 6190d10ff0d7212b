"""READY bundles for tests of the doors (download, pages, API, CLI) without a build: a release
with no images (ready at once), a signed bundle of test images written by tests/airgap/bundles.py,
put in the portal's bundle storage, and the AirgapBundle row the builder would leave."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

from django.utils import timezone

from accounts.access import Actor
from delivery.airgap.storage import bundle_key, bundle_store
from delivery.models import AirgapBundle, BundleStatus
from licenses import licensefile, releases
from licenses.models import App, Release
from portal_cli import bundleformat as fmt
from tests.airgap.bundles import write_bundle
from tests.realparts.images import build_image

NO_IMAGES = "images: []\n"
DEPLOYMENT = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: airgap}\n"


def ready_release(actor: Actor, app: App, *, promote_to: str = "stable", version: str = "1.0") -> Release:
    """A release that is ready at once (it lists no images), promoted to `promote_to`."""
    files = {"app.yaml": NO_IMAGES, "config.yaml": DEPLOYMENT}
    release, _ = releases.release_create(actor=actor, app=app, files=files, version=version, promote_to=promote_to)
    return release


def bundle_file(directory: Path, release: Release, *, layer_size: int = 64 * 1024) -> Path:
    """A signed bundle of one test image (two layers of `layer_size` bytes) for `release`."""
    directory.mkdir(parents=True, exist_ok=True)
    image = build_image(directory / f"image-{release.pk}", seed=f"{release.app.slug}-{release.sequence}",
                        layer_size=layer_size)  # fmt: skip
    return write_bundle(
        directory / f"bundle-{release.pk}.tar",
        [(f"quay.io/acme/api:{release.sequence}.0", image)],
        signing_key=licensefile.signing_key(),
        files={"config.yaml": DEPLOYMENT},
        app=release.app.slug,
        sequence=release.sequence,
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def store_ready_bundle(release: Release, directory: Path, *, layer_size: int = 64 * 1024) -> AirgapBundle:
    """Write, store and record a READY bundle of `release`, as a finished build would."""
    path = bundle_file(directory, release, layer_size=layer_size)
    key = bundle_key(release.app.team_id, release.pk)
    bundle_store().put_file(key, path)
    with tarfile.open(path) as tar:
        blobs = sum(1 for m in tar.getmembers() if m.name.startswith(fmt.BLOBS))
    now = timezone.now()
    bundle, _ = AirgapBundle.objects.update_or_create(
        release=release,
        defaults={
            "status": BundleStatus.READY, "images_total": 1, "images_done": 1, "blob_count": blobs,
            "size": path.stat().st_size, "sha256": sha256_of(path), "storage_key": key, "error": "",
            "attempts": 1, "requested_by": "admin@acme.test", "started_at": now, "finished_at": now,
        },
    )  # fmt: skip
    return bundle
