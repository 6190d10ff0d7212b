"""The portal itself served by uvicorn (ASGI, as in production) on the test database."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.realparts.distribution import free_port
from tests.realparts.env import child_env, stop, wait_for_http

ROOT = Path(__file__).resolve().parent.parent.parent
UVICORN_ARGS = ("--host", "127.0.0.1", "--no-proxy-headers")


@dataclass
class PortalServer:
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.netloc}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_portal(env: dict[str, str], log_path: Path, *extra_args: str) -> PortalServer:
    """uvicorn serving portal.asgi with `env` (and `extra_args`, e.g. --workers 2) on a free
    loopback port, answering; the caller stops it."""
    port = free_port()
    with open(log_path, "w") as out:
        process = subprocess.Popen(
            # --no-proxy-headers as in the Procfile: X-Forwarded-* are the portal's to judge
            # (PORTAL_TRUSTED_PROXIES), not uvicorn's, which believes any local peer by default.
            [
                sys.executable,
                "-m",
                "uvicorn",
                "portal.asgi:application",
                *UVICORN_ARGS,
                "--port",
                str(port),
                *extra_args,
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = PortalServer(port, process, log_path)
    try:
        wait_for_http(f"{server.url}/healthz", process, what="portal server", log=server.log)
    except BaseException:
        stop(process)
        raise
    return server


@contextmanager
def run_portal_server(tmp_path: Path, env: dict[str, str], *extra_args: str) -> Iterator[PortalServer]:
    """uvicorn serving portal.asgi as the Procfile starts it, with `env` and `extra_args`; its
    output in `tmp_path/portal-server.log`."""
    server = start_portal(env, tmp_path / "portal-server.log", *extra_args)
    try:
        yield server
    finally:
        stop(server.process)


@pytest.fixture
def portal_server(transactional_db, tmp_path, settings_for_subprocess) -> Iterator[PortalServer]:
    """uvicorn serving portal.asgi on a free loopback port; stopped after the test."""
    with run_portal_server(tmp_path, settings_for_subprocess) as server:
        yield server


@pytest.fixture
def settings_for_subprocess(transactional_db) -> dict[str, str]:
    return child_env()
