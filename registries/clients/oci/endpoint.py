"""Where a registry lives and what an image reference names: the endpoint a vendor typed
(`host[:port][/path-prefix]`, https unless written http://, Docker Hub under its API host) and
`repo[:tag]` / `repo@digest` against it."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

from portal import ocispec
from portal.outbound.addresses import GuardPolicy, check_url
from portal.outbound.errors import ErrorCategory, RegistryError


@dataclass(frozen=True)
class Endpoint:
    """Where a registry's API lives: `host[:port][/path-prefix]`, https unless written http://."""

    scheme: str
    host: str  # API host, lower case, punycode
    port: int | None = None
    path_prefix: str = ""  # repositories live under it
    docker_hub: bool = False

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port else host

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    def __str__(self) -> str:
        text = self.netloc + (f"/{self.path_prefix}" if self.path_prefix else "")
        return f"http://{text}" if self.scheme == "http" else text


def parse_endpoint(value: str, *, policy: GuardPolicy | None = None) -> Endpoint:
    """Parse what a vendor typed; raise RegistryError(blocked|insecure_not_allowed)."""
    policy = policy if policy is not None else GuardPolicy.from_settings()
    text = value.strip()
    scheme = "https"
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", text)
    if match:
        scheme, text = match.group(1).lower(), text[match.end() :]
    if scheme not in ("http", "https"):
        raise RegistryError("the endpoint must be host[:port][/path] or an http(s):// URL", ErrorCategory.BLOCKED)
    if not text or "\\" in text or any(c.isspace() for c in text):
        raise RegistryError("the endpoint must be host[:port][/path]", ErrorCategory.BLOCKED)
    try:
        url = httpx.URL(f"{scheme}://{text}")
    except httpx.InvalidURL:
        raise RegistryError("the endpoint is not a valid host name", ErrorCategory.BLOCKED) from None
    if url.query:
        raise RegistryError("the endpoint may not have a ?query", ErrorCategory.BLOCKED)
    url = check_url(url, policy)
    host = url.raw_host.decode("ascii").lower().rstrip(".")
    prefix = url.path.strip("/")
    if prefix == "v2":
        prefix = ""
    if prefix and not ocispec.NAME_RE.match(prefix):
        raise RegistryError("the endpoint's path must be a repository prefix like team/images", ErrorCategory.BLOCKED)
    if host in ocispec.DOCKER_HUB_HOSTS:
        return Endpoint("https", ocispec.DOCKER_HUB_API_HOST, None, prefix, docker_hub=True)
    return Endpoint(scheme, host, url.port, prefix)


def parse_image(image: str, endpoint: Endpoint) -> tuple[str, str]:
    """`repo[:tag]` or `repo@digest` → (full repository path, tag or digest); ValueError if malformed.

    Adds the endpoint's path prefix and Docker Hub's `library/`; tolerates a leading
    registry host equal to the endpoint's.
    """
    text = image.strip()
    first, slash, rest = text.partition("/")
    if slash and first.lower() in {endpoint.netloc, *(ocispec.DOCKER_HUB_HOSTS if endpoint.docker_hub else ())}:
        text = rest
    if "@" in text:
        text, reference = text.split("@", 1)
        if ":" in text.rsplit("/", 1)[-1]:
            text = text.rsplit(":", 1)[0]
        if not ocispec.is_digest(reference):
            raise ValueError(f"{reference!r} is not a valid digest")
    elif ":" in text.rsplit("/", 1)[-1]:
        text, reference = text.rsplit(":", 1)
        if not ocispec.is_tag(reference):
            raise ValueError(f"{reference!r} is not a valid tag")
    else:
        reference = "latest"
    repository = text.strip("/")
    if not ocispec.NAME_RE.match(repository):
        raise ValueError(f"{repository!r} is not a valid repository name (lower case, a-z0-9._-/)")
    prefix = endpoint.path_prefix
    if prefix and repository != prefix and not repository.startswith(prefix + "/"):
        repository = f"{prefix}/{repository}"
    if endpoint.docker_hub:
        repository = ocispec.docker_hub_repository(repository)
    return repository, reference
