"""The portal's own client of its private registry (CNCF Distribution), and the shape of its
notifications.

The portal signs a token for itself (subject "portal") with exactly the access each call needs,
never through /v2/token. The registry's address is operator configuration (REGISTRY_URL), not
vendor input, so this client does not go through the network guard; it does use short timeouts.
Plain values in, dataclasses out, RegistryError on failure.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx
from django.conf import settings
from django.utils.dateparse import parse_datetime

from portal import ocispec, safejson
from portal.outbound.client_base import MAX_BODY_BYTES
from portal.outbound.errors import ErrorCategory, RegistryError

from . import oci
from .oci import error_codes

TIMEOUT = httpx.Timeout(10.0, connect=3.0)
CATALOG_PAGE = 1000
MAX_CATALOG_PAGES = 100
SUBJECT = "portal"


def is_repository(name: str) -> bool:
    """A repository of the private registry: `<app-slug>/<image>`, so two components at least."""
    return "/" in name and ocispec.is_repository_name(name)


def is_content_digest(value: str) -> bool:
    """A digest as Distribution gives them: the grammar's, with an encoded part of 32+ characters
    (sha256 has 64)."""
    return ocispec.is_digest(value) and len(value.partition(":")[2]) >= 32


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    size: int | None


@dataclass(frozen=True)
class Event:
    """One notification event the portal acts on (manifest pushes and deletes)."""

    id: str
    action: str  # push, pull or delete
    repository: str
    tag: str = ""
    digest: str = ""
    media_type: str = ""
    size: int | None = None
    timestamp: datetime | None = None
    actor: str = ""


def parse_event(raw: Any) -> Event | None:
    """An event of Distribution's envelope, or None for one to ignore (blobs, malformed fields).

    Reference: https://distribution.github.io/distribution/about/notifications/ (2.8: a push or
    pull of a manifest carries mediaType, digest, size and the tag when addressed by tag; deleting
    a manifest sends one event with the digest, then one per removed tag with the tag alone).
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("target"), dict):
        return None
    target = raw["target"]
    action = raw.get("action")
    repository = target.get("repository")
    if action not in ("push", "pull", "delete") or not isinstance(repository, str):
        return None
    if not is_repository(repository):
        return None
    url = target.get("url") if isinstance(target.get("url"), str) else ""
    if "/blobs/" in urlsplit(url).path:
        return None
    tag = target.get("tag") or ""
    digest = target.get("digest") or ""
    media_type = target.get("mediaType") or ""
    if not isinstance(tag, str) or (tag and not ocispec.is_tag(tag)):
        return None
    if not isinstance(digest, str) or len(digest) > 200 or (digest and not is_content_digest(digest)):
        return None
    if not isinstance(media_type, str) or len(media_type) > 255:
        return None
    if action in ("push", "pull") and (media_type not in ocispec.KNOWN_MEDIA_TYPES or not digest):
        return None  # a blob (its events carry application/octet-stream or a layer type)
    size = target.get("size")
    size = size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None
    timestamp = parse_datetime(raw["timestamp"]) if isinstance(raw.get("timestamp"), str) else None
    actor = raw.get("actor") if isinstance(raw.get("actor"), dict) else {}
    name = actor.get("name") if isinstance(actor.get("name"), str) else ""
    event_id = raw.get("id") if isinstance(raw.get("id"), str) else ""
    return Event(
        id=event_id[:100],
        action=action,
        repository=repository,
        tag=tag,
        digest=digest,
        media_type=media_type,
        size=size,
        timestamp=timestamp,
        actor=name[:200],
    )


def _token(access: list[dict]) -> str:
    from portal import registry_tokens

    token, _, _ = registry_tokens.issue(subject=SUBJECT, audience=settings.REGISTRY_SERVICE, access=access)
    return token


def _repository_access(name: str, *actions: str) -> list[dict]:
    return [{"type": "repository", "name": name, "actions": list(actions)}]


def _path(name: str) -> str:
    return quote(name, safe="/")


