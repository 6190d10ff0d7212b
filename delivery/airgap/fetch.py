"""Fetching a bundle's images into its staging folder, by digest, through the registry clients.

One image is fetched in two steps, each on an event loop of its own (no database here):
`plan_image` reads its manifests (an index whole, or only the chosen platforms' children under
a new index) and lists every blob it needs; `fetch_blobs` streams the blobs not staged yet.
A blob lands in `blobs/sha256/<hex>` only after its size and digest checked out (written under
`.partial`, then renamed), so a build that failed or was killed fetches only what is missing
when it runs again. Memory stays flat: blobs go to disk in pieces of at most 1 MiB.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from portal import ocispec, safejson
from portal.outbound.async_client import GuardedClient
from portal.outbound.errors import ErrorCategory, RegistryError
from registries.clients import oci
from registries.clients.distribution import AsyncPrivateRegistry, PrivateRegistry
from registries.image_access import Target

# Blobs of one image streamed at once (layers of a many-layer image overlap; one large layer
# is one stream either way).
CONCURRENCY = 3
# Between two reads of a blob (no total limit: a layer may take minutes), and to connect.
BLOB_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
# Docker's attestation manifests sit in an index as unknown/unknown and name their image.
_REFERENCE_DIGEST = "vnd.docker.reference.digest"
_UNKNOWN = "unknown/unknown"


class PlanError(Exception):
    """An image the bundle cannot hold as asked (a chosen platform it lacks); the message says
    which image and what it has."""


class BlobSource(Protocol):
    """What the fetch reads from: OciClient, or the private registry's client."""

    async def get_manifest(self, repository: str, reference: str) -> oci.Manifest: ...

    def stream_blob(self, repository: str, descriptor: oci.Descriptor) -> AsyncIterator[memoryview]: ...


@asynccontextmanager
async def open_source(target: Target) -> AsyncIterator[BlobSource]:
    """A logged-in client for the target's registry (anonymous when it has no credentials)."""
    if target.endpoint is None:
        with PrivateRegistry(target.private_url) as registry:
            yield AsyncPrivateRegistry(registry)
        return
    async with GuardedClient(timeout=BLOB_TIMEOUT) as http:
        client = oci.OciClient(
            target.endpoint,
            http,
            username=target.username or None,
            password=target.password or None,
            allowed_realm_hosts=target.realm_hosts,
        )
        await client.ping()
        await client.authenticate(target.repository)
        yield client


# --- the staging folder -------------------------------------------------------------------------


