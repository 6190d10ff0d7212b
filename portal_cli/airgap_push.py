"""Pushing an air-gap bundle's images into the customer's own registry, offline: the OCI
distribution protocol's push side, spoken to any registry (Distribution, Harbor, Artifactory…).

Per image, children first: every blob (HEAD, and skipped when the registry has it; else
POST an upload, then one PUT for a small blob or PATCH chunks for a large one, streamed from
the tar), then every manifest by digest with its exact bytes and media type, then the tag the
image was listed with. Memory stays flat: a blob is never read whole, only one chunk at a time.

Auth: none, Basic, or Docker token auth (a Bearer challenge: a token per repository from the
realm, with the Basic credentials, for `repository:<name>:pull,push`).
Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#push
Reference: https://distribution.github.io/distribution/spec/auth/token/
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import httpx

from portal_cli import __version__
from portal_cli import bundleformat as fmt

# One request carries at most this much of a blob: a smaller blob goes in one PUT, a larger
# one in PATCH chunks of this size (each streamed, CHUNK at a time, from the tar).
CHUNK_SIZE = 16 * 1024 * 1024
READ_SIZE = 1024 * 1024
TIMEOUT = httpx.Timeout(30.0, read=300.0, write=300.0)
MANIFEST_ACCEPT = ", ".join(sorted(fmt.MANIFEST_TYPES))

# Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
_NAME_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{_NAME_PART}(?:/{_NAME_PART})*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
HOST_RE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$")  # fmt: skip
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class PushError(Exception):
    """A push that cannot go on; the message names the registry and what it said."""


@dataclass(frozen=True)
class Destination:
    host: str  # host[:port]
    namespace: str  # "" for none

    def name(self, repository: str) -> str:
        """The repository's path in the customer's registry."""
        return f"{self.namespace}/{repository}" if self.namespace else repository

    def reference(self, repository: str) -> str:
        return f"{self.host}/{self.name(repository)}"


def parse_destination(value: str) -> Destination:
    """`--registry HOST[:PORT][/NAMESPACE]`; ValueError says what is wrong."""
    value = value.strip().rstrip("/")
    if "://" in value:
        raise ValueError("give HOST[:PORT][/NAMESPACE] without a scheme (plain http: add --dest-tls-verify=false)")
    host, _, namespace = value.partition("/")
    if not host or not HOST_RE.match(host):
        raise ValueError(f"“{host}” is not a registry host (HOST or HOST:PORT)")
    if namespace and not NAME_RE.match(namespace):
        raise ValueError(
            f"the namespace “{namespace}” is not a repository path: lowercase letters, digits and . _ - between slashes"
        )
    return Destination(host.lower(), namespace)


@dataclass
class ImageReport:
    reference: str  # as listed in the bundle
    destination: str  # host/namespace/repository
    digest: str
    tag: str
    blobs_pushed: int = 0
    blobs_skipped: int = 0
    bytes_pushed: int = 0
    manifests_pushed: int = 0
    manifests_skipped: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "destination": f"{self.destination}@{self.digest}",
            "tag": f"{self.destination}:{self.tag}" if self.tag else None,
            "digest": self.digest,
            "blobs_pushed": self.blobs_pushed,
            "blobs_skipped": self.blobs_skipped,
            "bytes_pushed": self.bytes_pushed,
            "manifests_pushed": self.manifests_pushed,
            "manifests_skipped": self.manifests_skipped,
        }


@dataclass
class _Token:
    value: str
    expires: float


@dataclass
class Registry:
    """One destination registry: its scheme, how it authenticates, and the calls a push makes."""

    host: str
    username: str = ""
    password: str = ""
    tls_verify: bool = True
    base: str = ""
    scheme: str = ""  # "", "basic" or "bearer", from the /v2/ challenge
    realm: str = ""
    service: str = ""
    tokens: dict[str, _Token] = field(default_factory=dict)
    http: httpx.Client | None = None

    @property
    def who(self) -> str:
        return f"user “{self.username}”" if self.username else "no credentials"

    def close(self) -> None:
        if self.http is not None:
            self.http.close()

    # --- connecting ----------------------------------------------------------------------

    def connect(self) -> None:
        """Find the scheme (https; plain http only when TLS is not verified) and how the
        registry authenticates, and check the credentials before anything is pushed."""
        self.http = httpx.Client(
            verify=self.tls_verify, timeout=TIMEOUT, headers={"User-Agent": f"portal-cli/{__version__}"}
        )
        schemes = ("https", "http") if not self.tls_verify else ("https",)
        failure: httpx.TransportError | None = None
        for scheme in schemes:
            try:
                response = self.http.get(f"{scheme}://{self.host}/v2/")
            except httpx.TransportError as e:
                failure = e
                continue
            self.base = f"{scheme}://{self.host}"
            break
        else:
            assert failure is not None
            hint = "" if not self.tls_verify else " (a plain-http registry needs --dest-tls-verify=false)"
            raise PushError(f"cannot reach the registry {self.host}: {_reason(failure)}{hint}")
        if response.status_code == 200:
            return
        if response.status_code != 401:
            raise PushError(
                f"the registry {self.host} answered /v2/ with HTTP {response.status_code}: is it a registry?"
            )
        scheme, params = _challenge(response.headers.get("WWW-Authenticate", ""))
        if scheme not in ("basic", "bearer"):
            raise PushError(f"the registry {self.host} asks for an unknown kind of authentication ({scheme or 'none'})")
        if not self.username:
            raise PushError(
                f"the registry {self.host} needs credentials: pass --dest-creds USER:PASS or --dest-creds-stdin"
            )
        self.scheme = scheme
        if scheme == "basic":
            check = self.http.get(f"{self.base}/v2/", auth=(self.username, self.password))
            if check.status_code == 401:
                raise PushError(f"the registry {self.host} refused {self.who}: wrong user name or password (HTTP 401)")
            if check.status_code != 200:
                raise PushError(f"the registry {self.host} answered /v2/ with HTTP {check.status_code} for {self.who}")
            return
        self.realm, self.service = params.get("realm", ""), params.get("service", "")
        if urlsplit(self.realm).scheme not in ("http", "https"):
            raise PushError(f"the registry {self.host} names no usable token service (realm “{self.realm}”)")
        self._fetch_token("")  # the credentials, checked once up front

    def _fetch_token(self, name: str) -> _Token:
        assert self.http is not None
        params = {"service": self.service} if self.service else {}
        if name:
            params["scope"] = f"repository:{name}:pull,push"
        try:
            response = self.http.get(self.realm, params=params, auth=(self.username, self.password))
        except httpx.TransportError as e:
            raise PushError(f"cannot reach the token service of {self.host} ({self.realm}): {_reason(e)}") from None
        if response.status_code in (401, 403):
            raise PushError(
                f"the token service of {self.host} refused {self.who}: wrong user name or password "
                f"(HTTP {response.status_code})"
            )
        try:
            body = response.json()
            value = body.get("token") or body.get("access_token")
            expires_in = int(body.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            value, expires_in = None, 0
        if response.status_code != 200 or not isinstance(value, str) or not value:
            raise PushError(f"the token service of {self.host} gave no token (HTTP {response.status_code})")
        # Renew a little early: a blob upload is several requests and must not expire halfway.
        token = _Token(value, time.monotonic() + max(expires_in - 20, expires_in / 2))
        self.tokens[name] = token
        return token

    def _auth(self, name: str, *, renew: bool = False) -> dict[str, str]:
        if self.scheme == "basic":
            pair = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return {"Authorization": f"Basic {pair}"}
        if self.scheme == "bearer":
            token = self.tokens.get(name)
            if renew or token is None or token.expires <= time.monotonic():
                token = self._fetch_token(name)
            return {"Authorization": f"Bearer {token.value}"}
        return {}

    # --- requests --------------------------------------------------------------------------

    def _request(
        self, method: str, url: str, name: str, *, headers: dict[str, str] | None = None, content: Any = None
    ) -> httpx.Response:
        """One request for repository `name`; a replayable one is sent again once with a new
        token when the registry answers 401 (the token expired in between)."""
        assert self.http is not None
        replayable = content is None or isinstance(content, bytes)
        for attempt in (1, 2):
            all_headers = {**(headers or {}), **self._auth(name, renew=attempt == 2)}
            try:
                response = self.http.request(
                    method, urljoin(self.base + "/", url), headers=all_headers, content=content
                )
            except httpx.TransportError as e:
                raise PushError(f"the registry {self.host} stopped answering ({method} {name}): {_reason(e)}") from None
            if response.status_code == 401 and replayable and attempt == 1 and self._adopt(response):
                continue
            return response
        return response

    def _adopt(self, response: httpx.Response) -> bool:
        """After a 401: whether sending again may help. A token may have expired, or the
        registry lets anyone read /v2/ and asks for credentials only to push."""
        if self.scheme == "bearer":
            return True
        if self.scheme or not self.username:
            return False
        scheme, params = _challenge(response.headers.get("WWW-Authenticate", ""))
        if scheme == "basic":
            self.scheme = scheme
            return True
        if scheme == "bearer" and urlsplit(params.get("realm", "")).scheme in ("http", "https"):
            self.scheme, self.realm, self.service = scheme, params["realm"], params.get("service", "")
            return True
        return False

    def _fail(self, response: httpx.Response, name: str, doing: str) -> PushError:
        code, message = _oci_error(response)
        said = f"{code}: {message}" if code else f"HTTP {response.status_code}"  # message ends with the status
        _, challenge = _challenge(response.headers.get("WWW-Authenticate", ""))
        if response.status_code == 403 or code == "DENIED" or challenge.get("error") == "insufficient_scope":
            return PushError(
                f"the registry {self.host} denied {self.who} permission to push to {name} while {doing} ({said})"
            )
        if response.status_code == 401 and not self.username:
            return PushError(
                f"the registry {self.host} needs credentials to push to {name}: "
                "pass --dest-creds USER:PASS or --dest-creds-stdin"
            )
        if response.status_code == 401:
            return PushError(f"the registry {self.host} refused {self.who} while {doing} in {name} ({said})")
        return PushError(f"the registry {self.host} refused {doing} in {name}: {said}")

    def has_blob(self, name: str, digest: str) -> bool:
        response = self._request("HEAD", f"/v2/{name}/blobs/{digest}", name)
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self._fail(response, name, f"checking blob {digest}")

    def push_blob(self, name: str, digest: str, size: int, source: IO[bytes], chunk_size: int = CHUNK_SIZE) -> None:
        """Upload one blob read from `source` (a file positioned at its start)."""
        doing = f"uploading blob {digest}"
        started = self._request("POST", f"/v2/{name}/blobs/uploads/", name, headers={"Content-Length": "0"})
        if started.status_code != 202 or "Location" not in started.headers:
            raise self._fail(started, name, doing)
        location = started.headers["Location"]
        if size <= chunk_size:
            # Reference: spec.md#pushing-a-blob-monolithically (POST then PUT)
            done = self._request(
                "PUT",
                _with_digest(location, digest),
                name,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                content=_read(source, size),
            )
        else:
            # Reference: spec.md#pushing-a-blob-in-chunks
            offset = 0
            while offset < size:
                length = min(chunk_size, size - offset)
                chunk = self._request(
                    "PATCH",
                    location,
                    name,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Length": str(length),
                        "Content-Range": f"{offset}-{offset + length - 1}",
                    },
                    content=_read(source, length),
                )
                if chunk.status_code != 202 or "Location" not in chunk.headers:
                    raise self._fail(chunk, name, doing)
                location = chunk.headers["Location"]
                offset += length
            done = self._request("PUT", _with_digest(location, digest), name, headers={"Content-Length": "0"})
        if done.status_code != 201:
            raise self._fail(done, name, doing)

    def has_manifest(self, name: str, digest: str) -> bool:
        response = self._request("HEAD", f"/v2/{name}/manifests/{digest}", name, headers={"Accept": MANIFEST_ACCEPT})
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self._fail(response, name, f"checking manifest {digest}")

    def put_manifest(self, name: str, reference: str, data: bytes, media_type: str) -> None:
        response = self._request(
            "PUT", f"/v2/{name}/manifests/{reference}", name, headers={"Content-Type": media_type}, content=data
        )
        if response.status_code != 201:
            raise self._fail(response, name, f"storing manifest {reference}")


def _read(source: IO[bytes], length: int) -> Iterator[bytes]:
    """`length` bytes of `source`, READ_SIZE at a time."""
    left = length
    while left:
        data = source.read(min(READ_SIZE, left))
        if not data:
            raise PushError("the bundle ended inside a blob: it changed while being pushed")
        left -= len(data)
        yield data


def _with_digest(location: str, digest: str) -> str:
    return f"{location}{'&' if '?' in location else '?'}digest={digest}"


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest))


def _oci_error(response: httpx.Response) -> tuple[str, str]:
    """(code, message and detail) of an OCI error answer, ("", "") for another body."""
    try:
        first = (response.json().get("errors") or [])[0]
        code, message, detail = first.get("code", ""), first.get("message", ""), first.get("detail")
    except (ValueError, AttributeError, IndexError, TypeError, KeyError):
        return "", ""
    if isinstance(detail, str) and detail:
        message = f"{message}: {detail}" if message else detail
    return str(code), f"{message} (HTTP {response.status_code})"


def _reason(error: httpx.TransportError) -> str:
    text = str(error) or type(error).__name__
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "its TLS certificate is not trusted (--dest-tls-verify=false to skip the check)"
    return text.splitlines()[0]


# --- the push ---------------------------------------------------------------------------------


Progress = Callable[[str], None]


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def image_name(image: fmt.BundleImage) -> tuple[str, str]:
    """(repository, tag) the image takes in the customer's registry, from images.json."""
    repository, tag = image.facts.get("repository"), image.facts.get("tag") or ""
    if not isinstance(repository, str) or not NAME_RE.match(repository):
        raise PushError(f"images.json gives {image.reference} no usable repository ({repository!r})")
    if not isinstance(tag, str) or (tag and not TAG_RE.match(tag)):
        raise PushError(f"images.json gives {image.reference} a tag that is not one ({tag!r})")
    return repository, tag


