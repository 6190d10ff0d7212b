"""A throwaway PostgreSQL cluster of a test's own, which the test may stop and start at will.

Never the shared server on :5432: initdb into a temporary directory, a free port, trust auth.
As root the server runs as the `postgres` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.realparts.distribution import free_port


def _bin_dir() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        pytest.fail("PostgreSQL server binaries are missing (/usr/lib/postgresql/*/bin/initdb)")
    return versions[-1].parent


class ThrowawayPostgres:
    def __init__(self) -> None:
        self.bin = _bin_dir()
        # Not under pytest's tmp_path: the postgres user must be able to reach the directory.
        self.root = Path(tempfile.mkdtemp(prefix="pg-throwaway-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        try:
            if os.geteuid() == 0:
                shutil.chown(self.root, "postgres", "postgres")
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "--no-instructions")
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            pytest.fail(f"{tool} {' '.join(args)} failed:\n{result.stdout}{result.stderr}\n{log}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        """A fast shutdown, as a restart does: open sessions are ended, new ones refused."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def createdb(self, name: str) -> None:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    cluster = ThrowawayPostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()