class PrivateRegistry:
    """Calls to the private registry at `base_url`; use as a context manager."""

    def __init__(self, base_url: str, *, timeout: httpx.Timeout = TIMEOUT, transport=None) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(timeout=timeout, follow_redirects=False, transport=transport)

    def __enter__(self) -> PrivateRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def _send(self, method: str, path: str, access: list[dict], *, what: str, name: str = "", **kwargs):
        headers = {"Authorization": f"Bearer {_token(access)}", **kwargs.pop("headers", {})}
        try:
            response = self._http.request(method, self.base_url + path, headers=headers, **kwargs)
        except httpx.TimeoutException:
            raise RegistryError("the private registry did not answer in time", ErrorCategory.TIMEOUT) from None
        except httpx.TransportError:
            raise RegistryError("the private registry is not reachable", ErrorCategory.CONNECT) from None
        if response.status_code >= 300:
            raise _status_error(response, what=what, name=name)
        return response

    def _read(self, path: str, access: list[dict], *, what: str, name: str, max_bytes: int, **kwargs) -> httpx.Response:
        """GET with the body read whole, refused past `max_bytes`."""
        headers = {"Authorization": f"Bearer {_token(access)}", **kwargs.pop("headers", {})}
        try:
            with self._http.stream("GET", self.base_url + path, headers=headers, **kwargs) as response:
                if response.status_code >= 300:
                    response.read()
                    raise _status_error(response, what=what, name=name)
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise RegistryError(f"{name} is larger than {max_bytes} bytes", ErrorCategory.INVALID_RESPONSE)
        except httpx.TimeoutException:
            raise RegistryError("the private registry did not answer in time", ErrorCategory.TIMEOUT) from None
        except httpx.TransportError:
            raise RegistryError("the private registry is not reachable", ErrorCategory.CONNECT) from None
        return httpx.Response(
            response.status_code, headers=response.headers, content=bytes(body), request=response.request
        )

    def get_manifest(self, repository: str, reference: str) -> oci.Manifest:
        """GET a manifest or index whole (bounded), digest verified, as the OCI client reads one.

        Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
        """
        name = f"{repository}@{reference}" if ":" in reference else f"{repository}:{reference}"
        response = self._read(
            f"/v2/{_path(repository)}/manifests/{reference}", _repository_access(repository, "pull"),
            what="manifest", name=name, max_bytes=MAX_BODY_BYTES, headers={"Accept": ocispec.ACCEPT_MANIFESTS},
        )  # fmt: skip
        return oci.manifest_from_response(response, reference, name)

    def get_blob(self, repository: str, descriptor: oci.Descriptor, *, max_bytes: int) -> bytes:
        """GET a small blob (an image config) whole, digest verified; a redirect to the storage
        backend is followed (httpx drops the token when it leaves this origin).

        Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-blobs
        """
        if descriptor.size > max_bytes:
            raise RegistryError(
                f"blob {descriptor.digest} is larger than {max_bytes} bytes", ErrorCategory.INVALID_RESPONSE
            )
        response = self._read(
            f"/v2/{_path(repository)}/blobs/{descriptor.digest}", _repository_access(repository, "pull"),
            what="blob", name=descriptor.digest, max_bytes=max_bytes, follow_redirects=True,
        )  # fmt: skip
        if oci.verify_digest(response.content) != descriptor.digest:
            raise RegistryError(f"blob {descriptor.digest} does not match its digest", ErrorCategory.INVALID_RESPONSE)
        return response.content

    def stream_blob(self, repository: str, descriptor: oci.Descriptor) -> Iterator[memoryview]:
        """GET a blob of any size in pieces of at most oci.BLOB_CHUNK, size and digest checked
        while it streams as OciClient.stream_blob does (an error after the last piece means:
        discard what was written); a redirect to the storage backend is followed without the
        token.

        Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-blobs
        """
        verifier = oci.BlobVerifier(descriptor)
        access = _repository_access(repository, "pull")
        headers = {"Authorization": f"Bearer {_token(access)}"}
        path = f"/v2/{_path(repository)}/blobs/{descriptor.digest}"
        try:
            with self._http.stream("GET", self.base_url + path, headers=headers, follow_redirects=True) as response:
                if response.status_code >= 300:
                    response.read()
                    raise _status_error(response, what="blob", name=descriptor.digest)
                verifier.check_length(response.headers)
                for chunk in response.iter_raw():
                    yield from verifier.pieces(chunk)
        except httpx.TimeoutException:
            raise RegistryError("the private registry did not answer in time", ErrorCategory.TIMEOUT) from None
        except httpx.TransportError:
            raise RegistryError("the private registry is not reachable", ErrorCategory.CONNECT) from None
        verifier.finish()

    def catalog(self) -> list[str]:
        """Every repository name, following the catalog's `Link` pages.

        Reference: https://distribution.github.io/distribution/spec/api/#listing-repositories
        """
        access = [{"type": "registry", "name": "catalog", "actions": ["*"]}]
        path = f"/v2/_catalog?n={CATALOG_PAGE}"
        names: list[str] = []
        for _ in range(MAX_CATALOG_PAGES):
            response = self._send("GET", path, access, what="catalog")
            names.extend(n for n in _json(response).get("repositories") or [] if isinstance(n, str))
            next_path = _next_link(response)
            if not next_path:
                break
            path = next_path
        return names

    def tags(self, repository: str) -> list[str]:
        """The repository's tags; none for an unknown repository or one whose tags were all deleted.

        Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-tags
        """
        try:
            response = self._send(
                "GET", f"/v2/{_path(repository)}/tags/list", _repository_access(repository, "pull"),
                what="tags", name=repository,
            )  # fmt: skip
        except RegistryError as e:
            if e.category == ErrorCategory.REPOSITORY_UNKNOWN:
                return []
            raise
        return [t for t in _json(response).get("tags") or [] if isinstance(t, str) and ocispec.is_tag(t)]

    def manifest(self, repository: str, reference: str, *, actions: tuple[str, ...] = ("pull",)) -> Manifest:
        """HEAD the manifest a tag (or digest) names, accepting every manifest type.

        Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#checking-if-content-exists-in-the-registry
        """
        response = self._send(
            "HEAD", f"/v2/{_path(repository)}/manifests/{reference}", _repository_access(repository, *actions),
            what="manifest", name=f"{repository}:{reference}", headers={"Accept": ocispec.ACCEPT_MANIFESTS},
        )  # fmt: skip
        digest = response.headers.get("Docker-Content-Digest", "")
        if not is_content_digest(digest):
            raise RegistryError(
                f"the private registry sent no digest for {repository}:{reference}", ErrorCategory.INVALID_RESPONSE
            )
        length = response.headers.get("Content-Length", "")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return Manifest(digest=digest, media_type=media_type, size=int(length) if length.isdigit() else None)

    def delete_manifest(self, repository: str, digest: str) -> None:
        """Delete a manifest by digest; Distribution removes every tag pointing to it.

        Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#deleting-manifests
        (Distribution 2.8 answers 400 to a DELETE by tag, so a tag is resolved to its digest first.)
        """
        if not is_content_digest(digest):
            raise RegistryError(f"{digest!r} is not a digest", ErrorCategory.INVALID_RESPONSE)
        self._send(
            "DELETE", f"/v2/{_path(repository)}/manifests/{digest}", _repository_access(repository, "delete"),
            what="manifest", name=f"{repository}@{digest}",
        )  # fmt: skip

    def delete_tag(self, repository: str, tag: str) -> Manifest:
        """Resolve the tag to its digest and delete that manifest (with all its tags)."""
        manifest = self.manifest(repository, tag, actions=("pull", "delete"))
        self.delete_manifest(repository, manifest.digest)
        return manifest


