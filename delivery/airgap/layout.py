"""Writing a bundle tar (the format is portal_cli/bundleformat.py): members in a fixed order,
fixed owners and times, the whole file's sha256 counted while it is written, SHA256SUMS and
its signature last. Memory stays flat: blobs are copied from files in chunks."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from portal_cli import bundleformat as fmt

CHUNK = 1024 * 1024


class _Counting(io.RawIOBase):
    """A write-only file that hashes and counts what passes through to `out`."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.out.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)


class _Hashing(io.RawIOBase):
    """A read-only file that hashes what is read from `source`."""

    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.source.read(len(buffer))
        buffer[: len(data)] = data
        self.sha256.update(data)
        return len(data)


class BundleWriter:
    """Writes one bundle to `out` (a file opened for writing)."""

    def __init__(self, out: BinaryIO, *, mtime: int) -> None:
        self._out = _Counting(out)
        # copybufsize: tarfile's stream appends each read to its pending buffer and slices it;
        # with its 16 KiB default reads that copied ~1 MiB per read (bench/airgap.py: the tar of
        # a 256 MiB layer took 1.9 s; with 1 MiB reads, see the commit).
        self._tar = tarfile.open(  # noqa: SIM115
            fileobj=self._out, mode="w|", format=tarfile.PAX_FORMAT, bufsize=CHUNK, copybufsize=CHUNK
        )
        self._mtime = mtime
        self.hashes: dict[str, str] = {}

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        fmt.safe_member_name(name)
        if name in self.hashes:
            raise ValueError(f"{name} is in the bundle already")
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, self._mtime, 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    def add_bytes(self, name: str, data: bytes) -> None:
        self._tar.addfile(self._info(name, len(data)), io.BytesIO(data))
        self.hashes[name] = hashlib.sha256(data).hexdigest()

    def add_json(self, name: str, document: Any) -> None:
        self.add_bytes(name, json.dumps(document, indent=2, sort_keys=False).encode() + b"\n")

    def add_file(self, name: str, path: Path, *, sha256: str = "") -> None:
        """A file copied in chunks; its hash is counted as it is read, unless it is known
        already (`sha256`: a blob verified against its digest when it was staged; hashing it
        again was a third of the build's time for a 256 MiB layer, bench/airgap.py)."""
        with open(path, "rb") as f:
            if sha256:
                self._tar.addfile(self._info(name, path.stat().st_size), f)
                self.hashes[name] = sha256
                return
            source = _Hashing(f)
            self._tar.addfile(self._info(name, path.stat().st_size), io.BufferedReader(source, CHUNK))
        self.hashes[name] = source.sha256.hexdigest()

    def has(self, name: str) -> bool:
        return name in self.hashes

    def finish(self, signing_key: Ed25519PrivateKey) -> tuple[str, int]:
        """Write SHA256SUMS and its signature, close the tar; the bundle's sha256 and size."""
        sums = fmt.sums_text(self.hashes)
        signature = fmt.sign_sums(sums, signing_key)
        for name, data in ((fmt.SUMS, sums), (fmt.SIGNATURE, signature)):
            self._tar.addfile(self._info(name, len(data)), io.BytesIO(data))
        self._tar.close()
        return self._out.sha256.hexdigest(), self._out.size
