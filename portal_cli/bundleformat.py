"""The air-gap bundle format: what the tar holds, the signature over SHA256SUMS, and a reader
that checks a bundle is complete and untampered.

Pure (cryptography only, no Django), so the portal, which writes and signs bundles, and the
`portal` CLI, which verifies and pushes them offline, share one implementation.

A bundle is an uncompressed tar (layers are compressed already) holding:

    oci-layout                an OCI image layout (https://github.com/opencontainers/image-spec/blob/main/image-layout.md)
    index.json                one entry per listed image, annotated
                              org.opencontainers.image.ref.name = the image's original reference
    blobs/sha256/<hex>        manifests, indexes, configs and layers, each once
    images.json               the release and its images (source, name, tag, digest, platforms, size)
    install/<path>            the release's files, as uploaded
    SHA256SUMS                `<hex>  <path>` for every file above, sorted by path
    SHA256SUMS.sig            the portal's Ed25519 signature over SIGNING_CONTEXT + SHA256SUMS

`verify_bundle` proves every file listed is present with its hash, nothing else is there, each
blob's name is its hash, every manifest's children, configs and layers are in the bundle, and
the signature is the portal's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import posixpath
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from portal_cli.licensefile import key_id

API_VERSION = "vendor-portal/v1"
KIND = "AirgapBundle"
SIGNING_CONTEXT = b"vendor-portal airgap bundle v1\n"
SIGNATURE_HEADER = "vendor-portal airgap bundle signature v1"
LAYOUT_VERSION = "1.0.0"
REF_NAME = "org.opencontainers.image.ref.name"

OCI_LAYOUT = "oci-layout"
INDEX = "index.json"
IMAGES = "images.json"
SUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.sig"
BLOBS = "blobs/sha256/"
INSTALL = "install/"

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset(
    {
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        OCI_INDEX,
        DOCKER_LIST,
    }
)

# Metadata files are small; a manifest is at most 4 MiB (Distribution's own limit).
MAX_METADATA = 64 * 1024 * 1024
MAX_MANIFEST = 4 * 1024 * 1024
CHUNK = 1024 * 1024
_HEX = re.compile(r"^[0-9a-f]{64}$")
_SUM_LINE = re.compile(r"^([0-9a-f]{64})  (\S(?:.*\S)?)$")


class BundleError(ValueError):
    """A bundle that is malformed, incomplete, tampered with, or not signed by the key given."""


# --- images.json --------------------------------------------------------------------------------


def image_entry(
    *,
    reference: str,
    source: str,
    name: str,
    tag: str,
    digest: str,
    media_type: str,
    repository: str,
    spellings: list[str],
    platforms: list[str],
    size: int,
    resolved_digest: str = "",
) -> dict[str, Any]:
    """One image in images.json (the same order as index.json's entries).

    `reference` is the image as listed (index.json's ref.name); `digest` the manifest or index
    the bundle holds (the resolved digest, or a new index when the app keeps only some
    platforms; then `resolved_digest` is the release's); `repository` the path the image
    takes in the customer's registry below its namespace (`acme/api`, `library/nginx`);
    `spellings` every name the release's manifests use for it, without tag or digest (what a
    kustomization's `images:` entries match); `size` of every blob of the image together.
    """
    return {
        "reference": reference,
        "source": source,
        "name": name,
        "tag": tag,
        "digest": digest,
        "resolvedDigest": resolved_digest or digest,
        "mediaType": media_type,
        "repository": repository,
        "spellings": spellings,
        "platforms": platforms,
        "size": size,
    }


def images_document(*, app: str, sequence: int, version: str, images: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "app": app,
        "release": {"sequence": sequence, "version": version},
        "images": images,
    }


# --- signing (the portal) ---------------------------------------------------------------------


def sums_text(hashes: dict[str, str]) -> bytes:
    """SHA256SUMS for {path: hex}, sorted by path, as sha256sum(1) writes it."""
    return "".join(f"{hashes[path]}  {path}\n" for path in sorted(hashes)).encode()


def sign_sums(sums: bytes, private_key: Ed25519PrivateKey) -> bytes:
    signature = private_key.sign(SIGNING_CONTEXT + sums)
    return (
        f"{SIGNATURE_HEADER}\n"
        f"algorithm: Ed25519\n"
        f"key-id: {key_id(private_key.public_key())}\n"
        f"signature: {base64.b64encode(signature).decode()}\n"
    ).encode()


def check_signature(sums: bytes, signature_file: bytes, public_key: Ed25519PublicKey) -> str:
    """The key id when `signature_file` is `public_key`'s signature over `sums`."""
    try:
        lines = signature_file.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise BundleError(f"{SIGNATURE} is not text") from None
    if not lines or lines[0] != SIGNATURE_HEADER:
        raise BundleError(f"{SIGNATURE} is not a vendor-portal bundle signature")
    fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    if fields.get("algorithm") != "Ed25519":
        raise BundleError(f"{SIGNATURE}: unsupported algorithm {fields.get('algorithm')!r}")
    expected = key_id(public_key)
    if fields.get("key-id") != expected:
        raise BundleError(
            f"the bundle is signed by key {fields.get('key-id')}, not by the key given ({expected}); "
            "get the public key of the portal that built it"
        )
    try:
        signature = base64.b64decode(fields.get("signature", ""), validate=True)
    except (binascii.Error, ValueError):
        raise BundleError(f"{SIGNATURE}: the signature is not base64") from None
    try:
        public_key.verify(signature, SIGNING_CONTEXT + sums)
    except InvalidSignature:
        raise BundleError(
            "the signature does not match SHA256SUMS: the bundle was changed after it was signed"
        ) from None
    return expected


def parse_sums(sums: bytes) -> dict[str, str]:
    """{path: hex} from SHA256SUMS; BundleError on a malformed line or a path twice."""
    hashes: dict[str, str] = {}
    try:
        text = sums.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(f"{SUMS} is not text") from None
    for number, line in enumerate(text.splitlines(), 1):
        match = _SUM_LINE.match(line)
        if not match:
            raise BundleError(f"{SUMS} line {number} is not `<sha256>  <path>`")
        digest, path = match.groups()
        if path in hashes:
            raise BundleError(f"{SUMS} lists {path} twice")
        hashes[path] = digest
    return hashes


# --- reading ----------------------------------------------------------------------------------


def safe_member_name(name: str) -> str:
    """A member path that stays inside the bundle (no absolute path, no `..`)."""
    normal = posixpath.normpath(name)
    if name.startswith("/") or normal.startswith("..") or normal != name.rstrip("/") or "\\" in name:
        raise BundleError(f"the bundle holds a path outside itself: {name!r}")
    return normal


def blob_path(digest: str) -> str:
    algorithm, _, hex_ = digest.partition(":")
    if algorithm != "sha256" or not _HEX.match(hex_):
        raise BundleError(f"not a sha256 digest: {digest!r}")
    return BLOBS + hex_


@dataclass(frozen=True)
class BundleImage:
    reference: str  # as listed: host/repository[:tag][@digest]
    digest: str  # the manifest or index the bundle holds
    media_type: str
    size: int
    facts: dict[str, Any] = field(default_factory=dict)  # the images.json entry


@dataclass
class VerifiedBundle:
    key_id: str  # "" when the signature was not checked
    images: list[BundleImage]
    blobs: int
    files: list[str]  # install/… paths
    metadata: dict[str, Any]  # images.json
    size: int  # of all files


class BundleReader:
    """A bundle tar opened for reading; members are found by name and read as streams."""

    def __init__(self, path: str) -> None:
        try:
            self.tar = tarfile.open(path, mode="r:")  # noqa: SIM115 (closed in close())
        except FileNotFoundError:
            raise BundleError(f"{path}: no such file") from None
        except (tarfile.TarError, OSError) as e:
            raise BundleError(f"{path} is not a tar file: {e}") from None
        self.members: dict[str, tarfile.TarInfo] = {}
        for member in self.tar.getmembers():
            name = safe_member_name(member.name)
            if member.isdir():
                continue
            if not member.isfile():
                raise BundleError(f"the bundle holds {name}, which is not a regular file")
            if name in self.members:
                raise BundleError(f"the bundle holds {name} twice")
            self.members[name] = member

    def __enter__(self) -> BundleReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.tar.close()

    def open(self, name: str) -> IO[bytes]:
        member = self.members.get(name)
        if member is None:
            raise BundleError(f"the bundle has no {name}")
        f = self.tar.extractfile(member)
        assert f is not None
        return f

    def read(self, name: str, *, limit: int = MAX_METADATA) -> bytes:
        member = self.members.get(name)
        if member is None:
            raise BundleError(f"the bundle has no {name}")
        if member.size > limit:
            raise BundleError(f"{name} is larger than {limit} bytes")
        with self.open(name) as f:
            return f.read()

    def json(self, name: str, *, limit: int = MAX_METADATA) -> Any:
        try:
            return json.loads(self.read(name, limit=limit))
        except (ValueError, RecursionError):
            raise BundleError(f"{name} is not JSON") from None

    def size_of(self, digest: str) -> int | None:
        member = self.members.get(blob_path(digest))
        return member.size if member else None

    def chunks(self, name: str) -> Iterator[bytes]:
        with self.open(name) as f:
            while data := f.read(CHUNK):
                yield data

    def hash_of(self, name: str) -> str:
        digest = hashlib.sha256()
        for data in self.chunks(name):
            digest.update(data)
        return digest.hexdigest()

    def images(self) -> list[BundleImage]:
        index = self.json(INDEX)
        metadata = self.json(IMAGES)
        entries = index.get("manifests") if isinstance(index, dict) else None
        listed = metadata.get("images") if isinstance(metadata, dict) else None
        if not isinstance(entries, list) or not isinstance(listed, list) or len(entries) != len(listed):
            raise BundleError(f"{INDEX} and {IMAGES} do not list the same images")
        images = []
        for entry, facts in zip(entries, listed, strict=True):
            if not isinstance(entry, dict) or not isinstance(facts, dict):
                raise BundleError(f"{INDEX} holds an entry that is not an object")
            reference = (entry.get("annotations") or {}).get(REF_NAME)
            digest, media_type, size = entry.get("digest"), entry.get("mediaType"), entry.get("size")
            if not isinstance(reference, str) or not reference:
                raise BundleError(f"{INDEX}: an entry has no {REF_NAME} annotation")
            if media_type not in MANIFEST_TYPES or not isinstance(size, int) or not isinstance(digest, str):
                raise BundleError(f"{INDEX}: the entry of {reference} is not an image manifest or index")
            blob_path(digest)
            images.append(BundleImage(reference, digest, media_type, size, facts))
        return images

    def manifest(self, digest: str) -> dict[str, Any]:
        data = self.read(blob_path(digest), limit=MAX_MANIFEST)
        try:
            manifest = json.loads(data)
        except (ValueError, RecursionError):
            raise BundleError(f"manifest {digest} is not JSON") from None
        if not isinstance(manifest, dict):
            raise BundleError(f"manifest {digest} is not a JSON object")
        return manifest


def children(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The descriptors a manifest or index points to: manifests, or config then layers."""
    if isinstance(manifest.get("manifests"), list):
        items = manifest["manifests"]
    else:
        items = ([manifest["config"]] if isinstance(manifest.get("config"), dict) else []) + list(
            manifest.get("layers") or []
        )
    for item in items:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("digest"), str)
            or not isinstance(item.get("size"), int)
        ):
            raise BundleError("a manifest holds a descriptor without a digest and a size")
    return items


def walk(reader: BundleReader, digest: str, media_type: str, size: int) -> Iterator[tuple[str, str, int]]:
    """(digest, media type, size) of everything an image needs, children before parents."""
    if reader.size_of(digest) is None:
        raise BundleError(f"blob {digest} is missing from the bundle")
    if reader.size_of(digest) != size:
        raise BundleError(f"blob {digest} has {reader.size_of(digest)} bytes, its descriptor says {size}")
    if media_type in MANIFEST_TYPES:
        for child in children(reader.manifest(digest)):
            yield from walk(reader, child["digest"], child.get("mediaType", ""), child["size"])
    yield digest, media_type, size


def verify_bundle(path: str, public_key: Ed25519PublicKey | None) -> VerifiedBundle:
    """Check a bundle completely (see the module docstring); BundleError says what is wrong.

    Without `public_key` everything but the signature is checked (key_id is ""): that proves
    the bundle arrived whole, not who made it."""
    with BundleReader(path) as reader:
        for required in (OCI_LAYOUT, INDEX, IMAGES, SUMS, SIGNATURE):
            if required not in reader.members:
                raise BundleError(f"the bundle has no {required}: it is incomplete or not an air-gap bundle")
        sums = reader.read(SUMS)
        key = check_signature(sums, reader.read(SIGNATURE, limit=4096), public_key) if public_key else ""
        listed = parse_sums(sums)
        present = set(reader.members) - {SUMS, SIGNATURE}
        if missing := sorted(set(listed) - present):
            raise BundleError(f"{len(missing)} file(s) listed in {SUMS} are missing, first {missing[0]}")
        if extra := sorted(present - set(listed)):
            raise BundleError(f"{extra[0]} is in the bundle but not in {SUMS}")
        for name in sorted(listed):
            actual = reader.hash_of(name)
            if actual != listed[name]:
                raise BundleError(f"{name} does not match its sha256 in {SUMS}: the bundle is damaged or was changed")
            if name.startswith(BLOBS) and name[len(BLOBS) :] != actual:
                raise BundleError(f"{name} is named for another digest than its content's")
        layout = reader.json(OCI_LAYOUT)
        if not isinstance(layout, dict) or layout.get("imageLayoutVersion") != LAYOUT_VERSION:
            raise BundleError(f"{OCI_LAYOUT} does not say imageLayoutVersion {LAYOUT_VERSION}")
        images = reader.images()
        needed: set[str] = set()
        for image in images:
            needed.update(d for d, _, _ in walk(reader, image.digest, image.media_type, image.size))
        blobs = {name for name in listed if name.startswith(BLOBS)}
        return VerifiedBundle(
            key_id=key,
            images=images,
            blobs=len(blobs),
            files=sorted(name for name in listed if name.startswith(INSTALL)),
            metadata=reader.json(IMAGES),
            size=sum(reader.members[name].size for name in listed),
        )
