"""`portal airgap push`: a bundle into the customer's own registry (a plain Distribution:
open, htpasswd, token auth), offline, cross-checked with skopeo; and the install kit rendered
by the real kubectl, every rewritten reference pulled with skopeo at its digest."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from portal_cli import bundleformat as fmt
from tests.airgap.bundles import pem, rewrite, write_bundle
from tests.realparts.distribution import Distribution
from tests.realparts.images import LayoutImage, build_image, build_index
from tests.realparts.tokenissuer import TokenIssuer

KEY = Ed25519PrivateKey.generate()
API = "quay.io/acme/api:1.0.0"  # a vendor's private image
WORKER = "registry.portal.test/acme-app/worker:2.1"  # the portal's own registry
REDIS = "docker.io/library/redis:7"  # public, a multi-arch index
SETTINGS = """\
images:
- {source: quay-prod, name: acme/api, tag: "1.0.0"}
- {source: replicated, name: worker, tag: "2.1"}
- {source: public, name: redis, tag: "7"}
"""
DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      initContainers: [{name: migrate, image: "registry.portal.test/acme-app/worker:2.1"}]
      containers: [{name: api, image: "quay.io/acme/api:1.0.0"}]
"""
# The settings sharing a file with manifests: the kit applies the manifests only.
CACHE = f"""\
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: cache}}
spec:
  serviceName: cache
  selector: {{matchLabels: {{app: cache}}}}
  template:
    metadata: {{labels: {{app: cache}}}}
    spec:
      containers: [{{name: redis, image: "redis:7"}}]
---
{SETTINGS}---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: flush}}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{{name: flush, image: "docker.io/library/redis:7"}}]
"""
FILES = {"deploy.yaml": DEPLOY, "cache/redis.yaml": CACHE, "replicated-app.yaml": SETTINGS, "NOTES.txt": "hello\n"}

pytestmark = pytest.mark.slow


# --- parts --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LayoutImage]:
    root = tmp_path_factory.mktemp("airgap-layouts")
    return {
        "api": build_image(root / "api", seed="airgap-api"),
        "worker": build_image(root / "worker", seed="airgap-worker", layers=3),
        "redis": build_index(root / "redis", seed="airgap-redis"),
    }


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, layouts: dict[str, LayoutImage]) -> Path:
    return write_bundle(
        tmp_path_factory.mktemp("airgap-bundle") / "bundle.tar",
        [(API, layouts["api"]), (WORKER, layouts["worker"]), (REDIS, layouts["redis"])],
        signing_key=KEY,
        files=FILES,
        facts={
            WORKER: {"source": "replicated", "repository": "acme-app/worker"},
            REDIS: {"repository": "library/redis", "spellings": ["docker.io/library/redis", "redis"]},
        },
    )


@pytest.fixture
def customer_registry(tmp_path: Path):
    """Starts fresh Distributions (`customer_registry("htpasswd")`), stopped after the test."""
    started: list[Distribution] = []

    def start(mode: str = "none", issuer: TokenIssuer | None = None) -> Distribution:
        registry = Distribution(tmp_path / f"registry-{len(started)}", mode, issuer=issuer)  # type: ignore[arg-type]
        started.append(registry)
        return registry.start()

    yield start
    for registry in started:
        registry.close()