class Stage:
    """One bundle's staging folder: `blobs/sha256/<hex>`, each file complete and verified."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"

    def path(self, digest: str) -> Path:
        algorithm, _, hex_ = digest.partition(":")
        if algorithm != "sha256" or len(hex_) != 64 or not all(c in "0123456789abcdef" for c in hex_):
            raise RegistryError(f"{digest[:80]} is not a sha256 digest", ErrorCategory.INVALID_RESPONSE)
        return self.blobs / hex_

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def _partial(self, digest: str) -> Path:
        self.blobs.mkdir(parents=True, exist_ok=True)
        return self.path(digest).with_suffix(".partial")

    def put_bytes(self, digest: str, data: bytes) -> None:
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise RegistryError(f"{digest} does not match its digest", ErrorCategory.INVALID_RESPONSE)
        partial = self._partial(digest)
        partial.write_bytes(data)
        os.replace(partial, self.path(digest))

    async def put_stream(self, digest: str, pieces: AsyncIterator[memoryview], progress: Progress) -> None:
        """Write a verified stream; the file gets its name only when the stream ended cleanly."""
        partial = self._partial(digest)
        try:
            with open(partial, "wb") as f:
                async with aclosing(pieces):
                    async for piece in pieces:
                        f.write(piece)
                        progress.bytes_done += len(piece)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, self.path(digest))


@dataclass
class Progress:
    """Counters the fetch thread moves and the building thread writes to the row."""

    bytes_done: int = 0  # fetched or found staged
    bytes_reused: int = 0  # found staged by an earlier attempt
    counted: set[str] = field(default_factory=set)  # digests already counted in this build

    def count(self, digest: str, size: int, *, staged: bool) -> bool:
        """Count a blob once per build; True when it still has to be fetched."""
        if digest in self.counted:
            return False
        self.counted.add(digest)
        if staged:
            self.bytes_reused += max(size, 0)
            self.bytes_done += max(size, 0)
        return not staged


# --- planning -------------------------------------------------------------------------------------


@dataclass
class ImagePlan:
    digest: str  # what the bundle holds: the resolved digest, or a new index of the chosen platforms
    media_type: str
    size: int  # of that manifest or index
    platforms: list[str]
    blobs: dict[str, oci.Descriptor] = field(default_factory=dict)  # configs and layers, in order
    manifests: dict[str, int] = field(default_factory=dict)  # digest → size, every manifest and index

    @property
    def total(self) -> int:
        """Every byte of the image: manifests, configs and layers."""
        return sum(self.manifests.values()) + sum(max(d.size, 0) for d in self.blobs.values())


def same_platform(chosen: str, offered: str) -> bool:
    """`linux/arm64` takes `linux/arm64/v8` (any variant); `linux/arm/v7` only itself."""
    return offered == chosen or offered.startswith(chosen + "/")


async def plan_image(
    target: Target,
    stage: Stage,
    progress: Progress,
    *,
    digest: str,
    media_type: str,
    chosen: list[str],
    known_platforms: list[str],
) -> ImagePlan:
    """Read (or find staged) every manifest of the image at `digest`; what to fetch for it."""
    async with open_source(target) as source:
        reader = _Manifests(source, target.repository, stage, progress)
        top = await reader.get(digest, media_type)
        if not top.is_index:
            if chosen and known_platforms:
                _check_chosen(target.label, chosen, known_platforms)
            plan = ImagePlan(top.digest, top.media_type, top.size, list(known_platforms))
            plan.manifests[top.digest] = top.size
            _add_image(plan, top)
            return plan
        entries = _entries(top)
        kept = _select(target.label, entries, chosen) if chosen else entries
        if len(kept) == len(entries):
            plan = ImagePlan(top.digest, top.media_type, top.size, _platforms(kept))
            plan.manifests[top.digest] = top.size
        else:
            raw = _new_index(top, kept)
            new_digest = "sha256:" + hashlib.sha256(raw).hexdigest()
            if progress.count(new_digest, len(raw), staged=stage.has(new_digest)):
                stage.put_bytes(new_digest, raw)
            plan = ImagePlan(new_digest, top.media_type, len(raw), _platforms(kept))
            plan.manifests[new_digest] = len(raw)
        for entry in kept:
            await reader.walk(plan, entry["digest"], str(entry.get("mediaType", "")))
        return plan


class _Manifests:
    """Manifests by digest: from the staging folder when there, else fetched (exact bytes kept)."""

    def __init__(self, source: BlobSource, repository: str, stage: Stage, progress: Progress) -> None:
        self.source, self.repository, self.stage, self.progress = source, repository, stage, progress

    async def get(self, digest: str, media_type: str) -> oci.Manifest:
        staged = self.stage.has(digest)
        if staged:
            raw = self.stage.path(digest).read_bytes()
            manifest = _parsed(digest, raw, media_type)
        else:
            manifest = await self.source.get_manifest(self.repository, digest)
            if manifest.digest != digest:  # the client checked the body against `digest`
                raise RegistryError(f"{digest} does not match its digest", ErrorCategory.INVALID_RESPONSE)
            self.stage.put_bytes(digest, manifest.raw)
        if self.progress.count(digest, manifest.size, staged=staged):
            self.progress.bytes_done += manifest.size
        return manifest

    async def walk(self, plan: ImagePlan, digest: str, media_type: str, depth: int = 0) -> None:
        """A child of an index: an image's manifest, config and layers; a nested index whole."""
        manifest = await self.get(digest, media_type)
        plan.manifests[digest] = manifest.size
        if not manifest.is_index:
            _add_image(plan, manifest)
            return
        if depth >= 2:
            raise RegistryError(f"{digest} nests indexes too deep", ErrorCategory.INVALID_RESPONSE)
        for entry in _entries(manifest):
            await self.walk(plan, entry["digest"], str(entry.get("mediaType", "")), depth + 1)


