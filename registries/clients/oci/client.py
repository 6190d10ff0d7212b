"""OCI Distribution client: ping, log in, fetch a manifest (digest verified), check blobs.

Plain values in (endpoint, image, username, password), plain dataclasses out, RegistryError
on failure. All traffic goes through netguard. Credentials never appear in results, errors
or logs.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from portal import ocispec, safejson
from portal.outbound.async_client import GuardedClient
from portal.outbound.client_base import MAX_BODY_BYTES, with_body
from portal.outbound.errors import ErrorCategory, RegistryError
from portal.outbound.httperrors import as_registry_error, where

from .auth import Challenge, fetch_token, parse_www_authenticate, pick_challenge
from .endpoint import Endpoint
from .errors import error_codes, status_error

_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
# A streamed blob is handed on in pieces of at most this size (memory stays flat at any size).
BLOB_CHUNK = 1024 * 1024
# Of an error answer to a streamed GET, only this much is read (for its error codes).
ERROR_BODY_BYTES = 64 * 1024


# --- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: str | None = None  # "os/arch[/variant]" for index entries


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    size: int
    data: dict[str, Any] = field(repr=False)
    raw: bytes = field(repr=False)

    @property
    def is_index(self) -> bool:
        return self.media_type in ocispec.INDEX_MEDIA_TYPES

    @property
    def children(self) -> list[Descriptor]:
        return [d for d in _descriptors(self.data.get("manifests")) if d.platform != "unknown/unknown"]

    @property
    def layers(self) -> list[Descriptor]:
        return _descriptors(self.data.get("layers"))

    @property
    def platforms(self) -> list[str]:
        return [d.platform for d in self.children if d.platform]

    @property
    def config(self) -> Descriptor | None:
        found = _descriptors([self.data.get("config")])
        return found[0] if found else None

    @property
    def compressed_size(self) -> int | None:
        """An image's download size as its manifest declares it: config plus layers; None when
        a size is missing (or for an index, whose size is its platforms')."""
        parts = [self.config, *self.layers] if self.config else self.layers
        if self.is_index or not parts or any(d.size < 0 for d in parts):
            return None
        return sum(d.size for d in parts)


def platform_of_config(data: Any) -> str | None:
    """`os/architecture[/variant]` from an image config blob; None when it names none."""
    # Reference: https://github.com/opencontainers/image-spec/blob/main/config.md#properties
    if not isinstance(data, dict):
        return None
    parts = [data.get(k) for k in ("os", "architecture", "variant")]
    if not all(isinstance(p, str) and _PLATFORM_PART.match(p) for p in parts[:2]):
        return None
    if not (isinstance(parts[2], str) and _PLATFORM_PART.match(parts[2])):
        parts = parts[:2]
    return "/".join(parts)  # type: ignore[arg-type]


_PLATFORM_PART = re.compile(r"^[a-z0-9._-]{1,32}$")


def _descriptors(items: Any) -> list[Descriptor]:
    result = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not ocispec.is_digest(str(item.get("digest", ""))):
            continue
        platform = item.get("platform")
        name = None
        if isinstance(platform, dict):
            name = "/".join(str(platform[k]) for k in ("os", "architecture", "variant") if platform.get(k))
        size = item.get("size")
        result.append(
            Descriptor(str(item.get("mediaType", "")), item["digest"], size if isinstance(size, int) else -1, name)
        )
    return result


@dataclass(frozen=True)
class BlobInfo:
    digest: str
    size: int | None
    redirected: bool = False  # served from another host (storage); not followed by a HEAD


@dataclass
class RateLimit:
    """Docker Hub's pull limit headers, e.g. `ratelimit-limit: 100;w=21600`."""

    limit: int | None = None
    remaining: int | None = None
    window_seconds: int | None = None


def rate_limit_of(headers: httpx.Headers) -> RateLimit | None:
    """Docker Hub's pull limit headers, if the answer has them."""

    # Reference: https://docs.docker.com/docker-hub/usage/pulls/
    def number(value: str | None) -> tuple[int | None, int | None]:
        match = re.match(r"^\s*(\d+)(?:\s*;\s*w=(\d+))?", value or "")
        return (int(match.group(1)), int(match.group(2)) if match.group(2) else None) if match else (None, None)

    limit, window = number(headers.get("ratelimit-limit"))
    remaining, window2 = number(headers.get("ratelimit-remaining"))
    if limit is None and remaining is None:
        return None
    return RateLimit(limit, remaining, window or window2)


def verify_digest(body: bytes, *expected: str | None) -> str:
    """The body's sha256 digest, after checking it against every expected digest given."""
    computed = {"sha256": "sha256:" + hashlib.sha256(body).hexdigest()}
    for digest in filter(None, expected):
        algorithm = digest.split(":", 1)[0]
        if algorithm not in _HASHES:
            raise RegistryError(f"unsupported digest algorithm {algorithm[:20]}", "invalid_response")
        if algorithm not in computed:
            computed[algorithm] = f"{algorithm}:" + _HASHES[algorithm](body).hexdigest()
        if computed[algorithm] != digest:
            raise RegistryError("the manifest does not match its digest", "invalid_response")
    return computed["sha256"]


class BlobVerifier:
    """Checks a blob while it streams: never more bytes than its descriptor says, and at the end
    exactly that many with its digest. Both clients (OciClient, PrivateRegistry) use it."""

    def __init__(self, descriptor: Descriptor) -> None:
        algorithm = descriptor.digest.split(":", 1)[0]
        if algorithm not in _HASHES:
            raise RegistryError(f"unsupported digest algorithm {algorithm[:20]}", ErrorCategory.INVALID_RESPONSE)
        self.descriptor = descriptor
        self.size = 0
        self._hash = _HASHES[algorithm]()

    def check_length(self, headers: httpx.Headers) -> None:
        """A Content-Length other than the descriptor's size is refused before the body."""
        length = headers.get("content-length", "")
        if length.isdigit() and self.descriptor.size >= 0 and int(length) != self.descriptor.size:
            raise RegistryError(
                f"blob {self.descriptor.digest} has {length} bytes, not {self.descriptor.size}",
                ErrorCategory.INVALID_RESPONSE,
            )

    def pieces(self, chunk: bytes) -> Iterator[memoryview]:
        """`chunk` counted and hashed, in pieces of at most BLOB_CHUNK (views, not copies)."""
        self.size += len(chunk)
        if 0 <= self.descriptor.size < self.size:
            raise RegistryError(
                f"blob {self.descriptor.digest} is longer than its {self.descriptor.size} bytes",
                ErrorCategory.INVALID_RESPONSE,
            )
        self._hash.update(chunk)
        view = memoryview(chunk)
        for start in range(0, len(view), BLOB_CHUNK):
            yield view[start : start + BLOB_CHUNK]

    def finish(self) -> None:
        """After the last byte: a short blob is a broken connection (worth trying again), a wrong
        digest damaged content."""
        digest = self.descriptor.digest
        if self.descriptor.size >= 0 and self.size != self.descriptor.size:
            raise RegistryError(
                f"blob {digest} ended after {self.size} of {self.descriptor.size} bytes", ErrorCategory.CONNECT
            )
        if f"{digest.split(':', 1)[0]}:{self._hash.hexdigest()}" != digest:
            raise RegistryError(f"blob {digest} does not match its digest", ErrorCategory.INVALID_RESPONSE)


def manifest_from_response(response: httpx.Response, reference: str, name: str) -> Manifest:
    """The Manifest in a 200 answer to a manifest GET: digest verified (against the header and a
    digest reference), JSON, a manifest type this portal knows."""
    body = response.content
    header_digest = response.headers.get("docker-content-digest")
    if header_digest and not ocispec.is_digest(header_digest):
        raise RegistryError("the registry sent a malformed Docker-Content-Digest", "invalid_response")
    digest = verify_digest(body, header_digest, reference if ":" in reference else None)
    try:
        data = safejson.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise RegistryError(f"the manifest of {name} is not JSON", "invalid_response")
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in ocispec.MANIFEST_MEDIA_TYPES:
        media_type = str(data.get("mediaType", ""))
    if media_type not in ocispec.MANIFEST_MEDIA_TYPES:
        raise RegistryError(f"{name} has an unsupported manifest type (schema 1?)", "invalid_response")
    return Manifest(header_digest or digest, media_type, len(body), data, body)


# --- the client ------------------------------------------------------------------------


class OciClient:
    """One registry endpoint, one set of credentials, one GuardedClient."""

    def __init__(
        self,
        endpoint: Endpoint,
        http: GuardedClient,
        *,
        username: str | None = None,
        password: str | None = None,
        allowed_realm_hosts: Iterable[str] = (),
    ) -> None:
        self.endpoint = endpoint
        self.http = http
        self._username = username or None
        self._password = password or ""
        self._allowed_realm_hosts = tuple(allowed_realm_hosts)
        self._authorization: str | None = None
        self._scopes: set[str] = set()
        self.challenge: Challenge | None = None
        self.rate_limit: RateLimit | None = None

    def __repr__(self) -> str:
        return f"OciClient({self.endpoint!s})"

    def _basic(self) -> str:
        raw = f"{self._username}:{self._password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    async def _get(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        follow_redirects: bool = True,
        authorize: bool = True,
        max_body: int = MAX_BODY_BYTES,
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        if authorize and self._authorization:
            all_headers["Authorization"] = self._authorization
        response = await self.http.request(
            method,
            f"{self.endpoint.base_url}/v2/{path}",
            headers=all_headers,
            follow_redirects=follow_redirects,
            max_body=max_body,
        )
        self.rate_limit = rate_limit_of(response.headers) or self.rate_limit
        return response

    async def _get_authorized(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """_get, re-fetching a token once if the registry asks for a scope we do not hold yet."""
        response = await self._get(method, path, **kwargs)
        retry = self._new_scope(response) if response.status_code == 401 else None
        if retry is not None and retry.scope:
            await self._bearer(retry, retry.scope)
            response = await self._get(method, path, **kwargs)
        return response

    async def ping(self) -> Challenge | None:
        """GET /v2/: None when no auth is needed, else the challenge to answer."""
        # Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#determining-support
        response = await self._get("GET", "", authorize=False)
        if response.status_code == 200:
            self.challenge = None
            return None
        if response.status_code == 401:
            challenge = pick_challenge(parse_www_authenticate(response.headers.get_list("www-authenticate")))
            if challenge is None:
                raise RegistryError(
                    f"{self.endpoint.netloc} asks for authentication without a Basic or Bearer challenge",
                    "invalid_response",
                )
            self.challenge = challenge
            return challenge
        raise status_error(response, what="ping")

    async def authenticate(self, repository: str, actions: str = "pull") -> str:
        """Answer the ping's challenge for `repository`; returns "none", "basic" or "bearer"."""
        challenge = self.challenge
        if challenge is None:
            return "none"
        if challenge.scheme == "basic":
            if not self._username:
                raise RegistryError(f"{self.endpoint.netloc} requires a user name and password", "unauthorized")
            # Reference: https://www.rfc-editor.org/rfc/rfc7617 (Basic), checked on /v2/ once.
            self._authorization = self._basic()
            response = await self._get("GET", "")
            if response.status_code != 200:
                raise status_error(response, what="ping", name="the registry")
            return "basic"
        await self._bearer(challenge, f"repository:{repository}:{actions}")
        return "bearer"

    async def _bearer(self, challenge: Challenge, scope: str) -> None:
        self._authorization = "Bearer " + await self.fetch_token(challenge, scope)
        self._scopes.add(scope)

    async def fetch_token(self, challenge: Challenge, scope: str) -> str:
        """A bearer token from the challenge's realm; credentials go only to an allowed realm."""
        return await fetch_token(
            self.http,
            challenge,
            scope,
            endpoint=self.endpoint,
            authorization=self._basic() if self._username else None,
            allowed_realm_hosts=self._allowed_realm_hosts,
        )

    async def get_manifest(self, repository: str, reference: str) -> Manifest:
        """GET a manifest or index with the full Accept list, digest verified."""
        # Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
        name = f"{repository}@{reference}" if ":" in reference else f"{repository}:{reference}"
        response = await self._get_authorized(
            "GET", f"{repository}/manifests/{reference}", headers={"Accept": ocispec.ACCEPT_MANIFESTS}
        )
        if response.status_code != 200:
            error = status_error(response, what="manifest", name=name)
            if error.category == ErrorCategory.MANIFEST_UNKNOWN and await self.repository_exists(repository) is False:
                # Distribution answers MANIFEST_UNKNOWN even when the repository is missing.
                raise RegistryError(f"repository {repository} not found", "repository_unknown", status_code=404)
            raise error
        return manifest_from_response(response, reference, name)

    async def repository_exists(self, repository: str) -> bool | None:
        """True/False from the tag list; None when the registry will not say."""
        # Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-tags
        try:
            response = await self._get_authorized("GET", f"{repository}/tags/list?n=1")
        except RegistryError:
            return None
        if response.status_code == 200:
            return True
        if response.status_code == 404 and "NAME_UNKNOWN" in error_codes(response):
            return False
        return None

    async def head_blob(self, repository: str, descriptor: Descriptor) -> BlobInfo:
        """HEAD a blob. A redirect to storage counts as present and is not followed."""
        # Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#checking-if-content-exists-in-the-registry
        response = await self._get_authorized("HEAD", f"{repository}/blobs/{descriptor.digest}", follow_redirects=False)
        if response.is_redirect and response.headers.get("location"):
            return BlobInfo(descriptor.digest, descriptor.size if descriptor.size >= 0 else None, redirected=True)
        if response.status_code != 200:
            raise status_error(response, what="blob", name=descriptor.digest)
        length = response.headers.get("content-length", "")
        size = int(length) if length.isdigit() else None
        if size is not None and descriptor.size >= 0 and size != descriptor.size:
            raise RegistryError(f"blob {descriptor.digest} has the wrong size", "invalid_response")
        header_digest = response.headers.get("docker-content-digest")
        if header_digest and header_digest != descriptor.digest:
            raise RegistryError(f"blob {descriptor.digest} answered with another digest", "invalid_response")
        return BlobInfo(descriptor.digest, size)

    async def get_blob(self, repository: str, descriptor: Descriptor, *, max_bytes: int) -> bytes:
        """GET a small blob (an image config) whole, at most `max_bytes`, digest verified.
        Redirects to storage are followed under the guard, without the credentials."""
        # Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-blobs
        if descriptor.size > max_bytes:
            raise RegistryError(f"blob {descriptor.digest} is larger than {max_bytes} bytes", "invalid_response")
        response = await self._get_authorized("GET", f"{repository}/blobs/{descriptor.digest}", max_body=max_bytes)
        if response.status_code != 200:
            raise status_error(response, what="blob", name=descriptor.digest)
        try:
            verify_digest(response.content, descriptor.digest)
        except RegistryError:
            raise RegistryError(f"blob {descriptor.digest} does not match its digest", "invalid_response") from None
        return response.content

    async def stream_blob(self, repository: str, descriptor: Descriptor) -> AsyncIterator[memoryview]:
        """GET a blob of any size, handed on in pieces of at most BLOB_CHUNK as it arrives.

        Its size and digest are checked while it streams: too many bytes stop it at once, and a
        wrong digest or a short body raises RegistryError after the last piece, so the caller
        keeps what it wrote only when the iteration ends without an error. Redirects to storage
        are followed under the guard, without the credentials (GuardedClient.stream).
        """
        # Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-blobs
        url = f"{self.endpoint.base_url}/v2/{repository}/blobs/{descriptor.digest}"
        verifier = BlobVerifier(descriptor)
        for attempt in (1, 2):
            headers = {"Authorization": self._authorization} if self._authorization else {}
            retry: Challenge | None = None
            async with self.http.stream("GET", url, headers=headers) as response:
                self.rate_limit = rate_limit_of(response.headers) or self.rate_limit
                if response.status_code == 401 and attempt == 1:
                    retry = self._new_scope(response)
                if retry is None:
                    if response.status_code != 200:
                        raise status_error(await _error_answer(response), what="blob", name=descriptor.digest)
                    verifier.check_length(response.headers)
                    try:
                        async for chunk in response.aiter_raw():
                            for piece in verifier.pieces(chunk):
                                yield piece
                    except httpx.HTTPError as exc:
                        raise as_registry_error(exc, where(response.url)) from None
                    verifier.finish()
                    return
            assert retry is not None and retry.scope
            await self._bearer(retry, retry.scope)

    def _new_scope(self, response: httpx.Response) -> Challenge | None:
        """The challenge of a 401 asking for a bearer scope this client does not hold yet."""
        if not (self.challenge and self.challenge.scheme == "bearer"):
            return None
        retry = pick_challenge(parse_www_authenticate(response.headers.get_list("www-authenticate")))
        if retry and retry.scheme == "bearer" and retry.scope and retry.scope not in self._scopes:
            return retry
        return None


async def _error_answer(response: httpx.Response) -> httpx.Response:
    """A streamed error answer with (at most ERROR_BODY_BYTES of) its body read, for status_error."""
    body = bytearray()
    try:
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) >= ERROR_BODY_BYTES:
                break
    except httpx.HTTPError:
        pass
    return with_body(response, bytes(body[:ERROR_BODY_BYTES]))
