"""The whole air-gap path as a vendor and a customer walk it, every part real: a release of
images in a vendor's Distribution (basic auth) and a public one, resolved; its bundle built;
downloaded with curl and the license ID; checked with `portal airgap verify` (the portal's key
fetched from the portal); pushed with `portal airgap push` into the customer's own Distribution
with an install kit; the kit rendered by kubectl, and every image it names pulled from the
customer's registry by the digest the release resolved."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

import pytest
import yaml

from delivery.models import BundleStatus, Download, DownloadKind
from licenses import releases
from tests import factories
from tests.airgap.conftest import build, resolved_release
from tests.realparts.distribution import Distribution

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - {name: api, image: "%s"}
      - {name: multi, image: "%s"}
"""


def _cli(*args: str, portal_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env["PORTAL_URL"] = portal_url
    return subprocess.run(
        [sys.executable, "-m", "portal_cli.main", *args], env=env, capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_download_verify_push_and_install_without_internet(
    actor, app, airgap, customer_license, basic_registry, open_registry, live_server, tmp_path
):
    factories.connect_registry(actor, basic_registry, name="vendor")
    api_ref = f"{basic_registry.netloc}/acme/api:1.0.0"
    multi_ref = f"{open_registry.netloc}/acme/multi:1.0.0"
    release = resolved_release(
        actor, app,
        {"source": "vendor", "name": "acme/api", "tag": "1.0.0"},
        {"source": "public", "name": f"{open_registry.netloc}/acme/multi", "tag": "1.0.0"},
        files={"manifests/deploy.yaml": DEPLOY % (api_ref, multi_ref)},
    )  # fmt: skip
    releases.release_promote(actor=actor, release=release, channel="stable")
    bundle = build(actor, release)
    assert bundle.status == BundleStatus.READY, bundle.error
    resolved = {image.name: image.resolved_digest for image in release.images.all()}

    # 1. Download with the license ID (curl, as the customer's docs say).
    target = tmp_path / "app.tar"
    license_id = customer_license.license_id
    curl = subprocess.run(
        ["curl", "-fsS", "-u", f"{license_id}:{license_id}", "-o", str(target), "-D", "-",
         f"{live_server.url}/customer/v1/airgap/latest.tar"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert curl.returncode == 0, curl.stderr
    assert hashlib.sha256(target.read_bytes()).hexdigest() == bundle.sha256
    assert f"x-bundle-sha256: {bundle.sha256}" in curl.stdout.lower()
    # The log row is completed once the last byte has left, which may be just after curl ends.
    deadline = time.monotonic() + 10
    while (logged := Download.objects.get(license=customer_license.license, kind=DownloadKind.AIRGAP)).bytes == 0:
        assert time.monotonic() < deadline, "the download's row never got its byte count"
        time.sleep(0.1)
    assert (logged.status, logged.bytes, logged.sequence) == (200, bundle.size, release.sequence)

    # 2. Verify: complete, undamaged, signed by this portal's key (fetched without a token).
    verified = _cli("airgap", "verify", str(target), portal_url=live_server.url)
    assert verified.returncode == 0, verified.stderr
    assert api_ref in verified.stdout and multi_ref in verified.stdout

    # 3. Push into the customer's own registry (no portal needed) and write the install kit.
    customer = Distribution(tmp_path / "customer-registry", "htpasswd").start()
    try:
        kit = tmp_path / "kit"
        pushed = _cli(
            "airgap", "push", str(target), "--registry", f"{customer.netloc}/mirror", "--dest-tls-verify=false",
            "--dest-creds", customer.creds, "--out", str(kit), portal_url="http://127.0.0.1:9",
        )  # fmt: skip
        assert pushed.returncode == 0, pushed.stderr

        # 4. Install: kubectl renders the kit; every image it names is in the customer's
        # registry at the digest the release resolved.
        rendered = subprocess.run(["kubectl", "kustomize", str(kit)], capture_output=True, text=True, timeout=120)
        assert rendered.returncode == 0, rendered.stderr
        documents = [d for d in yaml.safe_load_all(rendered.stdout) if d]
        containers = documents[0]["spec"]["template"]["spec"]["containers"]
        images = {c["name"]: c["image"] for c in containers}
        assert images == {
            "api": f"{customer.netloc}/mirror/acme/api@{resolved['acme/api']}",
            "multi": f"{customer.netloc}/mirror/acme/multi@{resolved[f'{open_registry.netloc}/acme/multi']}",
        }
        for reference in images.values():
            raw = subprocess.run(
                ["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", customer.creds, f"docker://{reference}"],
                capture_output=True, timeout=120,
            )  # fmt: skip
            assert raw.returncode == 0, raw.stderr.decode()
            assert "sha256:" + hashlib.sha256(raw.stdout).hexdigest() == reference.rpartition("@")[2]
    finally:
        customer.close()
