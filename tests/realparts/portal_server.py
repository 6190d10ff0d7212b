"""The portal itself served by uvicorn (ASGI, as in production) on the test database."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.realparts.distribution import free_port
from tests.realparts.env import child_env

ROOT = Path(__file__).resolve().parent.parent.parent


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


@pytest.fixture
def portal_server(transactional_db, tmp_path, settings_for_subprocess) -> PortalServer:
    """uvicorn serving portal.asgi on a free loopback port; stopped after the test."""
    port = free_port()
    log_path = tmp_path / "portal-server.log"
    with open(log_path, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "portal.asgi:application", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=settings_for_subprocess,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = PortalServer(port, process, log_path)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{server.url}/healthz", timeout=1)  # noqa: S310 (loopback)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"portal server did not start:\n{server.log()}")
            time.sleep(0.2)
    yield server
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def settings_for_subprocess(transactional_db) -> dict[str, str]:
    return child_env()