def portal(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI as a customer inside the air gap runs it: no token, and no portal to reach."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env["PORTAL_URL"] = "http://127.0.0.1:9"
    return subprocess.run(
        [sys.executable, "-m", "portal_cli.main", *args],
        env=env,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def push(bundle: Path, registry: Distribution, *args: str, namespace: str = "", creds: bool = True, input=None):
    target = registry.netloc + (f"/{namespace}" if namespace else "")
    if input is not None:
        extra = ["--dest-creds-stdin"]
    else:
        extra = ["--dest-creds", registry.creds] if creds and registry.creds else []
    return portal(
        "airgap", "push", str(bundle), "--registry", target, "--dest-tls-verify=false", *extra, *args, input=input
    )


def skopeo_raw(reference: str, creds: str | None) -> bytes:
    args = ["skopeo", "inspect", "--raw", "--tls-verify=false", *(["--creds", creds] if creds else [])]
    result = subprocess.run([*args, f"docker://{reference}"], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def stored_nothing(registry: Distribution) -> bool:
    """No repository, blob or upload was ever written to the registry's storage."""
    return not (registry.workdir / "storage" / "docker").exists()


EXPECTED = {API: "acme/api", WORKER: "acme-app/worker", REDIS: "library/redis"}


# --- pushing ------------------------------------------------------------------------------


def test_push_stores_every_image_by_digest_and_by_its_tag(bundle, layouts, customer_registry):
    registry = customer_registry("none")
    result = push(bundle, registry, "-o", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["signature_checked"] is False
    assert [image["reference"] for image in report["images"]] == [API, WORKER, REDIS]
    for image, layout in zip(report["images"], (layouts["api"], layouts["worker"], layouts["redis"]), strict=True):
        repository = EXPECTED[image["reference"]]
        by_digest = skopeo_raw(f"{registry.netloc}/{repository}@{layout.digest}", None)
        by_tag = skopeo_raw(f"{registry.netloc}/{repository}:{image['reference'].rpartition(':')[2]}", None)
        assert sha256(by_digest) == sha256(by_tag) == layout.digest == image["digest"]
    # api: config + 2 layers; worker: config + 3; redis: 2 × (config + layer)
    assert [(i["blobs_pushed"], i["blobs_skipped"]) for i in report["images"]] == [(3, 0), (4, 0), (4, 0)]
    assert [i["manifests_pushed"] for i in report["images"]] == [1, 1, 3], "an index is pushed with its children"
    assert report["bytes_pushed"] == sum(i["bytes_pushed"] for i in report["images"]) > 0
    assert "image 1/3: quay.io/acme/api:1.0.0 → " in result.stderr and "image 3/3: " in result.stderr
    assert "its signature was not checked: pass --public-key" in result.stderr
    requests = [line for line in registry.log_tail(10_000).splitlines() if '"portal-cli/' in line]
    assert not [line for line in requests if '"PATCH ' in line], "small blobs go up in one PUT each"
    assert len([line for line in requests if '"PUT ' in line and "digest=sha256:" in line]) == 11


def test_a_second_push_skips_every_blob_and_manifest(bundle, customer_registry):
    registry = customer_registry("none")
    first = push(bundle, registry, "-o", "json")
    assert first.returncode == 0, first.stderr
    again = push(bundle, registry)
    assert again.returncode == 0, again.stderr
    assert "3 image(s) in " in again.stdout and ": 0 blob(s) pushed (0 B), 11 already there." in again.stdout
    assert again.stderr.count("blobs: 0 pushed (0 B)") == 3
    second = json.loads(push(bundle, registry, "-o", "json").stdout)
    assert (second["blobs_pushed"], second["blobs_skipped"], second["bytes_pushed"]) == (0, 11, 0)
    assert [i["manifests_skipped"] for i in second["images"]] == [1, 1, 3]


def test_push_with_basic_auth_into_a_namespace(bundle, layouts, customer_registry):
    registry = customer_registry("htpasswd")
    result = push(bundle, registry, namespace="customer/apps")
    assert result.returncode == 0, result.stderr
    raw = skopeo_raw(f"{registry.netloc}/customer/apps/acme/api@{layouts['api'].digest}", registry.creds)
    assert sha256(raw) == layouts["api"].digest
    raw = skopeo_raw(f"{registry.netloc}/customer/apps/library/redis:7", registry.creds)
    assert sha256(raw) == layouts["redis"].digest
    assert f"{registry.netloc}/customer/apps/acme-app/worker@{layouts['worker'].digest}" in result.stdout


def test_push_with_token_auth_and_credentials_from_stdin(bundle, layouts, customer_registry):
    registry = customer_registry("token")
    result = push(bundle, registry, namespace="team", input=f"{registry.creds}\n")
    assert result.returncode == 0, result.stderr
    raw = skopeo_raw(f"{registry.netloc}/team/acme-app/worker:2.1", registry.creds)
    assert sha256(raw) == layouts["worker"].digest
    scopes = {scope for request in registry.issuer.requests for scope in request.scopes}
    assert {f"repository:team/{name}:pull,push" for name in EXPECTED.values()} <= scopes
    assert all(request.username == registry.username for request in registry.issuer.requests)


def test_missing_or_wrong_credentials_name_the_registry_and_the_user(bundle, customer_registry):
    basic = customer_registry("htpasswd")
    missing = push(bundle, basic, creds=False)
    assert missing.returncode == 1
    assert missing.stderr.splitlines()[-1] == (
        f"error: the registry {basic.netloc} needs credentials: pass --dest-creds USER:PASS or --dest-creds-stdin"
    )
    wrong = push(bundle, basic, "--dest-creds", "mallory:guess", creds=False)
    assert wrong.returncode == 1
    assert wrong.stderr.splitlines()[-1] == (
        f"error: the registry {basic.netloc} refused user “mallory”: wrong user name or password (HTTP 401)"
    )
    token = customer_registry("token")
    wrong = push(bundle, token, "--dest-creds", f"{token.username}:nope", creds=False)
    assert wrong.returncode == 1
    assert wrong.stderr.splitlines()[-1] == (
        f"error: the token service of {token.netloc} refused user “{token.username}”: wrong user name or password "
        "(HTTP 401)"
    )
    assert stored_nothing(basic) and stored_nothing(token)


def test_a_user_who_may_only_pull_is_told_the_push_was_denied(bundle, customer_registry):
    issuer = TokenIssuer(users={"reader": "pw-reader"}, grant=lambda user, kind, name, actions: ["pull"]).start()
    registry = customer_registry("token", issuer=issuer)
    result = push(bundle, registry, "--dest-creds", "reader:pw-reader", creds=False)
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith(
        f"error: the registry {registry.netloc} denied user “reader” permission to push to acme/api while uploading blob sha256:"
    ), last


def test_unreachable_and_plain_http_registries_are_named(bundle, customer_registry, closed_port):
    down = portal("airgap", "push", str(bundle), "--registry", f"127.0.0.1:{closed_port}", "--dest-tls-verify=false")
    assert down.returncode == 1
    assert (
        down.stderr.splitlines()[-1] == f"error: cannot reach the registry 127.0.0.1:{closed_port}: connection refused"
    )
    registry = customer_registry("none")
    https_only = portal("airgap", "push", str(bundle), "--registry", registry.netloc)
    assert https_only.returncode == 1
    last = https_only.stderr.splitlines()[-1]
    assert last.startswith(f"error: cannot reach the registry {registry.netloc}: ")
    assert last.endswith("(a plain-http registry needs --dest-tls-verify=false)")
    assert stored_nothing(registry)


def test_a_registry_refusing_a_manifest_is_named(layouts, customer_registry, tmp_path):
    # A manifest Distribution cannot accept (it says it is a Docker manifest, the bundle says
    # OCI), in an otherwise whole bundle.
    directory = tmp_path / "odd"
    shutil.copytree(layouts["api"].directory, directory)
    manifest = json.loads((directory / fmt.blob_path(layouts["api"].digest)).read_bytes())
    data = json.dumps({**manifest, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}).encode()
    (directory / fmt.blob_path(sha256(data))).write_bytes(data)
    odd = LayoutImage(directory, "1.0.0", sha256(data), layouts["api"].media_type, layouts["api"].layer_digests)
    bundle = write_bundle(tmp_path / "odd.tar", [(API, odd)], signing_key=KEY)
    registry = customer_registry("none")
    result = push(bundle, registry)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"error: the registry {registry.netloc} refused storing manifest {sha256(data)} in acme/api: "
        "MANIFEST_INVALID: manifest invalid (HTTP 400)"
    )


# --- checking the bundle first ------------------------------------------------------------


def test_a_damaged_bundle_is_refused_before_anything_is_pushed(bundle, layouts, customer_registry, tmp_path):
    layer = fmt.blob_path(layouts["redis"].layer_digests[1])
    damaged = rewrite(bundle, tmp_path / "damaged.tar", lambda n, d: d[:-1] + bytes([d[-1] ^ 1]) if n == layer else d)
    registry = customer_registry("none")
    result = push(damaged, registry, "--out", str(tmp_path / "kit"))
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"error: refusing the bundle, nothing was pushed: {layer} does not match its sha256 in SHA256SUMS: "
        "the bundle is damaged or was changed"
    )
    assert stored_nothing(registry) and not (tmp_path / "kit").exists()


def test_the_signature_is_checked_with_a_public_key_and_a_wrong_one_refused(bundle, customer_registry, tmp_path):
    registry = customer_registry("none")
    other = Ed25519PrivateKey.generate()
    wrong = push(bundle, registry, "--public-key", str(pem(other, tmp_path / "other.pem")))
    assert wrong.returncode == 1
    assert wrong.stderr.splitlines()[-1].startswith(
        "error: refusing the bundle, nothing was pushed: the bundle is signed by key sha256:"
    )
    assert stored_nothing(registry)
    right = push(bundle, registry, "--public-key", str(pem(KEY, tmp_path / "portal.pem")), "-o", "json")
    assert right.returncode == 0, right.stderr
    assert json.loads(right.stdout)["signature_checked"] is True
    assert "the bundle is whole and signed by sha256:" in right.stderr


def test_options_are_checked_before_the_bundle_is_read(tmp_path):
    missing = tmp_path / "nope.tar"
    cases = [
        (["--registry", "https://registry.example.com"], "--registry: give HOST[:PORT][/NAMESPACE] without a scheme"),
        (["--registry", "reg.example.com/Team"], "--registry: the namespace “Team” is not a repository path"),
        (["--registry", "reg.example.com", "--dest-creds", "nocolon"], "--dest-creds: give USER:PASS"),
        (["--registry", "reg.example.com", "--dest-creds", "a:b", "--dest-creds-stdin"], "not both"),
    ]
    for args, message in cases:
        result = portal("airgap", "push", str(missing), *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
    full = tmp_path / "full"
    full.mkdir()
    (full / "old.yaml").write_text("x: 1\n")
    result = portal("airgap", "push", str(missing), "--registry", "reg.example.com", "--out", str(full))
    assert (result.returncode, result.stderr.splitlines()[-1]) == (
        2,
        f"error: --out {full}: the folder is not empty; give a new or empty one",
    )
    result = portal("airgap", "push", str(missing), "--registry", "reg.example.com")
    assert result.returncode == 1 and result.stderr.splitlines()[-1].endswith(f"{missing}: no such file")


# --- the install kit ----------------------------------------------------------------------


def _images_of(rendered: str) -> list[str]:
    found = []
    for document in yaml.safe_load_all(rendered):
        stack = [document]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if isinstance(node.get("image"), str):
                    found.append(node["image"])
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    return sorted(found)


def test_the_kit_renders_and_every_rewritten_reference_pulls_at_its_digest(
    bundle, layouts, customer_registry, tmp_path
):
    registry = customer_registry("htpasswd")
    kit = tmp_path / "kit"
    result = push(bundle, registry, "--out", str(kit), namespace="customer")
    assert result.returncode == 0, result.stderr
    assert f"Install kit written to {kit}; apply it with: kubectl apply -k {kit}" in result.stdout

    for path, text in FILES.items():  # the install tree as the vendor shipped it
        assert (kit / "install" / path).read_text() == text
    kustomization = yaml.safe_load((kit / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["manifests/cache/redis.yaml", "install/deploy.yaml"]
    assert "images:" not in (kit / "manifests/cache/redis.yaml").read_text(), "the settings are not applied"
    base = f"{registry.netloc}/customer"
    digests = {name: layouts[name].digest for name in layouts}
    assert kustomization["images"] == [
        {"name": "registry.portal.test/acme-app/worker", "newName": f"{base}/acme-app/worker", "digest": digests["worker"]},
        {"name": "quay.io/acme/api", "newName": f"{base}/acme/api", "digest": digests["api"]},
        {"name": "docker.io/library/redis", "newName": f"{base}/library/redis", "digest": digests["redis"]},
        {"name": "redis", "newName": f"{base}/library/redis", "digest": digests["redis"]},
    ]  # fmt: skip

    rendered = subprocess.run(["kubectl", "kustomize", str(kit)], capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    images = _images_of(rendered.stdout)
    assert images == sorted(
        [
            f"{base}/acme/api@{digests['api']}",
            f"{base}/acme-app/worker@{digests['worker']}",
            f"{base}/library/redis@{digests['redis']}",
            f"{base}/library/redis@{digests['redis']}",
        ]
    )
    for reference in set(images):
        assert sha256(skopeo_raw(reference, registry.creds)) == reference.rpartition("@")[2]
    pulled = tmp_path / "pulled"
    copy = subprocess.run(
        ["skopeo", "--insecure-policy", "copy", "--all", "--src-tls-verify=false", "--src-creds", registry.creds,
         f"docker://{base}/library/redis@{digests['redis']}", f"oci:{pulled}:redis"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert copy.returncode == 0, copy.stderr


# --- memory -------------------------------------------------------------------------------


def test_a_large_layer_is_pushed_in_chunks_with_flat_memory(customer_registry, tmp_path):
    """A 96 MiB layer (random, so gzip keeps it that size) goes up in 16 MiB PATCH chunks while
    the CLI's peak RSS stays below the layer's size."""
    big = build_image(tmp_path / "big", seed="airgap-big", layers=1, layer_size=96 * 1024 * 1024)
    size = (big.directory / fmt.blob_path(big.layer_digests[0])).stat().st_size
    assert size > 90 * 1024 * 1024
    bundle = write_bundle(tmp_path / "big.tar", [("quay.io/acme/big:1.0.0", big)], signing_key=KEY)
    shutil.rmtree(big.directory)
    registry = customer_registry("none")
    # Run the CLI in a child that reports its own peak RSS: VmHWM, in KiB (ru_maxrss would
    # count the forked test process's pages too).
    code = (
        "import re, runpy, sys\n"
        "sys.argv = ['portal'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('portal_cli.main', run_name='__main__')\n"
        "finally:\n    status = open('/proc/self/status').read()\n"
        "    print('maxrss', re.search(r'VmHWM:\\s+(\\d+) kB', status)[1], file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    result = subprocess.run(
        [sys.executable, "-c", code, "airgap", "push", str(bundle), "--registry", registry.netloc,
         "--dest-tls-verify=false", "-o", "json"],
        capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["bytes_pushed"] > size
    assert f"blob {big.layer_digests[0][:19]}… 9" in result.stderr, "a large blob's progress line"
    peak = int(result.stderr.rsplit("maxrss ", 1)[1]) * 1024
    assert peak < size * 0.8, f"peak RSS {peak / 2**20:.0f} MiB for a {size / 2**20:.0f} MiB layer"
    patches = [line for line in registry.log_tail(10_000).splitlines() if '"PATCH /v2/acme/big/blobs/uploads/' in line]
    assert len(patches) == -(-size // (16 * 1024 * 1024)), "one PATCH per 16 MiB chunk"
    raw = skopeo_raw(f"{registry.netloc}/acme/big@{big.digest}", None)
    assert sha256(raw) == big.digest
