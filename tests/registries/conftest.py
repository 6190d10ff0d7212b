from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.realparts.distribution import Distribution
from tests.realparts.fixtures_registry import SEEDED_REPOSITORIES
from tests.realparts.images import push
from tests.realparts.tokenissuer import TokenIssuer

# moto's ECR token is base64("AWS:<registry id>-auth-token") for the default account.
MOTO_ECR_PASSWORD = "123456789012-auth-token"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _seed(registry: Distribution, layouts) -> Distribution:
    for name, repository in SEEDED_REPOSITORIES.items():
        registry.images[name] = push(
            layouts[name], registry.netloc, repository, creds=registry.creds, docker_v2s2=name == "v2s2"
        )
    return registry


@pytest.fixture(scope="session")
def ecr_basic_registry(tmp_path_factory, oci_layouts) -> Iterator[Distribution]:
    """A registry that accepts what moto's GetAuthorizationToken hands out (user AWS)."""
    registry = Distribution(
        tmp_path_factory.mktemp("distribution-ecr"), "htpasswd", username="AWS", password=MOTO_ECR_PASSWORD
    ).start()
    yield _seed(registry, oci_layouts)
    registry.close()


class _GoogleTokens(dict):
    """Users for the token issuer: the vendor who seeds images, and `oauth2accesstoken` with
    whatever access token the loopback Google endpoint issued last."""

    def __init__(self, endpoint, seed_user: str, seed_password: str) -> None:
        super().__init__({seed_user: seed_password})
        self.endpoint = endpoint

    def get(self, user, default=None):
        if user == "oauth2accesstoken":
            return self.endpoint.issued[-1] if self.endpoint.issued else default
        return super().get(user, default)


@pytest.fixture(scope="session")
def gcr_token_registry(tmp_path_factory, oci_layouts, google_token_endpoint_server) -> Iterator[Distribution]:
    """A token-auth registry whose issuer accepts the access tokens google-auth obtained."""
    users = _GoogleTokens(google_token_endpoint_server, "vendor", "seed-password-1")
    issuer = TokenIssuer(users=users).start()
    registry = Distribution(
        tmp_path_factory.mktemp("distribution-gcr"),
        "token",
        username="vendor",
        password="seed-password-1",
        issuer=issuer,
    ).start()
    yield _seed(registry, oci_layouts)
    registry.close()
