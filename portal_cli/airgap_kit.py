"""The air-gap install kit `portal airgap push --out DIR` writes: what the customer applies
with `kubectl apply -k DIR` once the images are in their registry.

    DIR/
      kustomization.yaml   resources (the release's manifests) and `images:` sending every
                           image of the bundle to the customer's registry, pinned to its digest
      install/…            the bundle's install files, byte for byte
      manifests/…          only for a file that mixes the app's settings with manifests: its
                           manifests without the settings (the online kit's rule)

Which files are resources and how `images:` entries are formed is portal_cli/kitfiles.py,
the rules the portal's online kit follows too; here every image is rewritten (public ones
and the portal registry's included), since the cluster reaches nothing else.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

import yaml

from portal_cli import bundleformat as fmt
from portal_cli import kitfiles
from portal_cli.airgap_push import Destination, image_name

YAML_SUFFIXES = (".yaml", ".yml")
KUSTOMIZATION = "kustomization.yaml"


def kit_files(reader: fmt.BundleReader, verified: fmt.VerifiedBundle, destination: Destination) -> dict[str, bytes]:
    """The kit's files, path inside DIR → bytes."""
    files: dict[str, bytes] = {}
    texts: dict[str, str] = {}
    for member in verified.files:
        path = member[len(fmt.INSTALL) :]
        data = reader.read(member)
        files[f"install/{path}"] = data
        if path.lower().endswith(YAML_SUFFIXES) and not posixpath.basename(path).startswith("."):
            texts[path] = data.decode("utf-8", errors="replace")  # kubectl names what does not parse
    manifests, _ = kitfiles.split_manifests(texts)
    resources = []
    for path, text in manifests.items():
        if text == texts[path]:
            resources.append(f"install/{path}")
        else:
            files[f"manifests/{path}"] = text.encode()
            resources.append(f"manifests/{path}")
    listings = []
    for image in verified.images:
        repository, _ = image_name(image)
        spellings = image.facts.get("spellings") or []
        spellings = [s for s in spellings if isinstance(s, str) and s]
        listings.append((repository, destination.reference(repository), spellings, image.digest))
    document: dict = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    }
    if entries := kitfiles.image_entries(listings):
        document["images"] = entries
    files[KUSTOMIZATION] = (_header(verified, destination) + _dump(document)).encode()
    return files


def _header(verified: fmt.VerifiedBundle, destination: Destination) -> str:
    metadata = verified.metadata if isinstance(verified.metadata, dict) else {}
    release = metadata.get("release") if isinstance(metadata.get("release"), dict) else {}
    version = f" ({release['version']})" if release.get("version") else ""
    return (
        f"# {_one_line(metadata.get('app'))}, release {_one_line(release.get('sequence'))}{version}, from an air-gap "
        f"bundle; every image from {destination.reference('').rstrip('/')}.\n"
        "# Apply with: kubectl apply -k .   (preview: kubectl kustomize .)\n"
    )


def _one_line(value: object) -> str:
    return "".join(c if c.isprintable() else "?" for c in str(value if value is not None else "?"))


def _dump(document: dict) -> str:
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=2**30)


def check_out_dir(path: str) -> None:
    """Before pushing: DIR must be new or empty, so no file of an older kit is applied by mistake."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ValueError(f"--out {path}: not a folder")
    if target.is_dir() and any(target.iterdir()):
        raise ValueError(f"--out {path}: the folder is not empty; give a new or empty one")


def write_kit(path: str, files: dict[str, bytes]) -> None:
    root = Path(path)
    for name, data in sorted(files.items()):
        fmt.safe_member_name(name)  # install paths come from the bundle: they stay inside DIR
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as f:
            f.write(data)
