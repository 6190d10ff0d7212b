"""Where large files live: a folder under var/ by default, any S3-compatible bucket when a URL
says so (`s3://bucket/prefix`; boto3 takes the endpoint and credentials from the usual AWS
variables: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, …).

Air-gap bundles use it (AIRGAP_STORAGE_URL); it knows keys and bytes, nothing of bundles.
Keys are relative paths of safe characters (`team-3/bundle-7.tar`); reads stream in chunks,
writes take a local file (boto3 uploads it in parts), so memory stays flat at any size.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit

# Bytes per read: what a stream being served holds in memory. 1 MiB pieces cost a web process
# ~100 MB more at 50 cached blobs streaming at once (bench/proxy.py), at no gain in speed.
CHUNK = 256 * 1024
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


class StorageError(Exception):
    """The storage could not do what was asked; the message says what and where."""


class StorageConfigError(ValueError):
    """A storage URL that cannot be used (named in the message)."""


@dataclass(frozen=True)
class Stat:
    size: int


@dataclass(frozen=True)
class Entry:
    key: str
    modified: float  # seconds since the epoch


class ObjectStore(Protocol):
    kind: str  # "file" or "s3"

    def put_file(self, key: str, path: Path, *, move: bool = False) -> None: ...

    def stat(self, key: str) -> Stat | None: ...

    def read(
        self, key: str, start: int = 0, end: int | None = None, piece: Callable[[], int] | None = None
    ) -> Iterator[bytes]: ...

    def delete(self, key: str) -> None: ...

    def entries(self) -> Iterator[Entry]: ...

    def presigned_url(self, key: str, *, expires_in: int, filename: str) -> str | None: ...


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key.split("/"):
        raise StorageError(f"not a storage key: {key!r}")
    return key


class FileStore:
    """Files below one folder; a write lands under a temporary name, then is renamed."""

    kind = "file"

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"FileStore({str(self.root)!r})"

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_file(self, key: str, path: Path, *, move: bool = False) -> None:
        """Copy `path` in; with `move` (the caller no longer needs it) rename it in when it is on
        the same file system: writing a large file a second time is what took the time."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        if move:
            try:
                os.replace(path, target)
                return
            except OSError:
                pass  # another file system: copied below
        partial = target.with_name(target.name + ".partial")
        try:
            shutil.copyfile(path, partial)
            os.replace(partial, target)
        except OSError as e:
            partial.unlink(missing_ok=True)
            raise StorageError(f"could not write {target}: {e.strerror}") from None

    def stat(self, key: str) -> Stat | None:
        try:
            return Stat(self.path(key).stat().st_size)
        except FileNotFoundError:
            return None

    def read(
        self, key: str, start: int = 0, end: int | None = None, piece: Callable[[], int] | None = None
    ) -> Iterator[bytes]:
        """Bytes start..end (end exclusive; None: to the end of the file), each read taking
        `piece()` bytes, asked anew before each read (default CHUNK)."""
        try:
            f: BinaryIO = open(self.path(key), "rb")  # noqa: SIM115 (closed by the generator)
        except FileNotFoundError:
            raise StorageError(f"{key} is not in the storage") from None
        return _chunks(f, start, end, piece or (lambda: CHUNK))

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def entries(self) -> Iterator[Entry]:
        """Every file in the store, partial writes included, in no order."""
        for parent, _, names in os.walk(self.root):
            for name in names:
                path = Path(parent, name)
                try:
                    modified = path.stat().st_mtime
                except FileNotFoundError:
                    continue  # removed while we walked
                yield Entry(path.relative_to(self.root).as_posix(), modified)

    def presigned_url(self, key: str, *, expires_in: int, filename: str) -> str | None:
        return None  # the portal streams files itself


def _chunks(f: BinaryIO, start: int, end: int | None, piece: Callable[[], int]) -> Iterator[bytes]:
    with f:
        f.seek(start)
        left = None if end is None else end - start
        while left is None or left > 0:
            data = f.read(piece() if left is None else min(piece(), left))
            if not data:
                return
            if left is not None:
                left -= len(data)
            yield data


class S3Store:
    """Objects under a prefix of one bucket, through boto3."""

    kind = "s3"

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = None

    def __repr__(self) -> str:
        return f"S3Store('s3://{self.bucket}/{self.prefix}')"

    @property
    def client(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            # Path-style addressing: works with every S3-compatible server (moto, MinIO, Ceph).
            config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"})
            self._client = boto3.client("s3", config=config)
        return self._client

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _error(self, what: str, key: str, e: Exception) -> StorageError:
        return StorageError(f"bucket {self.bucket}: {what} {self._name(key)} failed: {_describe(e)}")

    def put_file(self, key: str, path: Path, *, move: bool = False) -> None:
        try:
            self.client.upload_file(str(path), self.bucket, self._name(key))
        except Exception as e:  # boto3 raises many kinds; every one is "could not write"
            raise self._error("writing", key, e) from None

    def stat(self, key: str) -> Stat | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._error("reading", key, e) from None
        except Exception as e:
            raise self._error("reading", key, e) from None
        return Stat(int(head["ContentLength"]))

    def read(
        self, key: str, start: int = 0, end: int | None = None, piece: Callable[[], int] | None = None
    ) -> Iterator[bytes]:
        """Bytes start..end, in pieces of `piece()` bytes as asked once (default CHUNK)."""
        ranged = {"Range": f"bytes={start}-{'' if end is None else end - 1}"} if start or end is not None else {}
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._name(key), **ranged)["Body"]
        except Exception as e:
            raise self._error("reading", key, e) from None
        return _stream(body, piece() if piece else CHUNK)

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))
        except Exception as e:
            raise self._error("deleting", key, e) from None

    def entries(self) -> Iterator[Entry]:
        """Every object under the prefix, in key order, listed 1000 to a request."""
        start = f"{self.prefix}/" if self.prefix else ""
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
                for item in page.get("Contents", []):
                    yield Entry(item["Key"].removeprefix(start), item["LastModified"].timestamp())
        except Exception as e:
            raise StorageError(
                f"bucket {self.bucket}: listing s3://{self.bucket}/{start} failed: {_describe(e)}"
            ) from None

    def presigned_url(self, key: str, *, expires_in: int, filename: str) -> str | None:
        params = {
            "Bucket": self.bucket,
            "Key": self._name(key),
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
            "ResponseContentType": "application/x-tar",
        }
        try:
            return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        except Exception as e:
            raise self._error("signing a link to", key, e) from None


def _stream(body, size: int) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(size)
    finally:
        body.close()


def _describe(e: Exception) -> str:
    code = getattr(e, "response", {}).get("Error", {}).get("Code") if hasattr(e, "response") else None
    return f"{code}" if code else f"{type(e).__name__}: {e}"


def store_from_url(url: str, *, default_root: Path) -> ObjectStore:
    """`""` → files under default_root; `file:///abs/path` → files there; `s3://bucket/prefix`."""
    if not url:
        return FileStore(default_root)
    parts = urlsplit(url)
    if parts.scheme == "file":
        if not parts.path.startswith("/") or parts.netloc:
            raise StorageConfigError(f"{url}: a file URL names an absolute folder (file:///srv/portal/bundles)")
        return FileStore(Path(parts.path))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise StorageConfigError(f"{url}: an S3 URL names its bucket (s3://bucket/prefix)")
        if parts.query or parts.fragment:
            raise StorageConfigError(f"{url}: an S3 URL has no query or fragment (s3://bucket/prefix)")
        return S3Store(parts.netloc, parts.path)
    raise StorageConfigError(f"{url}: the storage is a file:// folder or an s3://bucket/prefix")
