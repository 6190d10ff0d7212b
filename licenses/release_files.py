"""A release's files as uploaded: a folder's files or a .tar.gz, read into {path: text} with
bounds on count and size, so a hostile archive (a bomb, a `../` path, a link) stores nothing."""

from __future__ import annotations

import io
import posixpath
import tarfile
import zlib

from django.core.exceptions import ValidationError

MAX_FILES = 1000
MAX_FILE_BYTES = 1024 * 1024
MAX_TOTAL_BYTES = 16 * 1024 * 1024
MAX_ARCHIVE_BYTES = 16 * 1024 * 1024  # compressed, as uploaded
YAML_SUFFIXES = (".yaml", ".yml")


def _error(message: str) -> ValidationError:
    return ValidationError({"files": [message]})


def clean_path(name: str) -> str:
    """A relative path inside the release: forward slashes, no `..`, no leading `/`."""
    name = (name or "").replace("\\", "/")
    path = posixpath.normpath(name).lstrip("/")
    if not path or path == "." or path.startswith("../") or path == ".." or "\x00" in path:
        raise _error(f"“{name}” is not a path inside the release.")
    if len(path) > 255:
        raise _error(f"“{path[:60]}…” is longer than 255 characters.")
    return path


def _strip_common_folder(files: dict[str, str]) -> dict[str, str]:
    """A folder picked in a browser arrives as `folder/a.yaml`; a tarball often holds one
    top folder too. The release's paths start below it."""
    tops = {path.split("/", 1)[0] for path in files}
    if len(tops) == 1 and all("/" in path for path in files):
        return {path.split("/", 1)[1]: text for path, text in files.items()}
    return files


def read_files(items: list[tuple[str, bytes]]) -> dict[str, str]:
    """Files of a folder upload (name, content); files that are not YAML are left out."""
    files: dict[str, str] = {}
    total = 0
    for name, data in items:
        path = clean_path(name)
        if not path.lower().endswith(YAML_SUFFIXES) or posixpath.basename(path).startswith("."):
            continue
        if len(data) > MAX_FILE_BYTES:
            raise _error(f"{path} is larger than {MAX_FILE_BYTES // 1024} KiB.")
        total += len(data)
        if total > MAX_TOTAL_BYTES:
            raise _error(f"The release's YAML files are larger than {MAX_TOTAL_BYTES // (1024 * 1024)} MiB in all.")
        if len(files) >= MAX_FILES:
            raise _error(f"A release holds at most {MAX_FILES} YAML files.")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise _error(f"{path} is not UTF-8 text.") from None
        if path in files:
            raise _error(f"{path} appears twice.")
        files[path] = text
    files = _strip_common_folder(files)
    if not files:
        raise _error("No .yaml or .yml files found; upload the folder that holds the release's YAML.")
    return dict(sorted(files.items()))


def read_tarball(data: bytes) -> dict[str, str]:
    """The YAML files of a .tar.gz (or plain .tar); links and devices are refused."""
    if len(data) > MAX_ARCHIVE_BYTES:
        raise _error(f"The archive is larger than {MAX_ARCHIVE_BYTES // (1024 * 1024)} MiB.")
    items: list[tuple[str, bytes]] = []
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            for number, member in enumerate(archive):
                if number > MAX_FILES * 4:
                    raise _error(f"The archive holds more than {MAX_FILES * 4} entries.")
                if member.isdir():
                    continue
                if not member.isfile():
                    raise _error(f"{member.name} is a link or a device; a release holds plain files only.")
                if not member.name.lower().endswith(YAML_SUFFIXES):
                    continue
                if member.size > MAX_FILE_BYTES:
                    raise _error(f"{member.name} is larger than {MAX_FILE_BYTES // 1024} KiB.")
                total += member.size
                if total > MAX_TOTAL_BYTES:
                    raise _error(
                        f"The release's YAML files are larger than {MAX_TOTAL_BYTES // (1024 * 1024)} MiB in all."
                    )
                extracted = archive.extractfile(member)
                items.append((member.name, extracted.read(MAX_FILE_BYTES + 1) if extracted else b""))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise _error(f"Not a readable .tar.gz: {e}.") from None
    return read_files(items)
