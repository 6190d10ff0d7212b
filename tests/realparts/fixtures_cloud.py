"""Pytest fixtures for the cloud-auth real parts (register with `pytest_plugins`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.realparts.cloud import MotoServer, ServiceAccountKey, TokenEndpoint, free_port


@pytest.fixture(scope="session")
def moto_ecr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto_server on loopback, with boto3 pointed at it and kept away from real AWS."""
    server = MotoServer.start(tmp_path_factory.mktemp("moto"))
    env = pytest.MonkeyPatch()
    # boto3 honours AWS_ENDPOINT_URL_<SERVICE>; the rest keeps boto3 from reading this
    # machine's AWS config or asking the instance metadata service for credentials.
    env.setenv("AWS_ENDPOINT_URL_ECR", server.url)
    env.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    env.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    env.setenv("AWS_EC2_METADATA_DISABLED", "true")
    env.setenv("AWS_CONFIG_FILE", "/dev/null")
    env.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    env.delenv("AWS_PROFILE", raising=False)
    try:
        yield server
    finally:
        env.undo()
        server.stop()


@pytest.fixture
def ecr_iam_keys(moto_ecr: MotoServer) -> Iterator[tuple[str, str]]:
    """(access key id, secret) of a moto IAM user allowed to get ECR tokens, with auth enforced.

    moto accepts any keys by default; while this fixture is active it checks them like AWS.
    """
    keys = moto_ecr.create_iam_keys()
    moto_ecr.set_auth(enforced=True)
    try:
        yield keys
    finally:
        moto_ecr.set_auth(enforced=False)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (for connection-refused cases)."""
    return free_port()


@pytest.fixture(scope="session")
def google_token_endpoint_server() -> Iterator[TokenEndpoint]:
    endpoint = TokenEndpoint()
    try:
        yield endpoint
    finally:
        endpoint.stop()


@pytest.fixture
def google_token_endpoint(google_token_endpoint_server: TokenEndpoint) -> TokenEndpoint:
    """The loopback OAuth token endpoint, with its request log and failure mode reset."""
    google_token_endpoint_server.reset()
    return google_token_endpoint_server


@pytest.fixture
def service_account_key(google_token_endpoint: TokenEndpoint) -> Callable[..., ServiceAccountKey]:
    """Factory: `service_account_key(token_uri=None, register=True, **json_overrides)`."""

    def make(**kwargs: Any) -> ServiceAccountKey:
        return google_token_endpoint.make_key(**kwargs)

    return make
