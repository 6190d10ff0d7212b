"""The air-gap install kit's files (portal_cli/airgap_kit.py) and `--registry` parsing, without
a registry: which files are resources, and how `images:` entries follow the online kit's rules."""

from __future__ import annotations

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from portal_cli import bundleformat as fmt
from portal_cli.airgap_kit import kit_files
from portal_cli.airgap_push import Destination, parse_destination
from tests.airgap.bundles import write_bundle
from tests.realparts.images import build_image

KEY = Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("kit-layouts")
    return {"old": build_image(root / "old", seed="kit-old"), "new": build_image(root / "new", seed="kit-new")}


def _kit(path, destination=Destination("registry.corp.example", "vendor")):
    verified = fmt.verify_bundle(str(path), KEY.public_key())
    with fmt.BundleReader(str(path)) as reader:
        files = kit_files(reader, verified, destination)
    return files, yaml.safe_load(files["kustomization.yaml"])


def test_an_image_listed_at_two_digests_is_rewritten_without_a_digest(images, tmp_path):
    bundle = write_bundle(
        tmp_path / "b.tar",
        [("quay.io/acme/api:1.0", images["old"]), ("quay.io/acme/api:2.0", images["new"])],
        signing_key=KEY,
        files={"deploy.yaml": "kind: Pod\nspec: {containers: [{image: quay.io/acme/api:2.0}]}\n"},
    )
    _, kustomization = _kit(bundle)
    # Both tags are pushed; the manifests pick theirs by tag, as in the online kit.
    assert kustomization["images"] == [{"name": "quay.io/acme/api", "newName": "registry.corp.example/vendor/acme/api"}]


def test_only_manifests_are_resources_and_the_install_tree_is_kept_whole(images, tmp_path):
    files = {
        "deploy.yaml": "kind: ConfigMap\nmetadata: {name: a}\n",
        "app/settings.yml": "images: []\nadditionalNamespaces: [monitoring]\n",
        "notes.txt": "read me\n",
        ".hidden.yaml": "kind: ConfigMap\n",
    }
    bundle = write_bundle(
        tmp_path / "b.tar", [("quay.io/acme/api:1.0", images["old"])], signing_key=KEY, files=files,
        facts={"quay.io/acme/api:1.0": {"spellings": []}},
    )  # fmt: skip
    kit, kustomization = _kit(bundle, Destination("registry.corp.example:5000", ""))
    assert {path: kit[f"install/{path}"].decode() for path in files} == files
    assert kustomization["resources"] == ["install/deploy.yaml"]
    assert "images" not in kustomization, "no spelling, no entry"
    assert (
        kit["kustomization.yaml"]
        .decode()
        .startswith("# acme, release 1, from an air-gap bundle; every image from registry.corp.example:5000.\n")
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("registry.corp.example", Destination("registry.corp.example", "")),
        ("Registry.Corp.Example:5000/vendor/apps/", Destination("registry.corp.example:5000", "vendor/apps")),
        ("127.0.0.1:5000/a_b", Destination("127.0.0.1:5000", "a_b")),
    ],
)
def test_a_registry_is_a_host_and_an_optional_namespace(value, expected):
    assert parse_destination(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "is not a registry host"),
        ("http://registry.corp.example", "without a scheme"),
        ("registry.corp.example/Vendor", "is not a repository path"),
        ("registry.corp.example//x", "is not a repository path"),
        ("bad host/x", "is not a registry host"),
    ],
)
def test_a_bad_registry_says_why(value, message):
    with pytest.raises(ValueError, match=message):
        parse_destination(value)