def push_bundle(
    reader: fmt.BundleReader,
    images: list[fmt.BundleImage],
    destination: Destination,
    registry: Registry,
    *,
    progress: Progress,
    chunk_size: int = CHUNK_SIZE,
) -> list[ImageReport]:
    """Push every image of a checked bundle; one report per image."""
    names = [image_name(image) for image in images]  # every name checked before anything is sent
    reports = []
    for number, (image, (repository, tag)) in enumerate(zip(images, names, strict=True), 1):
        name = destination.name(repository)
        report = ImageReport(image.reference, destination.reference(repository), image.digest, tag)
        progress(f"image {number}/{len(images)}: {image.reference} → {report.destination}@{image.digest}")
        done: set[str] = set()
        for digest, media_type, size in fmt.walk(reader, image.digest, image.media_type, image.size):
            if digest in done:
                continue
            done.add(digest)
            if media_type in fmt.MANIFEST_TYPES:
                if registry.has_manifest(name, digest):
                    report.manifests_skipped += 1
                else:
                    registry.put_manifest(
                        name, digest, reader.read(fmt.blob_path(digest), limit=fmt.MAX_MANIFEST), media_type
                    )
                    report.manifests_pushed += 1
            elif registry.has_blob(name, digest):
                report.blobs_skipped += 1
            else:
                with reader.open(fmt.blob_path(digest)) as source:
                    registry.push_blob(name, digest, size, source, chunk_size)
                report.blobs_pushed += 1
                report.bytes_pushed += size
                if size > chunk_size:
                    progress(f"  blob {digest[:19]}… {human(size)} pushed")
        if tag:
            registry.put_manifest(
                name, tag, reader.read(fmt.blob_path(image.digest), limit=fmt.MAX_MANIFEST), image.media_type
            )
        progress(
            f"  blobs: {report.blobs_pushed} pushed ({human(report.bytes_pushed)}), {report.blobs_skipped} already there;"
            f" manifests: {report.manifests_pushed} pushed, {report.manifests_skipped} already there"
            + (f"; tagged {tag}" if tag else "")
        )
        reports.append(report)
    return reports
