"""Bundles for tests that need one without a build: images from OCI layouts written by
tests/realparts/images.py, through the portal's own writer (delivery/airgap/layout.py)."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from delivery.airgap.layout import BundleWriter
from portal_cli import bundleformat as fmt
from tests.realparts.images import LayoutImage


def _walk(layout: Path, digest: str, media_type: str) -> list[str]:
    """Every digest the image needs, children first."""
    blob = layout / "blobs" / "sha256" / digest.split(":", 1)[1]
    found: list[str] = []
    if media_type in fmt.MANIFEST_TYPES:
        for child in fmt.children(json.loads(blob.read_bytes())):
            found += _walk(layout, child["digest"], child.get("mediaType", ""))
    return [*found, digest]


def write_bundle(
    path: Path,
    images: list[tuple[str, LayoutImage]],
    *,
    signing_key: Ed25519PrivateKey,
    files: dict[str, str] | None = None,
    app: str = "acme",
    sequence: int = 1,
    facts: dict[str, dict] | None = None,
) -> Path:
    """A signed bundle at `path` holding each (reference, image) and the install `files`;
    `facts` replaces images.json fields of an image, by reference (its spellings, repository…)."""
    with open(path, "wb") as out:
        writer = BundleWriter(out, mtime=0)
        writer.add_json(fmt.OCI_LAYOUT, {"imageLayoutVersion": fmt.LAYOUT_VERSION})
        entries, listed = [], []
        for reference, image in images:
            needed = dict.fromkeys(_walk(image.directory, image.digest, image.media_type))
            for digest in needed:
                name = fmt.blob_path(digest)
                if not writer.has(name):
                    writer.add_file(name, image.directory / name)
            size = (image.directory / fmt.blob_path(image.digest)).stat().st_size
            entries.append(
                {
                    "mediaType": image.media_type,
                    "digest": image.digest,
                    "size": size,
                    "annotations": {fmt.REF_NAME: reference},
                }
            )
            name, _, tag = reference.rpartition(":")
            host, _, repository = name.partition("/")
            listed.append(
                fmt.image_entry(
                    reference=reference, source="public", name=name, tag=tag, digest=image.digest,
                    media_type=image.media_type, repository=repository, spellings=[name],
                    platforms=list(image.platforms) or ["linux/amd64"],
                    size=sum((image.directory / fmt.blob_path(d)).stat().st_size for d in needed),
                ) | (facts or {}).get(reference, {})
            )  # fmt: skip
        writer.add_json(fmt.INDEX, {"schemaVersion": 2, "mediaType": fmt.OCI_INDEX, "manifests": entries})
        writer.add_json(fmt.IMAGES, fmt.images_document(app=app, sequence=sequence, version="", images=listed))
        for file_path, content in sorted((files or {}).items()):
            writer.add_bytes(fmt.INSTALL + file_path, content.encode())
        writer.finish(signing_key)
    return path


def pem(key: Ed25519PrivateKey, path: Path) -> Path:
    """The key's public half as a PEM file at `path`."""
    path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return path


def rewrite(source: Path, target: Path, change: Callable[[str, bytes], bytes]) -> Path:
    """A copy of a bundle with `change(name, data)` applied to each member's bytes."""
    with tarfile.open(source) as src, tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as dst:
        for member in src.getmembers():
            data = change(member.name, src.extractfile(member).read())
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    return target