def _json(response: httpx.Response) -> dict:
    try:
        body = safejson.loads(response.content)
    except ValueError:
        raise RegistryError("the private registry sent invalid JSON", ErrorCategory.INVALID_RESPONSE) from None
    if not isinstance(body, dict):
        raise RegistryError("the private registry sent unexpected JSON", ErrorCategory.INVALID_RESPONSE)
    return body


def _next_link(response: httpx.Response) -> str:
    """The path of `Link: </v2/_catalog?last=…&n=…>; rel="next"`, kept on the same registry."""
    # Reference: https://www.rfc-editor.org/rfc/rfc8288
    match = re.match(r'^\s*<([^>]+)>\s*;\s*rel="?next"?', response.headers.get("Link", ""))
    if not match:
        return ""
    target = urlsplit(urljoin(str(response.request.url), match.group(1)))
    if target.path != "/v2/_catalog":
        return ""
    return f"{target.path}?{target.query}"


def _status_error(response: httpx.Response, *, what: str, name: str) -> RegistryError:
    # Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes
    status = response.status_code
    codes = error_codes(response)
    if status == 401:
        return RegistryError(
            "the private registry refused the portal's own token: its config must come from "
            "`manage.py registry_config` with this portal's signing key, issuer and service",
            ErrorCategory.UNAUTHORIZED,
            status_code=status,
        )
    if status == 404 and "NAME_UNKNOWN" in codes:
        return RegistryError(
            f"repository {name.split(':')[0].split('@')[0]} not found", ErrorCategory.REPOSITORY_UNKNOWN
        )
    if status == 404 and what == "manifest":
        return RegistryError(f"{name} not found", ErrorCategory.MANIFEST_UNKNOWN, status_code=status)
    if status == 404 and what == "blob":
        return RegistryError(f"blob {name} not found", ErrorCategory.BLOB_UNKNOWN, status_code=status)
    if status == 405:
        return RegistryError(
            "the private registry does not allow deleting (storage.delete.enabled is off)",
            ErrorCategory.FORBIDDEN,
            status_code=status,
        )
    if status >= 500:
        return RegistryError(
            f"the private registry answered HTTP {status}", ErrorCategory.UPSTREAM_ERROR, status_code=status
        )
    return RegistryError(
        f"the private registry answered an unexpected HTTP {status} for {what}",
        ErrorCategory.INVALID_RESPONSE,
        status_code=status,
    )


class AsyncPrivateRegistry:
    """A PrivateRegistry for code that awaits its reads (oci.describe_image, the air-gap build's
    fetch). The calls block (with
    this client's short timeouts): use it on a loop of its own, one image per loop."""

    def __init__(self, registry: PrivateRegistry) -> None:
        self._registry = registry

    async def get_manifest(self, repository: str, reference: str) -> oci.Manifest:
        return self._registry.get_manifest(repository, reference)

    async def get_blob(self, repository: str, descriptor: oci.Descriptor, *, max_bytes: int) -> bytes:
        return self._registry.get_blob(repository, descriptor, max_bytes=max_bytes)

    async def stream_blob(self, repository: str, descriptor: oci.Descriptor) -> AsyncIterator[memoryview]:
        for piece in self._registry.stream_blob(repository, descriptor):
            yield piece
