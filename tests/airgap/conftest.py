"""What the air-gap tests share. For the build: a work folder and a file store of the test's
own, releases made and resolved as a vendor's would be, and images for the cases the seeded
registries lack (a layer shared by two images, a large layer). For the download and the
vendor's surfaces: a ready release on stable with a READY bundle in the portal's storage
(tests/airgap/stored.py), and bundle storage in moto's S3."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest

from delivery.airgap.bundles import bundle_request
from delivery.airgap.storage import bundle_store
from licenses import releases
from licenses.licensefile import signing_key
from licenses.models import Release, ReleaseStatus
from portal_cli import bundleformat as fmt
from registries import release_resolve
from tests.airgap import stored
from tests.realparts.images import LayoutImage, build_image, push
from tests.registries.conftest import ecr_basic_registry, gcr_token_registry  # noqa: F401 (fixtures)
from tests.releasefiles import settings_file


@pytest.fixture
def airgap(settings, tmp_path):
    """The build's work folder and the bundle store, both under this test's tmp_path."""
    settings.AIRGAP_WORK_DIR = tmp_path / "work"
    settings.AIRGAP_STORAGE_URL = f"file://{tmp_path / 'store'}"
    return tmp_path


def resolved_release(actor, app, *images: dict, files: dict[str, str] | None = None) -> Release:
    """A release listing `images`, created and resolved as the worker would (and ready)."""
    release, _ = releases.release_create(
        actor=actor, app=app, files={"app.yaml": settings_file(*images), **(files or {})}
    )
    release_resolve.release_resolve(release.pk)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.READY, [f.message for f in release.findings.all()]
    return release


def build(actor, release: Release):
    """Ask for the release's bundle as a vendor would, then build it here (no worker)."""
    from delivery.airgap.build import bundle_build

    bundle = bundle_request(actor=actor, release=release)
    return bundle_build(bundle.pk)


def stored_path(bundle) -> Path:
    return bundle_store().path(bundle.storage_key)


def verify(path: Path) -> fmt.VerifiedBundle:
    return fmt.verify_bundle(str(path), signing_key().public_key())


def skopeo_raw(bundle_path: Path, reference: str) -> bytes:
    """The manifest skopeo reads for `reference` in the bundle, as an oci-archive."""
    result = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci-archive:{bundle_path}:{reference}"], capture_output=True, timeout=120
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


@pytest.fixture(scope="session")
def shared_layer_images(tmp_path_factory, open_registry) -> dict[str, LayoutImage]:
    """acme/base (two layers) and acme/plus (the same two layers and a third) on the open registry."""
    root = tmp_path_factory.mktemp("shared-layers")
    base = build_image(root / "base", seed="shared", layers=2)
    plus = build_image(root / "plus", seed="shared", layers=3)
    assert base.layer_digests == plus.layer_digests[:2]
    push(base, open_registry.netloc, "airgap/base")
    push(plus, open_registry.netloc, "airgap/plus")
    return {"base": base, "plus": plus}


@pytest.fixture
def release(actor, app):
    return stored.ready_release(actor, app)


@pytest.fixture
def bundle(release, tmp_path):
    """A READY bundle of `release`, a few hundred KiB: ranges cross the 1 MiB read chunks only
    in the tests that ask for a larger one."""
    return stored.store_ready_bundle(release, tmp_path / "bundles")


@pytest.fixture
def s3_bundles(moto_ecr, monkeypatch, settings):
    """Bundle storage in a bucket of moto's S3 server (the same moto process as the ECR tests):
    AIRGAP_STORAGE_URL=s3://…, boto3 sent to moto by AWS_ENDPOINT_URL_S3."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_ecr.url)
    bucket = f"bundles-{secrets.token_hex(4)}"
    boto3.client("s3", endpoint_url=moto_ecr.url).create_bucket(Bucket=bucket)
    settings.AIRGAP_STORAGE_URL = f"s3://{bucket}/airgap"
    return settings.AIRGAP_STORAGE_URL
