"""The build's other upstreams and storage: ECR through moto's tokens (a refused token minted
again once), GCR through the loopback OAuth endpoint, the portal's private registry
(`replicated`), and an S3 bucket on moto's server."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.airgap.storage import bundle_store
from delivery.models import BundleStatus
from portal import crypto
from registries import services as registries
from registries.models import ExternalRegistry
from tests import factories
from tests.airgap.conftest import build, resolved_release, skopeo_raw, stored_path, verify

pytestmark = [pytest.mark.slow]


@pytest.mark.django_db
def test_ecr_and_gcr_images_are_bundled_with_minted_tokens_and_a_refused_token_is_minted_again(
    actor,
    app,
    airgap,
    moto_ecr,
    ecr_basic_registry,
    gcr_token_registry,
    service_account_key,
):
    ecr = registries.registry_create(
        actor=actor, provider="ecr", endpoint=ecr_basic_registry.endpoint, region="us-east-1", name="ecr",
        username="AKIAIOSFODNN7EXAMPLE", secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        skip_validation=True,
    )  # fmt: skip
    registries.registry_create(
        actor=actor, provider="gcr", endpoint=gcr_token_registry.endpoint, name="gcr",
        service_account_key=service_account_key().text, skip_validation=True,
    )  # fmt: skip
    release = resolved_release(
        actor, app,
        {"source": "ecr", "name": "acme/api", "tag": "1.0.0"},
        {"source": "gcr", "name": "acme/multi", "tag": "1.0.0"},
    )  # fmt: skip
    # The cached ECR token stops working (expired early, or revoked upstream).
    stale = crypto.encrypt(json.dumps({"username": "AWS", "password": "stale"}), aad=registries._aad(ecr, "minted"))
    ExternalRegistry.objects.filter(pk=ecr.pk).update(
        minted_token=stale, minted_token_expires_at=timezone.now() + timedelta(hours=1)
    )

    bundle = build(actor, release)

    assert bundle.status == BundleStatus.READY, bundle.error
    path = stored_path(bundle)
    verified = verify(path)
    assert [i.digest for i in verified.images] == [
        ecr_basic_registry.images["api"].digest,
        gcr_token_registry.images["multi"].digest,
    ]
    for image in release.images.all():
        assert hashlib.sha256(skopeo_raw(path, image.reference)).hexdigest() == image.resolved_digest.split(":")[1]
    ecr.refresh_from_db()
    cached = json.loads(crypto.decrypt(ecr.minted_token, aad=registries._aad(ecr, "minted")))
    assert cached["password"] != "stale"


@pytest.mark.django_db(transaction=True)
def test_a_replicated_image_is_bundled_from_the_private_registry(
    private_registry, settings, actor, app, admin, team, oci_layouts, airgap
):
    settings.REGISTRY_URL = f"http://{private_registry.netloc}"
    settings.REGISTRY_HOST = private_registry.netloc
    creds = f"admin@acme.test:{factories.user_token(admin, team)}"
    layout = oci_layouts["multi"]
    private_registry.push(layout.source, f"{app.slug}/worker:1.4.2", creds)
    release = resolved_release(actor, app, {"source": "replicated", "name": "worker", "tag": "1.4.2"})

    bundle = build(actor, release)

    assert bundle.status == BundleStatus.READY, bundle.error
    path = stored_path(bundle)
    verified = verify(path)
    (image,) = verified.images
    assert image.reference == f"{private_registry.netloc}/{app.slug}/worker:1.4.2"
    assert image.digest == layout.digest
    assert verified.metadata["images"][0]["repository"] == f"{app.slug}/worker"
    assert hashlib.sha256(skopeo_raw(path, image.reference)).hexdigest() == layout.digest.split(":")[1]
    assert verified.blobs == 7  # the index, and two images of manifest, config and one layer


@pytest.fixture
def s3_bucket(moto_ecr, monkeypatch, settings):
    """A bucket on moto's server (the one the ECR tests start), and the bundles stored in it."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_ecr.url)
    name = f"bundles-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=name)
    settings.AIRGAP_STORAGE_URL = f"s3://{name}/portal/bundles"
    return name


@pytest.mark.django_db
def test_a_bundle_is_stored_in_an_s3_bucket(actor, app, airgap, open_registry, s3_bucket, tmp_path):
    import boto3

    release = resolved_release(
        actor, app, {"source": "public", "name": f"{open_registry.netloc}/acme/multi", "tag": "1.0.0"}
    )

    bundle = build(actor, release)

    assert bundle.status == BundleStatus.READY, bundle.error
    assert bundle_store().kind == "s3"
    key = f"portal/bundles/team-{app.team_id}/release-{release.pk}.tar"
    downloaded = tmp_path / "downloaded.tar"
    boto3.client("s3", region_name="us-east-1").download_file(s3_bucket, key, str(downloaded))
    data = downloaded.read_bytes()
    assert (len(data), hashlib.sha256(data).hexdigest()) == (bundle.size, bundle.sha256)
    verified = verify(downloaded)
    assert verified.images[0].digest == open_registry.images["multi"].digest
    assert not (airgap / "work" / f"bundle-{bundle.pk}").exists()


@pytest.mark.django_db
def test_a_bucket_that_refuses_the_upload_fails_the_build_and_keeps_the_staged_blobs(
    actor, app, airgap, open_registry, moto_ecr, monkeypatch, settings
):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_ecr.url)
    settings.AIRGAP_STORAGE_URL = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/bundles"
    release = resolved_release(
        actor, app, {"source": "public", "name": f"{open_registry.netloc}/acme/api", "tag": "1.0.0"}
    )

    bundle = build(actor, release)

    assert bundle.status == BundleStatus.FAILED
    assert bundle.error.startswith("The bundle could not be stored: bucket no-such-bucket-")
    staged = airgap / "work" / f"bundle-{bundle.pk}" / "blobs" / "sha256"
    assert len(list(staged.iterdir())) == 4  # manifest, config, two layers: a retry fetches nothing
