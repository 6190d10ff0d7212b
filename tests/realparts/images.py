"""Build small OCI images without Docker (an OCI layout written in Python) and push them with skopeo."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


@dataclass(frozen=True)
class LayoutImage:
    """An image (or index) stored in an OCI layout directory under `tag`."""

    directory: Path
    tag: str
    digest: str  # of the top manifest or index in the layout
    media_type: str
    layer_digests: tuple[str, ...]  # all layers (of every platform, for an index)
    platforms: tuple[str, ...] = ()
    child_digests: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        return f"oci:{self.directory}:{self.tag}"


@dataclass(frozen=True)
class PushedImage:
    """What the registry holds after a push: compare a client's result with these."""

    repository: str
    tag: str
    digest: str  # manifest (or index) digest as stored by the registry
    media_type: str
    layer_digests: tuple[str, ...]
    platforms: tuple[str, ...] = ()
    child_digests: tuple[str, ...] = ()
    manifest: bytes = field(default=b"", repr=False)

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(data: object) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


class _Layout:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        (directory / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def put(self, data: bytes, media_type: str, **extra: object) -> dict[str, object]:
        digest = _digest(data)
        (self.directory / "blobs" / "sha256" / digest.split(":", 1)[1]).write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data), **extra}

    def tag(self, descriptor: dict[str, object], tag: str) -> None:
        path = self.directory / "index.json"
        index = json.loads(path.read_text()) if path.exists() else {"schemaVersion": 2, "manifests": []}
        index["manifests"] = [
            m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag
        ]
        index["manifests"].append({**descriptor, "annotations": {"org.opencontainers.image.ref.name": tag}})
        path.write_bytes(_json(index))


def _layer(rng: random.Random, name: str, size: int) -> tuple[bytes, str]:
    """A gzipped tar with two files of random bytes, byte-for-byte reproducible; and its diff id."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(2):
            data = rng.randbytes(size // 2)
            info = tarfile.TarInfo(f"{name}/file-{i}.bin")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    return gzip.compress(raw, compresslevel=1, mtime=0), _digest(raw)


def _write_image(layout: _Layout, seed: str, *, layers: int, arch: str, layer_size: int) -> tuple[dict, list[str]]:
    rng = random.Random(f"{seed}/{arch}")
    layer_descriptors, diff_ids = [], []
    for i in range(layers):
        blob, diff_id = _layer(rng, f"{seed}-{arch}-{i}", layer_size)
        layer_descriptors.append(layout.put(blob, OCI_LAYER))
        diff_ids.append(diff_id)
    config = {
        "architecture": arch,
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/true"], "Labels": {"seed": seed}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": f"layer {i}"} for i in range(layers)],
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": layout.put(_json(config), OCI_CONFIG),
        "layers": layer_descriptors,
    }
    return layout.put(_json(manifest), OCI_MANIFEST), [str(d["digest"]) for d in layer_descriptors]


def build_image(
    directory: Path, *, tag: str = "1.0.0", seed: str = "api", layers: int = 2, layer_size: int = 32 * 1024
) -> LayoutImage:
    """A single-platform linux/amd64 image with `layers` layers."""
    layout = _Layout(directory)
    descriptor, layer_digests = _write_image(layout, seed, layers=layers, arch="amd64", layer_size=layer_size)
    layout.tag(descriptor, tag)
    return LayoutImage(directory, tag, str(descriptor["digest"]), OCI_MANIFEST, tuple(layer_digests))


def build_index(
    directory: Path,
    *,
    tag: str = "1.0.0",
    seed: str = "multi",
    architectures: tuple[str, ...] = ("amd64", "arm64"),
    layer_size: int = 16 * 1024,
) -> LayoutImage:
    """A multi-arch OCI index, one single-layer image per architecture."""
    layout = _Layout(directory)
    children, all_layers = [], []
    for arch in architectures:
        descriptor, layer_digests = _write_image(layout, seed, layers=1, arch=arch, layer_size=layer_size)
        children.append({**descriptor, "platform": {"architecture": arch, "os": "linux"}})
        all_layers += layer_digests
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
    descriptor = layout.put(_json(index), OCI_INDEX)
    layout.tag(descriptor, tag)
    return LayoutImage(
        directory,
        tag,
        str(descriptor["digest"]),
        OCI_INDEX,
        tuple(all_layers),
        platforms=tuple(f"linux/{a}" for a in architectures),
        child_digests=tuple(str(c["digest"]) for c in children),
    )


def _skopeo(*args: str) -> subprocess.CompletedProcess[bytes]:
    # --insecure-policy: copying our own test content between local places.
    result = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"skopeo {args[0]} failed: {result.stderr.decode(errors='replace')[-2000:]}")
    return result


def push(
    image: LayoutImage,
    registry: str,
    repository: str,
    *,
    tag: str | None = None,
    creds: str | None = None,
    docker_v2s2: bool = False,
) -> PushedImage:
    """skopeo copy the layout image to `registry` (host:port, plain http) and read back what it stored."""
    tag = tag or image.tag
    target = f"docker://{registry}/{repository}:{tag}"
    digestfile = image.directory / f".digest-{repository.replace('/', '_')}-{tag}"
    args = ["copy", "--quiet", "--dest-tls-verify=false", "--digestfile", str(digestfile)]
    if creds:
        args += ["--dest-creds", creds]
    if docker_v2s2:
        args += ["--format", "v2s2"]
    if image.child_digests:
        args.append("--all")
    _skopeo(*args, image.source, target)
    digest = digestfile.read_text().strip()

    inspect = ["inspect", "--raw", "--tls-verify=false", *(["--creds", creds] if creds else [])]
    raw = _skopeo(*inspect, target).stdout
    if _digest(raw) != digest:
        raise RuntimeError(f"{target}: stored manifest digest {_digest(raw)} != pushed {digest}")
    manifest = json.loads(raw)
    media_type = manifest.get("mediaType", OCI_MANIFEST)
    if image.child_digests:
        return PushedImage(
            repository,
            tag,
            digest,
            media_type,
            image.layer_digests,
            image.platforms,
            tuple(m["digest"] for m in manifest["manifests"]),
            raw,
        )
    layers = tuple(layer["digest"] for layer in manifest["layers"])
    return PushedImage(repository, tag, digest, media_type, layers, manifest=raw)
