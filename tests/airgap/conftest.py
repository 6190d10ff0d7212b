"""Fixtures of the air-gap tests: a ready release of Acme's app on stable with a READY bundle
in the portal's storage (tests/airgap/stored.py), and the license that downloads it."""

from __future__ import annotations

import secrets

import pytest

from tests.airgap import stored


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
