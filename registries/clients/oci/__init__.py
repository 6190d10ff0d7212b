"""The client of OCI Distribution registries (external registries and the proxy's upstreams).

endpoint: where a registry lives and what an image reference names; auth: challenges, token
realms and tokens; errors: what an error answer means; client: OciClient (manifests, small
blobs read whole, any blob streamed and verified); check: the
connection test; describe: an image's digest, platforms, size and visibility. Callers use the
public API below, through `from registries.clients import oci`.
"""

from __future__ import annotations

from .auth import KNOWN_REALM_HOSTS, Challenge, check_realm, fetch_token, parse_www_authenticate, pick_challenge
from .check import (
    CheckResult,
    Step,
    check_image,
    check_image_sync,
    verify_credentials,
    verify_credentials_sync,
)
from .client import (
    BLOB_CHUNK,
    BlobInfo,
    BlobVerifier,
    Descriptor,
    Manifest,
    OciClient,
    RateLimit,
    manifest_from_response,
    platform_of_config,
    rate_limit_of,
    verify_digest,
)
from .describe import ImageFacts, describe_image, fetch_image_facts
from .endpoint import Endpoint, parse_endpoint, parse_image
from .errors import error_codes, status_error

__all__ = [
    "BLOB_CHUNK",
    "KNOWN_REALM_HOSTS",
    "BlobInfo",
    "BlobVerifier",
    "Challenge",
    "CheckResult",
    "Descriptor",
    "Endpoint",
    "ImageFacts",
    "Manifest",
    "OciClient",
    "RateLimit",
    "Step",
    "check_image",
    "check_image_sync",
    "check_realm",
    "describe_image",
    "error_codes",
    "fetch_image_facts",
    "fetch_token",
    "manifest_from_response",
    "parse_endpoint",
    "parse_image",
    "rate_limit_of",
    "parse_www_authenticate",
    "pick_challenge",
    "platform_of_config",
    "status_error",
    "verify_credentials",
    "verify_digest",
    "verify_credentials_sync",
]
