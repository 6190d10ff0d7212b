"""Registry fixtures: real Distribution instances seeded with skopeo, and a scriptable loopback server.

Registered with `pytest_plugins = ["tests.realparts.fixtures_registry"]`. One registry per
auth mode per session, started on first use. Tests using them are `@pytest.mark.slow`.

Each registry fixture yields a running `Distribution` whose `.images` maps a short name to
the `PushedImage` skopeo stored:
    "api"    acme/api:1.0.0              two-layer OCI image
    "multi"  acme/multi:1.0.0            OCI index, linux/amd64 + linux/arm64
    "v2s2"   acme/v2s2:1.0.0             Docker schema 2 (skopeo --format v2s2)
    "secret" acme/secret-internal:1.0.0  two-layer OCI image, for isolation tests
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.realparts.distribution import AuthMode, Distribution
from tests.realparts.images import LayoutImage, build_image, build_index, push
from tests.realparts.loopback import LoopbackServer

SEEDED_REPOSITORIES = {
    "api": "acme/api",
    "multi": "acme/multi",
    "v2s2": "acme/v2s2",
    "secret": "acme/secret-internal",
}


@pytest.fixture(scope="session")
def oci_layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LayoutImage]:
    """The images above as OCI layout directories, built once per session."""
    root = tmp_path_factory.mktemp("oci-layouts")
    return {
        "api": build_image(root / "api", seed="api"),
        "multi": build_index(root / "multi", seed="multi"),
        "v2s2": build_image(root / "v2s2", seed="v2s2"),
        "secret": build_image(root / "secret", seed="secret-internal"),
    }


def start_seeded_registry(workdir: Path, mode: AuthMode, layouts: dict[str, LayoutImage]) -> Distribution:
    registry = Distribution(workdir, mode).start()
    try:
        for name, repository in SEEDED_REPOSITORIES.items():
            registry.images[name] = push(
                layouts[name], registry.netloc, repository, creds=registry.creds, docker_v2s2=name == "v2s2"
            )
    except BaseException:
        registry.close()
        raise
    return registry


@pytest.fixture
def own_upstream(tmp_path: Path, oci_layouts: dict[str, LayoutImage]) -> Iterator[Distribution]:
    """A seeded Distribution (htpasswd) of this test's own, to stop or change."""
    registry = start_seeded_registry(tmp_path / "upstream", "htpasswd", oci_layouts)
    yield registry
    registry.close()


@pytest.fixture(scope="session")
def basic_registry(
    tmp_path_factory: pytest.TempPathFactory, oci_layouts: dict[str, LayoutImage]
) -> Iterator[Distribution]:
    """Distribution with htpasswd (bcrypt) basic auth; `.username`/`.password` are valid."""
    registry = start_seeded_registry(tmp_path_factory.mktemp("distribution-basic"), "htpasswd", oci_layouts)
    yield registry
    registry.close()


@pytest.fixture(scope="session")
def token_registry(
    tmp_path_factory: pytest.TempPathFactory, oci_layouts: dict[str, LayoutImage]
) -> Iterator[Distribution]:
    """Distribution with token auth; `.issuer` is the loopback TokenIssuer (realm on 127.0.0.1)."""
    registry = start_seeded_registry(tmp_path_factory.mktemp("distribution-token"), "token", oci_layouts)
    yield registry
    registry.close()


@pytest.fixture(scope="session")
def open_registry(
    tmp_path_factory: pytest.TempPathFactory, oci_layouts: dict[str, LayoutImage]
) -> Iterator[Distribution]:
    """Distribution without auth."""
    registry = start_seeded_registry(tmp_path_factory.mktemp("distribution-open"), "none", oci_layouts)
    yield registry
    registry.close()


@pytest.fixture
def loopback_server() -> Iterator[Callable[..., LoopbackServer]]:
    """A factory: `loopback_server(host="127.0.0.1", port=0)` starts a LoopbackServer, stopped after the test."""
    servers: list[LoopbackServer] = []

    def start(host: str = "127.0.0.1", port: int = 0) -> LoopbackServer:
        server = LoopbackServer(host, port).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
