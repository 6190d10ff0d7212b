"""The portal's private registry: Distribution configured by `manage.py registry_config`,
with the portal (uvicorn, `portal_server`) as its token realm and notification target."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.realparts.distribution import REGISTRY_BINARY, free_port
from tests.realparts.env import stop, wait_for_http

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

    def push(self, source: str, repository_tag: str, creds: str) -> None:
        """skopeo copy an image (every platform of an index) in as a vendor pushes it."""
        pushed = subprocess.run(
            ["skopeo", "--insecure-policy", "copy", "--all", "--dest-tls-verify=false", "--dest-creds", creds,
             source, f"docker://{self.netloc}/{repository_tag}"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert pushed.returncode == 0, pushed.stderr


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
    wait_for_http(f"http://{registry.netloc}/v2/", process, what="private registry", log=registry.log, timeout=15)
    yield registry
    stop(process)
