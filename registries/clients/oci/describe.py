"""What an image reference names in a registry: its digest, manifest type, platforms and
compressed size, and whether anyone may pull it (an anonymous manifest fetch succeeds).

Release resolving asks this once per listed image; the manifest and config reads go through
OciClient (bounded bodies, verified digests, the network guard). Plain values in, ImageFacts
out, RegistryError on failure (a deadline passing is RegistryError(timeout) too).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol

import anyio
import httpx
from django.views.decorators.debug import sensitive_variables

from portal import ocispec, safejson
from portal.outbound.addresses import GuardPolicy
from portal.outbound.async_client import GuardedClient
from portal.outbound.client_base import DEFAULT_TIMEOUT
from portal.outbound.errors import ErrorCategory, RegistryError
from portal.outbound.resolve import Resolver

from .client import Descriptor, Manifest, OciClient, platform_of_config
from .endpoint import Endpoint

# An index names a few platforms (Docker Hub's official images: up to ~10, plus attestations,
# which are skipped). Past this many, the rest are neither read nor listed.
MAX_PLATFORMS = 32
# Image configs are a few KiB; one with a long history a few hundred.
MAX_CONFIG_BYTES = 1024 * 1024
# An index's entries that are images (nested indexes and other artifacts are not read).
_IMAGE_MANIFESTS = frozenset({ocispec.OCI_MANIFEST, ocispec.DOCKER_MANIFEST})
_PLATFORM = re.compile(r"^[a-z0-9._-]{1,32}/[a-z0-9._-]{1,32}(?:/[a-z0-9._-]{1,32})?$")


@dataclass(frozen=True)
class ImageFacts:
    digest: str  # of the manifest or index the reference names
    media_type: str
    platforms: list[str] = field(default_factory=list)  # ["linux/amd64", …]
    size: int | None = None  # compressed, config + layers; an index: its largest platform's
    public: bool = False  # an anonymous client fetched the manifest


class ManifestSource(Protocol):
    """What describe_image reads from: OciClient, or the private registry's client."""

    async def get_manifest(self, repository: str, reference: str) -> Manifest: ...

    async def get_blob(self, repository: str, descriptor: Descriptor, *, max_bytes: int) -> bytes: ...


async def describe_image(source: ManifestSource, repository: str, reference: str) -> ImageFacts:
    """Digest, media type, platforms and size of `repository` at `reference` (tag or digest)."""
    manifest = await source.get_manifest(repository, reference)
    if manifest.is_index:
        children = [c for c in manifest.children if c.media_type in _IMAGE_MANIFESTS][:MAX_PLATFORMS]
        if not children:
            raise RegistryError(f"the index of {repository} lists no images", ErrorCategory.INVALID_RESPONSE)
        sizes = []
        for child in children:
            image = await source.get_manifest(repository, child.digest)
            if image.compressed_size is not None:
                sizes.append(image.compressed_size)
        platforms = [c.platform for c in children if c.platform]
        return ImageFacts(manifest.digest, manifest.media_type, _clean(platforms), max(sizes, default=None))
    platforms = []
    config = manifest.config
    if config is not None and config.media_type in ocispec.IMAGE_CONFIG_MEDIA_TYPES:
        try:
            data = safejson.loads(await source.get_blob(repository, config, max_bytes=MAX_CONFIG_BYTES))
        except ValueError:
            raise RegistryError(f"the config of {repository} is not JSON", ErrorCategory.INVALID_RESPONSE) from None
        platform = platform_of_config(data)
        platforms = [platform] if platform else []
    return ImageFacts(manifest.digest, manifest.media_type, _clean(platforms), manifest.compressed_size)


def _clean(platforms: Iterable[str]) -> list[str]:
    """Each well-formed platform once, in order: index entries are upstream text."""
    return list(dict.fromkeys(p for p in platforms if _PLATFORM.match(p)))


@sensitive_variables("password", "client")
async def fetch_image_facts(
    endpoint: Endpoint,
    repository: str,
    reference: str,
    *,
    username: str | None = None,
    password: str | None = None,
    allowed_realm_hosts: Iterable[str] = (),
    policy: GuardPolicy | None = None,
    resolver: Resolver | None = None,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    total_timeout: float = 30.0,
) -> ImageFacts:
    """describe_image against a registry: anonymously first (success means public); then, when
    the anonymous fetch failed and credentials are given, with them (private).

    The anonymous attempt never decides an outcome on its own when credentials are given: the
    error reported is the one of the attempt with credentials.
    """
    policy = policy if policy is not None else GuardPolicy.from_settings()
    realms = tuple(allowed_realm_hosts)
    async with GuardedClient(policy=policy, resolver=resolver, timeout=timeout) as http:
        try:
            with anyio.fail_after(total_timeout):
                try:
                    return replace(
                        await _describe(OciClient(endpoint, http, allowed_realm_hosts=realms), repository, reference),
                        public=True,
                    )
                except RegistryError:
                    if not username:
                        raise
                client = OciClient(endpoint, http, username=username, password=password, allowed_realm_hosts=realms)
                return await _describe(client, repository, reference)
        except TimeoutError:
            raise RegistryError(
                f"{endpoint.netloc} did not answer within {total_timeout:g} s", ErrorCategory.TIMEOUT
            ) from None


async def _describe(client: OciClient, repository: str, reference: str) -> ImageFacts:
    await client.ping()
    await client.authenticate(repository)
    return await describe_image(client, repository, reference)
