"""The portal's private registry: Distribution configured by `manage.py registry_config`,
with the portal (uvicorn, `portal_server`) as its token realm and notification target."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.realparts.distribution import REGISTRY_BINARY, free_port

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class PrivateRegistry:
    port: int
    process: subprocess.Popen
    log_path: Path
    config_path: Path

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def private_registry(portal_server, settings_for_subprocess, tmp_path) -> PrivateRegistry:
    port = free_port()
    config = tmp_path / "registry.yml"
    env = {**settings_for_subprocess, "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(tmp_path / "data")}
    subprocess.run(
        [sys.executable, "manage.py", "registry_config", "--output", str(config), "--addr", f"127.0.0.1:{port}",
         "--portal-url", portal_server.url],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    log_path = tmp_path / "registry.log"
    with open(log_path, "w") as out:
        process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)
    registry = PrivateRegistry(port, process, log_path, config)
    deadline = time.monotonic() + 15
    while True:
        try:
            urllib.request.urlopen(f"http://{registry.netloc}/v2/", timeout=1)  # noqa: S310 (loopback)
        except urllib.error.HTTPError:
            break  # 401: up, and asking for a token
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"private registry did not start:\n{registry.log()}")
            time.sleep(0.1)
    yield registry
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