def _parsed(digest: str, raw: bytes, media_type: str) -> oci.Manifest:
    try:
        data = safejson.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise RegistryError(f"the staged manifest {digest} is not JSON", ErrorCategory.INVALID_RESPONSE)
    declared = data.get("mediaType")
    if declared in ocispec.MANIFEST_MEDIA_TYPES:
        media_type = declared
    elif media_type not in ocispec.MANIFEST_MEDIA_TYPES:
        media_type = ocispec.OCI_INDEX if isinstance(data.get("manifests"), list) else ocispec.OCI_MANIFEST
    return oci.Manifest(digest, media_type, len(raw), data, raw)


def _add_image(plan: ImagePlan, manifest: oci.Manifest) -> None:
    for descriptor in [manifest.config, *manifest.layers]:
        if descriptor is not None:
            plan.blobs.setdefault(descriptor.digest, descriptor)


def _entries(index: oci.Manifest) -> list[dict[str, Any]]:
    """Every entry the index lists (attestations too: the index is kept byte for byte)."""
    entries = index.data.get("manifests")
    found = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    if not found or any(not ocispec.is_digest(str(e.get("digest", ""))) for e in found):
        raise RegistryError(f"the index {index.digest} lists no usable manifests", ErrorCategory.INVALID_RESPONSE)
    return found


def _platform(entry: dict[str, Any]) -> str:
    platform = entry.get("platform")
    if not isinstance(platform, dict):
        return ""
    return "/".join(str(platform[k]) for k in ("os", "architecture", "variant") if platform.get(k))


def _platforms(entries: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(p for e in entries if (p := _platform(e)) and p != _UNKNOWN))


def _check_chosen(label: str, chosen: list[str], offered: list[str]) -> None:
    missing = [c for c in chosen if not any(same_platform(c, o) for o in offered)]
    if missing:
        raise PlanError(
            f"{label} has no {', '.join(missing)} (it has {', '.join(offered) or 'no platform named'}); "
            "build it for that platform, or change the app's air-gap platforms, then build the bundle again."
        )


def _select(label: str, entries: list[dict[str, Any]], chosen: list[str]) -> list[dict[str, Any]]:
    """The entries of the chosen platforms, and the attestations that name one of them."""
    _check_chosen(label, chosen, _platforms(entries))
    kept = [e for e in entries if any(same_platform(c, _platform(e)) for c in chosen)]
    digests = {e["digest"] for e in kept}
    return [
        e for e in entries
        if e["digest"] in digests or (e.get("annotations") or {}).get(_REFERENCE_DIGEST) in digests
    ]  # fmt: skip


def _new_index(index: oci.Manifest, kept: list[dict[str, Any]]) -> bytes:
    """An index of the kept entries only, in the original's type (its own digest)."""
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": index.media_type, "manifests": kept}
    if isinstance(index.data.get("annotations"), dict):
        document["annotations"] = index.data["annotations"]
    return json.dumps(document, separators=(",", ":")).encode()


# --- fetching -------------------------------------------------------------------------------------


async def fetch_blobs(target: Target, stage: Stage, progress: Progress, blobs: list[oci.Descriptor]) -> None:
    """Stream each blob that is not staged yet, a few at once. After a failure no new blob is
    started; those under way finish (and stay staged for the next try), then it is raised."""
    if not blobs:
        return
    async with open_source(target) as source:
        limit = asyncio.Semaphore(CONCURRENCY)
        failed: list[BaseException] = []

        async def one(descriptor: oci.Descriptor) -> None:
            async with limit:
                if failed:
                    return
                try:
                    pieces = source.stream_blob(target.repository, descriptor)
                    await stage.put_stream(descriptor.digest, pieces, progress)
                except Exception as e:
                    failed.append(e)

        await asyncio.gather(*(one(d) for d in blobs))
        if failed:
            raise failed[0]
