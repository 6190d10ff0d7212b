"""A real DNS server for custom-domain tests: Debian's dnsmasq on a free loopback port.

`dns_server` is that server with no records, and PORTAL_DNS_NAMESERVERS pointed at it;
`dns_server.serve({name: value or [values]})` restarts it with those TXT records (dnsmasq
reads --txt-record only at start), `dns_server.stop()` takes it down (a name server that
does not answer). It is authoritative for `.test` (`--local=/test/`): a name there without
records is NXDOMAIN; a name anywhere else is REFUSED (it has no upstream to ask).
Registered in tests/conftest.py's pytest_plugins.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import dns.exception
import dns.nameserver
import dns.resolver
import pytest

DNSMASQ = "/usr/sbin/dnsmasq"
ZONE = "test"


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (dnsmasq listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


class Dnsmasq:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.records: dict[str, list[str]] = {}

    @property
    def address(self) -> str:
        """As PORTAL_DNS_NAMESERVERS takes it."""
        return f"127.0.0.1:{self.port}"

    def serve(self, records: Mapping[str, str | list[str]] | None = None) -> Dnsmasq:
        """(Re)start answering with exactly these TXT records."""
        self.stop()
        self.records = {name: [v] if isinstance(v, str) else list(v) for name, v in (records or {}).items()}
        command = [
            DNSMASQ,
            "--no-daemon",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            f"--port={self.port}",
            f"--local=/{ZONE}/",
            "--log-queries",
            "--log-facility=-",
        ]
        # One --txt-record per record: several records at one name are several values.
        command += [f"--txt-record={name},{value}" for name, values in self.records.items() for value in values]
        self.log = self.workdir / f"dnsmasq-{self.port}.log"
        with self.log.open("a") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver("127.0.0.1", self.port)]
        deadline = time.monotonic() + 10
        while True:
            try:
                resolver.resolve(f"ready.{ZONE}", "TXT", lifetime=0.3, search=False)
                return
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                return  # answering
            except dns.exception.DNSException:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"dnsmasq did not start on {self.address}:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@pytest.fixture(scope="session")
def dnsmasq_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dnsmasq]:
    if not Path(DNSMASQ).exists():
        pytest.fail(f"{DNSMASQ} is missing: apt-get install dnsmasq-base (scripts/setup.sh does it)")
    server = Dnsmasq(tmp_path_factory.mktemp("dnsmasq"))
    yield server
    server.stop()


@pytest.fixture
def dns_server(dnsmasq_process: Dnsmasq, settings) -> Dnsmasq:
    """The loopback dnsmasq with no records, and the portal's lookups pointed at it."""
    settings.PORTAL_DNS_NAMESERVERS = [dnsmasq_process.address]
    return dnsmasq_process.serve({})
