"""The proxy's answers shared by its views: the login challenge, refusals, an upstream's failure
in the customer's words, the pull-log row of a request, and reading an upstream's body with bounds."""

from __future__ import annotations

import httpx
from django.conf import settings
from django.http import JsonResponse

from delivery.customer_auth import Denial, Verdict
from delivery.proxy import pull_log
from licenses.models import App
from portal import ocispec, safejson
from portal.ocierrors import oci_error
from portal.outbound.errors import ErrorCategory, RegistryError
from registries.clients import oci

# A manifest goes out only as one of ocispec.MANIFEST_MEDIA_TYPES: whatever else an upstream
# says a manifest is (text/html, say) would make its bytes a page on the portal's origin.
# Docker's schema1 types are left out: Distribution 2.8, skopeo, docker and containerd all
# pull schema2/OCI.
BLOB_TYPE = "application/octet-stream"  # a blob is bytes, whatever the upstream calls them
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_TAGS_PAGE = 1000
MAX_ERROR_BODY_BYTES = 64 * 1024  # an upstream 404 body is read only for its OCI error code
MAX_TAGS_BODY_BYTES = 4 * 1024 * 1024  # ~100k tags; Distribution itself pages at 1000 by default
# Only these upstream response headers reach the customer (never its Content-Type or Set-Cookie).
PASSED_HEADERS = ("Content-Length", "Content-Range", "Accept-Ranges", "ETag", "Last-Modified")


def challenge(request, name: str | None = None) -> JsonResponse:
    realm = request.build_absolute_uri("/v2/token")
    value = f'Bearer realm="{realm}",service="{settings.PROXY_SERVICE}"'
    if name:
        value += f',scope="repository:{name}:pull"'
    return oci_error(
        401,
        "UNAUTHORIZED",
        "authentication required: docker login with your license ID",
        headers={"WWW-Authenticate": value},
    )


def refusal(request, verdict: Verdict, name: str | None = None) -> JsonResponse:
    """The answer to a request whose license may not pull: 429 or the login challenge."""
    if verdict.denial == Denial.TOO_MANY_ATTEMPTS:
        return oci_error(429, "TOOMANYREQUESTS", verdict.message, headers={"Retry-After": str(verdict.retry_after)})
    return challenge(request, name)


def upstream_failure(error: RegistryError) -> JsonResponse:
    """Map a failure to reach or use the upstream to a clear error, never its details."""
    category = error.category
    if category in (ErrorCategory.UNAUTHORIZED, ErrorCategory.FORBIDDEN):
        return oci_error(502, "UNAVAILABLE", "the vendor's registry refused the portal's credentials; ask the vendor")
    if category == ErrorCategory.RATE_LIMITED:
        return oci_error(
            429,
            "TOOMANYREQUESTS",
            "the upstream registry is rate limiting",
            headers={"Retry-After": str(error.retry_after or 30)},
        )
    if category in (ErrorCategory.BLOCKED, ErrorCategory.REALM_NOT_ALLOWED, ErrorCategory.INSECURE_NOT_ALLOWED):
        return oci_error(502, "UNAVAILABLE", "the upstream registry is not reachable under the portal's network rules")
    if category == ErrorCategory.INVALID_RESPONSE:
        return oci_error(502, "UNAVAILABLE", "the upstream registry answered with something invalid")
    if category == ErrorCategory.BUSY:
        # Only this app's team waits on that upstream: the others' pulls are not held up.
        return oci_error(
            503,
            "UNAVAILABLE",
            "too many requests to this upstream registry are in progress; try again shortly",
            headers={"Retry-After": str(error.retry_after or 10)},
        )
    return oci_error(
        503, "UNAVAILABLE", "the upstream registry is unavailable; try again", headers={"Retry-After": "30"}
    )


def status_failure(response: httpx.Response, kind: str, body: bytes = b"") -> JsonResponse:
    status = response.status_code
    if status == 404:
        codes = set()
        try:
            codes = {e.get("code") for e in parse_json(body or b"{}").get("errors", [])}
        except (ValueError, AttributeError, TypeError):
            pass
        if "NAME_UNKNOWN" in codes:
            return oci_error(404, "NAME_UNKNOWN", "repository not found upstream")
        code = {"manifest": "MANIFEST_UNKNOWN", "blob": "BLOB_UNKNOWN"}.get(kind, "NAME_UNKNOWN")
        return oci_error(404, code, f"{kind} unknown")
    if status in (401, 403):
        return upstream_failure(RegistryError("refused", ErrorCategory.UNAUTHORIZED))
    if status == 429:  # its Retry-After read as the clients read it (seconds or an HTTP date)
        return upstream_failure(oci.status_error(response, what=kind))
    if status == 416:
        return oci_error(416, "BLOB_UNKNOWN", "range not satisfiable")
    return oci_error(503, "UNAVAILABLE", "the upstream registry failed; try again", headers={"Retry-After": "30"})


def log(
    caller: Verdict | None,
    app: App | None,
    name: str,
    kind: str,
    reference: str,
    status: int,
    size: int,
    reason: str = "",
) -> None:
    """Queue the request's pull-log row; the response never waits for the database, and a
    client hanging up (which cancels the request's task) does not lose the row."""
    if caller is None or app is None:
        return
    pull_log.record_request(caller.license_uid, app.pk, name, kind, reference, status, size, reason)


def failed(
    caller: Verdict | None, app: App | None, name: str, kind: str, reference: str, error: RegistryError
) -> JsonResponse:
    """The answer to an upstream failure, logged with the status it answers (503 when busy or
    timed out, 429 when rate limited, 502 when refused or invalid)."""
    failure = upstream_failure(error)
    log(caller, app, name, kind, reference, failure.status_code, 0, error.category.value)
    return failure


async def read_bounded(response: httpx.Response, limit: int) -> bytes | None:
    """The upstream's body, or None as soon as it is known to exceed `limit` bytes."""
    if int(response.headers.get("content-length") or 0) > limit:
        return None
    chunks = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def headers_from(upstream: httpx.Response) -> dict[str, str]:
    return {h: upstream.headers[h] for h in PASSED_HEADERS if h in upstream.headers}


def digest_refusal(digest: str) -> JsonResponse | None:
    """None for a sha256 digest, else the spec's 400 DIGEST_INVALID ("if the client provided
    digest is invalid or uses an unsupported algorithm, the registry SHOULD respond with 400")."""
    if ocispec.is_sha256_digest(digest):
        return None
    if ocispec.is_digest(digest) and not digest.startswith("sha256:"):
        return oci_error(400, "DIGEST_INVALID", "only sha256 digests are supported")
    return oci_error(400, "DIGEST_INVALID", "invalid digest")


def parse_json(body: bytes) -> object:
    """The upstream's JSON; ValueError for anything that does not parse, deep nesting included."""
    return safejson.loads(body)
