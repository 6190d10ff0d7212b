"""Start CNCF Distribution (Debian's /usr/bin/docker-registry) on a free loopback port."""

from __future__ import annotations

import re
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from tests.realparts.images import PushedImage
from tests.realparts.tokenissuer import TokenIssuer

REGISTRY_BINARY = "/usr/bin/docker-registry"
AuthMode = Literal["none", "htpasswd", "token"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def htpasswd_line(username: str, password: str) -> str:
    """A bcrypt line from Apache's htpasswd (Distribution accepts bcrypt only)."""
    result = subprocess.run(
        ["htpasswd", "-Bbn", username, password], capture_output=True, text=True, check=True, timeout=30
    )
    return result.stdout.strip()


@dataclass
class Distribution:
    """A running registry. `endpoint` is what a vendor would type (plain http here)."""

    workdir: Path
    mode: AuthMode = "none"
    username: str = "vendor"
    password: str = field(default_factory=lambda: "pw-" + secrets.token_urlsafe(12))
    issuer: TokenIssuer | None = None
    host: str = "127.0.0.1"
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    images: dict[str, PushedImage] = field(default_factory=dict)  # filled by whoever seeds it

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.netloc}"

    endpoint = url

    @property
    def creds(self) -> str | None:
        """USER:PASS for skopeo, None without auth."""
        return None if self.mode == "none" else f"{self.username}:{self.password}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "registry.log"

    def config(self) -> dict:
        config: dict = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text"},
            "storage": {
                "filesystem": {"rootdirectory": str(self.workdir / "storage")},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {
                "addr": self.netloc,
                "secret": secrets.token_hex(16),
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
        }
        if self.mode == "htpasswd":
            path = self.workdir / "htpasswd"
            path.write_text(htpasswd_line(self.username, self.password) + "\n")
            config["auth"] = {"htpasswd": {"realm": "test-registry", "path": str(path)}}
        elif self.mode == "token":
            if self.issuer is None:
                self.issuer = TokenIssuer(users={self.username: self.password}).start()
            bundle = self.workdir / "token-ca.pem"
            bundle.write_bytes(self.issuer.certificate_pem)
            config["auth"] = {
                "token": {
                    "realm": self.issuer.realm,
                    "service": self.issuer.service,
                    "issuer": self.issuer.issuer,
                    "rootcertbundle": str(bundle),
                }
            }
        return config

    def start(self, timeout: float = 15.0) -> Distribution:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):  # the free port may be taken between probe and bind
            self.port = free_port(self.host)
            config_path = self.workdir / "config.yml"
            config_path.write_text(yaml.safe_dump(self.config()))
            log = self.log_path.open("ab")
            self.process = subprocess.Popen(
                [REGISTRY_BINARY, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT
            )
            log.close()
            if self._wait_ready(timeout):
                return self
            self.stop()
        raise RuntimeError(f"Distribution did not start; log: {self.log_path}\n{self.log_tail()}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/v2/", timeout=1):  # noqa: S310 (loopback)
                    return True
            except urllib.error.HTTPError as exc:
                return exc.code == 401
            except OSError:
                time.sleep(0.05)
        return False

    def answered_gets(self, kind: str, reference: str) -> int:
        """GETs of /v2/…/<kind>/<reference> (`blobs`, `manifests`) it answered 200, from its access
        log (readable after `stop`)."""
        pattern = re.compile(rf'"GET /v2/\S+/{kind}/{re.escape(reference)} HTTP/1\.1" 200 ')
        return sum(1 for line in self.log_path.read_text(errors="replace").splitlines() if pattern.search(line))

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def close(self) -> None:
        """Stop the registry and its token issuer."""
        self.stop()
        if self.issuer:
            self.issuer.stop()

    def __enter__(self) -> Distribution:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
