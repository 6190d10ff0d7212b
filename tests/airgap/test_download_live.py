"""The bundle download against the portal served by uvicorn (ASGI, as in production), with real
curl: a download cut short and resumed with `curl -C -`, and the redirect to moto's S3."""

from __future__ import annotations

import hashlib
import subprocess
import time

import httpx
import pytest

from delivery.models import Download
from tests.airgap import stored

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LATEST = "/customer/v1/airgap/latest.tar"


def _curl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", *args], capture_output=True, text=True, timeout=timeout)


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rows(count: int, timeout: float = 10) -> list[Download]:
    """The download log once it holds `count` rows whose bytes are final (a cut stream records
    what it sent when the server notices the hang-up)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = list(Download.objects.order_by("pk"))
        if len(rows) == count and all(r.bytes for r in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_a_cut_download_resumed_with_curl_gives_the_identical_file(
    portal_server, actor, app, customer_license, tmp_path
):
    release = stored.ready_release(actor, app)
    bundle = stored.store_ready_bundle(release, tmp_path / "bundles", layer_size=3 * 1024 * 1024)
    url = portal_server.url + LATEST
    credentials = f"{customer_license.license_id}:{customer_license.license_id}"
    out = tmp_path / "bundle.tar"

    # A link that drops part way: the client reads 1.5 MB of the stream and hangs up.
    partial = 1_500_000
    with httpx.stream("GET", url, auth=(customer_license.license_id,) * 2, timeout=30) as response:
        assert response.status_code == 200
        with open(out, "wb") as f:
            for chunk in response.iter_raw():
                f.write(chunk[: partial - f.tell()])
                if f.tell() >= partial:
                    break
    assert out.stat().st_size == partial < bundle.size

    resumed = _curl("-f", "-C", "-", "-u", credentials, "-o", str(out), "-D", str(tmp_path / "headers"), url)
    assert resumed.returncode == 0, resumed.stderr + portal_server.log()
    headers = (tmp_path / "headers").read_text()
    assert "HTTP/1.1 206" in headers and f"content-range: bytes {partial}-{bundle.size - 1}/{bundle.size}" in headers
    assert _sha256(out) == bundle.sha256
    assert f"x-bundle-sha256: {bundle.sha256}" in headers.lower()

    first, second = _rows(2)
    assert (first.status, second.status) == (200, 206)
    # What the cut stream handed to the socket, recorded when it ended: at least what curl kept
    # (loopback's socket buffers may have taken the rest before curl gave up).
    assert partial <= first.bytes <= bundle.size
    assert (second.range, second.bytes) == (f"bytes={partial}-", bundle.size - partial)
    assert "curl/" in second.user_agent


def test_with_s3_storage_curl_follows_the_redirect_to_the_identical_bytes_and_ranges_work(
    s3_bundles, actor, app, customer_license, tmp_path, transactional_db
):
    from tests.realparts.env import child_env
    from tests.realparts.portal_server import run_portal_server

    release = stored.ready_release(actor, app)
    bundle = stored.store_ready_bundle(release, tmp_path / "bundles", layer_size=512 * 1024)
    with run_portal_server(tmp_path, child_env(AIRGAP_STORAGE_URL=s3_bundles)) as server:
        url = server.url + "/customer/v1/airgap/1.tar"
        credentials = f"{customer_license.license_id}:{customer_license.license_id}"
        out = tmp_path / "bundle.tar"
        got = _curl("-f", "-L", "-u", credentials, "-o", str(out), "-D", str(tmp_path / "headers"), url)
        assert got.returncode == 0, got.stderr + server.log()
        headers = (tmp_path / "headers").read_text().lower()
        assert "http/1.1 302" in headers and f"x-bundle-sha256: {bundle.sha256}" in headers
        assert _sha256(out) == bundle.sha256

        part = tmp_path / "part"
        ranged = _curl("-f", "-L", "-u", credentials, "-r", "1000-1999", "-o", str(part), url)
        assert ranged.returncode == 0, ranged.stderr + server.log()
        assert part.read_bytes() == out.read_bytes()[1000:2000]

    rows = list(Download.objects.order_by("pk").values_list("status", "range", "bytes"))
    assert rows == [(302, "", bundle.size), (302, "bytes=1000-1999", bundle.size)]
