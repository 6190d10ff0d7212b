"""The bundle format: what the writer produces verifies, and every kind of damage is named."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from portal_cli import bundleformat as fmt
from tests.airgap.bundles import write_bundle
from tests.realparts.images import build_image, build_index

KEY = Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("layouts")
    # Two images sharing nothing, and an index: three entries, blobs each once.
    return {
        "api": build_image(root / "api", seed="api"),
        "worker": build_image(root / "worker", seed="worker", layers=3),
        "multi": build_index(root / "multi"),
    }


@pytest.fixture
def bundle(tmp_path, images):
    return write_bundle(
        tmp_path / "bundle.tar",
        [
            ("127.0.0.1:5101/acme/api:1.0.0", images["api"]),
            ("127.0.0.1:5101/acme/worker:1.0.0", images["worker"]),
            ("docker.io/acme/multi:1.0.0", images["multi"]),
            ("127.0.0.1:5101/acme/api-again:1.0.0", images["api"]),  # the same image twice: stored once
        ],
        signing_key=KEY,
        files={"manifests/deploy.yaml": "kind: Deployment\n", "replicated-app.yaml": "images: []\n"},
    )


def _rewrite(source, target, change):
    """Copy a bundle tar member by member, letting `change(name, data)` return new bytes or None to drop it."""
    with tarfile.open(source) as src, tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            data = change(member.name, data)
            if data is None:
                continue
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    return target


def test_a_written_bundle_verifies_with_its_images_blobs_and_files(bundle, images):
    verified = fmt.verify_bundle(str(bundle), KEY.public_key())
    assert [i.reference for i in verified.images][:3] == [
        "127.0.0.1:5101/acme/api:1.0.0", "127.0.0.1:5101/acme/worker:1.0.0", "docker.io/acme/multi:1.0.0",
    ]  # fmt: skip
    # api: config+2 layers+manifest; worker: config+3+manifest; index: 2×(config+layer+manifest)+index
    assert verified.blobs == 4 + 5 + 7
    assert verified.files == ["install/manifests/deploy.yaml", "install/replicated-app.yaml"]


def test_skopeo_reads_every_image_of_the_bundle_by_its_reference(bundle, images, tmp_path):
    subprocess.run(["tar", "-xf", str(bundle), "-C", str(tmp_path)], check=True)
    for reference, image in (
        ("127.0.0.1:5101/acme/worker:1.0.0", images["worker"]),
        ("docker.io/acme/multi:1.0.0", images["multi"]),
    ):
        raw = subprocess.run(
            ["skopeo", "inspect", "--raw", f"oci:{tmp_path}:{reference}"], capture_output=True, check=True
        ).stdout
        assert fmt.hashlib.sha256(raw).hexdigest() == image.digest.split(":")[1]


def test_another_key_is_refused_naming_both_key_ids(bundle):
    with pytest.raises(fmt.BundleError, match="signed by key sha256:.*not by the key given"):
        fmt.verify_bundle(str(bundle), Ed25519PrivateKey.generate().public_key())


def test_a_changed_layer_is_named(bundle, images, tmp_path):
    layer = fmt.blob_path(images["worker"].layer_digests[0])
    damaged = _rewrite(bundle, tmp_path / "damaged.tar", lambda n, d: d[:-1] + bytes([d[-1] ^ 1]) if n == layer else d)
    with pytest.raises(fmt.BundleError, match=f"{layer} does not match its sha256"):
        fmt.verify_bundle(str(damaged), KEY.public_key())


def test_a_missing_blob_is_named(bundle, images, tmp_path):
    layer = fmt.blob_path(images["api"].layer_digests[1])
    damaged = _rewrite(bundle, tmp_path / "short.tar", lambda n, d: None if n == layer else d)
    with pytest.raises(fmt.BundleError, match=f"missing, first {layer}"):
        fmt.verify_bundle(str(damaged), KEY.public_key())


def test_a_file_added_after_signing_is_named(bundle, tmp_path):
    with tarfile.open(bundle, "a") as tar:
        info = tarfile.TarInfo("install/extra.yaml")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"x: 1"))
    with pytest.raises(fmt.BundleError, match="install/extra.yaml is in the bundle but not in SHA256SUMS"):
        fmt.verify_bundle(str(bundle), KEY.public_key())


def test_changed_sums_break_the_signature(bundle, tmp_path):
    def change(name, data):
        return data.replace(b"install/replicated-app.yaml", b"install/replicated-app.yml") if name == fmt.SUMS else data

    damaged = _rewrite(bundle, tmp_path / "sums.tar", change)
    with pytest.raises(fmt.BundleError, match="signature does not match SHA256SUMS"):
        fmt.verify_bundle(str(damaged), KEY.public_key())


def test_a_path_outside_the_bundle_is_refused(tmp_path):
    target = tmp_path / "evil.tar"
    with tarfile.open(target, "w") as tar:
        info = tarfile.TarInfo("../etc/passwd")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(fmt.BundleError, match="path outside itself"):
        fmt.verify_bundle(str(target), KEY.public_key())


@pytest.mark.parametrize("content", [b"not a tar at all", b""])
def test_a_file_that_is_not_a_tar_is_named(tmp_path, content):
    target = tmp_path / "x.tar"
    target.write_bytes(content)
    with pytest.raises(fmt.BundleError, match="not a tar file|has no oci-layout"):
        fmt.verify_bundle(str(target), KEY.public_key())


def test_index_entries_without_a_reference_are_refused(bundle, tmp_path):
    # Re-signed, so only the index's content is wrong.
    def change(name, data):
        if name != fmt.INDEX:
            return data
        index = json.loads(data)
        del index["manifests"][0]["annotations"]
        return json.dumps(index).encode()

    with tarfile.open(bundle) as src:
        members = {m.name: src.extractfile(m).read() for m in src.getmembers()}
    members[fmt.INDEX] = change(fmt.INDEX, members[fmt.INDEX])
    hashes = {n: fmt.hashlib.sha256(d).hexdigest() for n, d in members.items() if n not in (fmt.SUMS, fmt.SIGNATURE)}
    members[fmt.SUMS] = fmt.sums_text(hashes)
    members[fmt.SIGNATURE] = fmt.sign_sums(members[fmt.SUMS], KEY)
    target = tmp_path / "resigned.tar"
    with tarfile.open(target, "w") as dst:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    with pytest.raises(fmt.BundleError, match="has no org.opencontainers.image.ref.name"):
        fmt.verify_bundle(str(target), KEY.public_key())
