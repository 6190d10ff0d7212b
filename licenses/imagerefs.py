"""Where an image lives, as `(host, repository)` with Docker's normalisation, so an image
written in a manifest (`redis:7.2`, `docker.io/library/redis@sha256:…`) and an entry of a
release's `images:` list (`source: public, name: redis`) compare equal. The lint and the
release service share these rules; the install kit rewrites by the same keys."""

from __future__ import annotations

from dataclasses import dataclass

from licenses.models import ImageSource
from licenses.release_spec import ImageSpec, split_host
from portal import ocispec


@dataclass(frozen=True)
class ImageRef:
    """A parsed `[host/]repository[:tag][@digest]`; host canonical, Docker Hub's `library/` added."""

    host: str
    repository: str
    tag: str
    digest: str

    @property
    def location(self) -> tuple[str, str]:
        return self.host, self.repository


def parse_reference(reference: str) -> ImageRef | None:
    """The parts of an image reference as a container runtime reads it, or None when it is
    not one (a template placeholder, an upper-case name, a bad tag or digest)."""
    name, at, digest = reference.strip().partition("@")
    tag = ""
    tagged = name.rfind(":") > name.rfind("/")
    if tagged:
        name, _, tag = name.rpartition(":")
    host, repository = split_host(name)
    host = ocispec.canonical_host(host or ocispec.DOCKER_HUB)
    if host == ocispec.DOCKER_HUB:
        repository = ocispec.docker_hub_repository(repository)
    if not ocispec.is_repository_name(repository):
        return None
    if tagged and not ocispec.is_tag(tag):
        return None
    if at and not ocispec.is_digest(digest):
        return None
    return ImageRef(host=host, repository=repository, tag=tag, digest=digest)


def endpoint_host(endpoint: str) -> str:
    """The canonical host of a registry's stored endpoint (`https://quay.io/prefix` → quay.io)."""
    bare = endpoint.removeprefix("http://").removeprefix("https://")
    return ocispec.canonical_host(bare.partition("/")[0].lower())


def listed_location(
    spec: ImageSpec, *, source_hosts: dict[str, str], registry_host: str, app_slug: str
) -> tuple[str, str]:
    """(host, repository) where an `images:` entry lives: `replicated` is `<registry>/<app>/<name>`,
    `public` is its name's host (Docker Hub when none), a registry source is that registry's
    host. The host is "" when it is not known (then any host matches)."""
    if spec.source == ImageSource.PRIVATE:
        host = registry_host
        repository = f"{app_slug}/{spec.name}" if app_slug else spec.name
    elif spec.source == ImageSource.PUBLIC:
        host, repository = split_host(spec.name)
        host = ocispec.canonical_host(host or ocispec.DOCKER_HUB)
    else:
        host, repository = source_hosts.get(spec.source, ""), spec.name
    if host == ocispec.DOCKER_HUB:
        repository = ocispec.docker_hub_repository(repository)
    return host, repository
