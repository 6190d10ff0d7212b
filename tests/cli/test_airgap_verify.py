"""`portal airgap verify`: a bundle signed with the portal's key, checked with the key fetched
from the live portal (no token) or given as a file (offline); every kind of answer and exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from licenses import licensefile
from portal_cli import bundleformat as fmt
from tests.airgap.bundles import pem, rewrite, write_bundle
from tests.realparts.images import LayoutImage, build_image, build_index

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LayoutImage]:
    root = tmp_path_factory.mktemp("verify-layouts")
    return {"api": build_image(root / "api", seed="verify-api"), "redis": build_index(root / "redis", seed="verify")}


@pytest.fixture
def bundle(tmp_path: Path, layouts: dict[str, LayoutImage]) -> Path:
    return write_bundle(
        tmp_path / "bundle.tar",
        [("quay.io/acme/api:1.0.0", layouts["api"]), ("docker.io/library/redis:7", layouts["redis"])],
        signing_key=licensefile.signing_key(),
        files={"deploy.yaml": "kind: ConfigMap\n", "replicated-app.yaml": "images: []\n"},
        app="acme-api",
        sequence=4,
    )


def _size(layout: LayoutImage) -> int:
    """Every blob of the image together."""
    return sum(path.stat().st_size for path in (layout.directory / "blobs" / "sha256").iterdir())


def test_a_bundle_verifies_with_the_portals_key_fetched_without_a_token(portal, bundle, layouts):
    result = portal("airgap", "verify", str(bundle), token=None)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    key_id = fmt.key_id(licensefile.signing_key().public_key())
    lines = result.stdout.splitlines()
    assert lines[0].split(None, 1) == ["valid", "yes: complete, undamaged, signed by the portal's key"]
    assert lines[1:8] == [
        "app      acme-api",
        "release  4",
        "images   2",
        "blobs    11",  # api: manifest, config, 2 layers; redis: index + 2 × (manifest, config, layer)
        "files    2",
        lines[6],
        f"key id   {key_id}",
    ]
    assert lines[6].startswith("size     ") and lines[6].endswith("KiB")
    assert lines[9].split() == ["IMAGE", "DIGEST", "PLATFORMS", "SIZE"]
    api, redis = lines[10].split(None, 2), lines[11].split(None, 2)
    assert api[:2] == ["quay.io/acme/api:1.0.0", layouts["api"].digest] and api[2].startswith("linux/amd64 ")
    assert redis[:2] == ["docker.io/library/redis:7", layouts["redis"].digest]
    assert redis[2].startswith("linux/amd64, linux/arm64 ")

    checked = json.loads(portal("airgap", "verify", str(bundle), "-o", "json", token=None).stdout)
    assert checked["valid"] is True and checked["key_id"] == key_id
    assert (checked["app"], checked["release"], checked["blobs"]) == ("acme-api", "4", 11)
    assert checked["files"] == ["deploy.yaml", "replicated-app.yaml"]
    assert checked["images"][1] == {
        "reference": "docker.io/library/redis:7",
        "digest": layouts["redis"].digest,
        "platforms": ["linux/amd64", "linux/arm64"],
        "size": _size(layouts["redis"]),
        "repository": "library/redis",
    }


def test_a_damaged_bundle_is_invalid_with_the_reason_and_exit_1(portal, bundle, layouts, tmp_path):
    layer = fmt.blob_path(layouts["api"].layer_digests[0])
    damaged = rewrite(bundle, tmp_path / "damaged.tar", lambda n, d: d[:-1] + bytes([d[-1] ^ 1]) if n == layer else d)
    reason = f"{layer} does not match its sha256 in SHA256SUMS: the bundle is damaged or was changed"
    result = portal("airgap", "verify", str(damaged), token=None)
    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"error: invalid bundle: {reason}\n")
    as_json = portal("airgap", "verify", str(damaged), "--output", "json", token=None)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == {"valid": False, "reason": reason}


def test_verify_offline_with_a_key_file_and_refuse_another_key(portal, bundle, tmp_path):
    key = tmp_path / "portal.pem"
    key.write_text(licensefile.public_key_pem())
    offline = portal("airgap", "verify", str(bundle), "--public-key", str(key), url="http://127.0.0.1:9", token=None)
    assert offline.returncode == 0, offline.stderr
    other = pem(Ed25519PrivateKey.generate(), tmp_path / "other.pem")
    wrong = portal("airgap", "verify", str(bundle), "--public-key", str(other), token=None)
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("error: invalid bundle: the bundle is signed by key sha256:")
    assert "not by the key given (sha256:" in wrong.stderr


def test_without_a_key_file_an_unreachable_portal_or_a_missing_bundle_says_why(portal, bundle, tmp_path):
    unreachable = portal("airgap", "verify", str(bundle), url="http://127.0.0.1:9", token=None)
    assert unreachable.returncode == 1 and unreachable.stderr.startswith("error: ")
    assert "127.0.0.1:9" in unreachable.stderr
    missing = portal("airgap", "verify", str(tmp_path / "nope.tar"), token=None)
    assert missing.returncode == 1
    assert missing.stderr == f"error: invalid bundle: {tmp_path / 'nope.tar'}: no such file\n"
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    bad_key = portal("airgap", "verify", str(bundle), "--public-key", str(garbage), token=None)
    assert (bad_key.returncode, bad_key.stderr) == (
        2,
        f"error: --public-key {garbage}: the public key is not a PEM public key\n",
    )
