"""The OCI distribution vocabulary, in one place: manifest media types, the grammar of
repository names, tags and digests, the registry API's error codes, and Docker Hub's host
names and `library/` rule. Pure: no Django, no I/O. A new media type or grammar rule is a
change here and nowhere else.

Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md
"""

from __future__ import annotations

import re

# --- manifest media types ----------------------------------------------------------------
# Reference: https://github.com/opencontainers/image-spec/blob/main/media-types.md
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
# Reference: https://distribution.github.io/distribution/spec/manifest-v2-2/
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
# Docker schema 1: Distribution 2.8 still stores them, so a listing may show them; nobody pulls them here.
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

MANIFEST_MEDIA_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)
INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
KNOWN_MEDIA_TYPES = frozenset({*MANIFEST_MEDIA_TYPES, DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})
ACCEPT_MANIFESTS = ", ".join(MANIFEST_MEDIA_TYPES)
# An image's config blob, which names its platform (os, architecture, variant).
# Reference: https://github.com/opencontainers/image-spec/blob/main/config.md
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
# Reference: https://distribution.github.io/distribution/spec/manifest-v2-2/
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
IMAGE_CONFIG_MEDIA_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
MEDIA_TYPE_LABELS = {
    OCI_INDEX: "OCI index",
    OCI_MANIFEST: "OCI image",
    DOCKER_MANIFEST_LIST: "Docker manifest list",
    DOCKER_MANIFEST: "Docker image",
}

# --- names, tags, digests ------------------------------------------------------------------
# Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
MAX_NAME_LENGTH = 255
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
# Reference: https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests
DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
SHA256_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


def is_repository_name(name: str) -> bool:
    return bool(name) and len(name) <= MAX_NAME_LENGTH and bool(NAME_RE.match(name))


def is_tag(value: str) -> bool:
    return bool(TAG_RE.match(value))


def is_digest(value: str) -> bool:
    """Any algorithm the grammar allows (`sha512:…` too); what the portal serves is sha256."""
    return bool(DIGEST_RE.match(value))


def is_sha256_digest(value: str) -> bool:
    return bool(SHA256_DIGEST_RE.match(value))


# --- error codes -------------------------------------------------------------------------------
# Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes
# (UNAVAILABLE and TOOMANYREQUESTS are Distribution's own, which clients know too.)
ERROR_CODES = frozenset(
    {
        "BLOB_UNKNOWN",
        "BLOB_UPLOAD_INVALID",
        "BLOB_UPLOAD_UNKNOWN",
        "DIGEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID",
        "MANIFEST_UNKNOWN",
        "NAME_INVALID",
        "NAME_UNKNOWN",
        "SIZE_INVALID",
        "UNAUTHORIZED",
        "DENIED",
        "UNSUPPORTED",
        "TOOMANYREQUESTS",
        "UNAVAILABLE",
        "PAGINATION_NUMBER_INVALID",
        "TAG_INVALID",
    }
)

# --- Docker Hub ----------------------------------------------------------------------------
# Docker Hub answers to several names; the portal writes index.docker.io and calls the API host.
DOCKER_HUB = "index.docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
DOCKER_HUB_HOSTS = frozenset({"index.docker.io", "docker.io", "registry-1.docker.io", "registry.hub.docker.com"})


def canonical_host(host: str) -> str:
    """Docker Hub's one name (rules, logs and pull lines use it); any other host as it is."""
    return DOCKER_HUB if host in DOCKER_HUB_HOSTS else host


def docker_hub_repository(repository: str) -> str:
    """Official images live under `library/` on Docker Hub: `redis` is `library/redis`."""
    return repository if "/" in repository else f"library/{repository}"
