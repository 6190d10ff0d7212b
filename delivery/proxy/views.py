"""The registry proxy: /v2/proxy/<app>/<upstream-host>/<repository>/{manifests,blobs,tags}/…

Customers authenticate with their license (a token from /v2/token, or Basic straight here);
the proxy pulls upstream with the vendor's stored credentials, streams blobs through while
hashing them, and re-checks the license on every manifest and blob request.
Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

import httpx
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from delivery import customer_auth, routing
from delivery.customer_auth import Denial, Verdict
from delivery.proxy import pull_log
from delivery.proxy.upstream import open_stream
from delivery.routing import Upstream
from delivery.scopes import Scope
from licenses.models import App, Refusal
from portal import ocispec, safejson
from portal.ocierrors import API_VERSION, oci_error
from portal.outbound.errors import ErrorCategory, RegistryError
from portal.outbound.httperrors import as_registry_error

logger = logging.getLogger(__name__)

# A manifest goes out only as one of ocispec.MANIFEST_MEDIA_TYPES: whatever else an upstream
# says a manifest is (text/html, say) would make its bytes a page on the portal's origin.
# Docker's schema1 types are left out: Distribution 2.8, skopeo, docker and containerd all
# pull schema2/OCI.
BLOB_TYPE = "application/octet-stream"  # a blob is bytes, whatever the upstream calls them
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
HASH_BATCH_BYTES = 256 * 1024  # blob bytes hashed per trip to a worker thread
MAX_TAGS_PAGE = 1000
MAX_ERROR_BODY_BYTES = 64 * 1024  # an upstream 404 body is read only for its OCI error code
MAX_TAGS_BODY_BYTES = 4 * 1024 * 1024  # ~100k tags; Distribution itself pages at 1000 by default
# Only these upstream response headers reach the customer (never its Content-Type or Set-Cookie).
PASSED_HEADERS = ("Content-Length", "Content-Range", "Accept-Ranges", "ETag", "Last-Modified")


def _challenge(request, name: str | None = None) -> JsonResponse:
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


def _refusal(request, verdict: Verdict, name: str | None = None) -> JsonResponse:
    """The answer to a request whose license may not pull: 429 or the login challenge."""
    if verdict.denial == Denial.TOO_MANY_ATTEMPTS:
        return oci_error(429, "TOOMANYREQUESTS", verdict.message, headers={"Retry-After": str(verdict.retry_after)})
    return _challenge(request, name)


def _release_connections() -> None:
    """Hand database connections back to the pool now: a blob may stream for minutes and
    needs none. (Not inside a transaction, as under a test's atomic block.)"""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def _authorize_root(request) -> Verdict:
    try:
        return customer_auth.authorize(request)
    finally:
        _release_connections()


@csrf_exempt
async def v2_root(request):
    """GET /v2/: 200 for a valid license, else the challenge that sends clients to /v2/token."""
    verdict = await sync_to_async(_authorize_root)(request)
    if not verdict.allowed:
        return _refusal(request, verdict)
    return JsonResponse({}, headers=API_VERSION)


@csrf_exempt
async def catalog(request):
    """Nobody lists the catalog through the proxy."""
    return oci_error(404, "UNSUPPORTED", "catalog listing is not offered")


@csrf_exempt
async def unknown(request):
    """Anything else under /v2/ (uploads, odd names): an OCI error, never the HTML 404 page."""
    if request.method not in ("GET", "HEAD"):
        return oci_error(405, "UNSUPPORTED", "the proxy is read-only")
    return oci_error(404, "NAME_UNKNOWN", "repository name not known to the proxy")


def _raw_path(request) -> str:
    scope = getattr(request, "scope", None) or {}
    raw = scope.get("raw_path") or request.META.get("RAW_URI", "").encode()
    return raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)


async def _resolve(request, name: str, kind: str, reference: str):
    """(caller, app, upstream) or an error response; checks run before any upstream contact.
    `kind` and `reference` name the request in the pull log when it is refused."""
    if "%" in _raw_path(request).split("?")[0]:
        return oci_error(400, "NAME_INVALID", "encoded characters are not allowed in repository names")
    try:
        proxy = routing.parse_proxy_name(name)
    except routing.NameInvalid:
        return oci_error(400, "NAME_INVALID", "invalid repository name")
    except routing.NameUnknown:
        return oci_error(404, "NAME_UNKNOWN", "repository name not known to the proxy")
    # One trip to a worker thread for every database and cache look-up of the request.
    return await sync_to_async(_authorize)(request, name, proxy, kind, reference)


def _authorize(request, name: str, proxy: routing.ProxyName, kind: str, reference: str):
    try:
        return _authorize_in_db(request, name, proxy, kind, reference)
    finally:
        _release_connections()


def _authorize_in_db(request, name: str, proxy: routing.ProxyName, kind: str, reference: str):
    """Refusals of a known license go to its pull log, with the license's app; a license ID
    nobody has is nobody's to log. A token of a valid license that does not cover `name` is
    the usual step before the client asks for one that does: the challenge, unless the
    license may not pull `name` at all, which is refused here with the reason (a client
    would otherwise only ever hear "authentication required"). Only refusals cost a query more."""
    caller = customer_auth.authorize(request, Scope("repository", name, ("pull",)))
    not_in_token = caller.denial == Denial.NOT_IN_TOKEN
    if not caller.allowed and not not_in_token:
        if caller.refused_license:
            pull_log.record_request(
                caller.license_uid, caller.app_id, name, kind, reference, 401, reason=caller.denial.value
            )
        return _refusal(request, caller, name)

    def refuse(status: int, code: str, message: str, reason: str) -> JsonResponse:
        pull_log.record_request(caller.license_uid, caller.app_id, name, kind, reference, status, reason=reason)
        return oci_error(status, code, message)

    routes = routing.app_routes(proxy.app_slug)
    if routes is None or routes.app.pk != caller.app_id:
        return refuse(403, "DENIED", "your license does not cover this app", Refusal.OTHER_APP)
    try:
        upstream = routing.route_pull(routes, proxy, caller.channel_id)
    except routing.NameUnknown:
        return refuse(404, "NAME_UNKNOWN", "repository name not known to the proxy", Refusal.UNKNOWN_REPOSITORY)
    except routing.Denied as e:
        return refuse(403, "DENIED", str(e), Refusal.NOT_ALLOWED)
    if not_in_token:
        return _challenge(request, name)
    return caller, routes.app, upstream


def _upstream_failure(error: RegistryError) -> JsonResponse:
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


def _status_failure(response: httpx.Response, kind: str, body: bytes = b"") -> JsonResponse:
    status = response.status_code
    if status == 404:
        codes = set()
        try:
            codes = {e.get("code") for e in _parse_json(body or b"{}").get("errors", [])}
        except (ValueError, AttributeError, TypeError):
            pass
        if "NAME_UNKNOWN" in codes:
            return oci_error(404, "NAME_UNKNOWN", "repository not found upstream")
        code = {"manifest": "MANIFEST_UNKNOWN", "blob": "BLOB_UNKNOWN"}.get(kind, "NAME_UNKNOWN")
        return oci_error(404, code, f"{kind} unknown")
    if status in (401, 403):
        return _upstream_failure(RegistryError("refused", ErrorCategory.UNAUTHORIZED))
    if status == 429:
        return oci_error(
            429,
            "TOOMANYREQUESTS",
            "the upstream registry is rate limiting",
            headers={"Retry-After": response.headers.get("retry-after", "30")},
        )
    if status == 416:
        return oci_error(416, "BLOB_UNKNOWN", "range not satisfiable")
    return oci_error(503, "UNAVAILABLE", "the upstream registry failed; try again", headers={"Retry-After": "30"})


def _log(
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


def _failed(
    caller: Verdict | None, app: App | None, name: str, kind: str, reference: str, error: RegistryError
) -> JsonResponse:
    """The answer to an upstream failure, logged with the status it answers (503 when busy or
    timed out, 429 when rate limited, 502 when refused or invalid)."""
    failure = _upstream_failure(error)
    _log(caller, app, name, kind, reference, failure.status_code, 0, error.category.value)
    return failure


async def _read_bounded(response: httpx.Response, limit: int) -> bytes | None:
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


def _headers_from(upstream: httpx.Response) -> dict[str, str]:
    return {h: upstream.headers[h] for h in PASSED_HEADERS if h in upstream.headers}


def _digest_refusal(digest: str) -> JsonResponse | None:
    """None for a sha256 digest, else the spec's 400 DIGEST_INVALID ("if the client provided
    digest is invalid or uses an unsupported algorithm, the registry SHOULD respond with 400")."""
    if ocispec.is_sha256_digest(digest):
        return None
    if ocispec.is_digest(digest) and not digest.startswith("sha256:"):
        return oci_error(400, "DIGEST_INVALID", "only sha256 digests are supported")
    return oci_error(400, "DIGEST_INVALID", "invalid digest")


def _parse_json(body: bytes) -> object:
    """The upstream's JSON; ValueError for anything that does not parse, deep nesting included."""
    return safejson.loads(body)


def _manifest_type(document: object, declared: str) -> str | None:
    """The content type a verified manifest goes out with, or None to refuse it.

    The body says what it is (`mediaType`), and it must be one of MANIFEST_MEDIA_TYPES. An OCI image
    manifest may leave mediaType out: then the upstream's Content-Type counts if it is a
    manifest type (its parameters ignored, as the spec tells clients), else the body's shape
    decides (an index lists "manifests"), never a type the upstream made up."""
    if not isinstance(document, dict):
        return None
    if "mediaType" in document:
        media_type = document["mediaType"]
        return media_type if media_type in ocispec.MANIFEST_MEDIA_TYPES else None
    declared = declared.split(";")[0].strip().lower()
    if declared in ocispec.MANIFEST_MEDIA_TYPES:
        return declared
    return ocispec.OCI_INDEX if "manifests" in document else ocispec.OCI_MANIFEST


def _manifest_invalid(caller, app, name: str, reference: str, upstream: Upstream, why: str) -> JsonResponse:
    logger.warning("invalid manifest %s@%s from registry %s: %s", name, reference, upstream.registry.pk, why)
    _log(caller, app, name, "manifest", reference, 502, 0, f"invalid manifest: {why}")
    return oci_error(502, "MANIFEST_INVALID", f"the upstream registry's manifest is invalid: {why}")


@csrf_exempt
async def manifest(request, name: str, reference: str):
    if request.method not in ("GET", "HEAD"):
        return oci_error(405, "UNSUPPORTED", "the proxy is read-only")
    by_digest = ":" in reference  # a tag never holds one
    if by_digest and (refusal := _digest_refusal(reference)):
        return refusal
    if not by_digest and not ocispec.is_tag(reference):
        return oci_error(400, "MANIFEST_INVALID", "invalid tag")
    resolved = await _resolve(request, name, "manifest", reference)
    if isinstance(resolved, HttpResponse):
        return resolved
    caller, app, upstream = resolved
    accept = request.headers.get("Accept") or ocispec.ACCEPT_MANIFESTS
    # A HEAD by tag (how containerd resolves a tag) is answered from a GET, so the digest it
    # gives is one computed here, the same a GET gives, never the upstream's word for it.
    method = "HEAD" if request.method == "HEAD" and by_digest else "GET"
    try:
        response, stack = await open_stream(upstream, method, f"manifests/{reference}", {"Accept": accept})
        async with stack:
            body = b""
            if method == "GET" and response.status_code == 200:
                body = await _read_bounded(response, MAX_MANIFEST_BYTES)
                if body is None:
                    _log(caller, app, name, "manifest", reference, 502, 0, "manifest too large")
                    return oci_error(502, "MANIFEST_INVALID", "manifest too large")
            elif response.status_code == 404:
                body = await _read_bounded(response, MAX_ERROR_BODY_BYTES) or b""
    except RegistryError as e:
        return _failed(caller, app, name, "manifest", reference, e)
    except httpx.HTTPError as e:
        return _failed(caller, app, name, "manifest", reference, as_registry_error(e))
    if response.status_code != 200:
        failure = _status_failure(response, "manifest", body)
        _log(caller, app, name, "manifest", reference, failure.status_code, 0, f"upstream {response.status_code}")
        return failure
    headers = {**API_VERSION, **_headers_from(response)}
    declared = response.headers.get("content-type", "")
    if method == "HEAD":
        # No body to read the type from: the upstream's word, but only for a manifest type.
        media_type = declared.split(";")[0].strip().lower()
        if media_type not in ocispec.MANIFEST_MEDIA_TYPES:
            return _manifest_invalid(caller, app, name, reference, upstream, "not a manifest content type")
        headers.update({"Content-Type": media_type, "Docker-Content-Digest": reference})
        return HttpResponse(status=200, headers=headers)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    if by_digest and digest != reference:
        logger.warning("digest mismatch on manifest %s@%s from registry %s", name, reference, upstream.registry.pk)
        _log(caller, app, name, "manifest", reference, 502, 0, "digest mismatch")
        return oci_error(502, "DIGEST_INVALID", "the upstream manifest does not match its digest")
    try:
        document = _parse_json(body)
    except ValueError:
        return _manifest_invalid(caller, app, name, reference, upstream, "not JSON")
    media_type = _manifest_type(document, declared)
    if media_type is None:
        return _manifest_invalid(caller, app, name, reference, upstream, "not a manifest media type")
    headers.update(
        {"Content-Type": media_type, "Docker-Content-Digest": digest, "Content-Length": str(len(body)),
         "ETag": f'"{digest}"'}
    )  # fmt: skip
    if request.method == "HEAD":
        return HttpResponse(status=200, headers=headers)  # Content-Length stays the body's
    _log(caller, app, name, "manifest", reference, 200, len(body))
    return HttpResponse(body, status=200, headers=headers)


@csrf_exempt
async def blob(request, name: str, digest: str):
    if request.method not in ("GET", "HEAD"):
        return oci_error(405, "UNSUPPORTED", "the proxy is read-only")
    if refusal := _digest_refusal(digest):
        return refusal
    resolved = await _resolve(request, name, "blob", digest)
    if isinstance(resolved, HttpResponse):
        return resolved
    caller, app, upstream = resolved
    headers = {}
    if request.headers.get("Range"):
        headers["Range"] = request.headers["Range"]
    try:
        response, stack = await open_stream(upstream, request.method, f"blobs/{digest}", headers)
    except RegistryError as e:
        return _failed(caller, app, name, "blob", digest, e)
    if response.status_code not in (200, 206):
        body = b""
        if response.status_code == 404:
            try:
                body = await _read_bounded(response, MAX_ERROR_BODY_BYTES) or b""
            except httpx.HTTPError:
                pass  # the status says enough
        await stack.aclose()
        failure = _status_failure(response, "blob", body)
        _log(caller, app, name, "blob", digest, failure.status_code, 0, f"upstream {response.status_code}")
        return failure
    out_headers = {
        **API_VERSION, **_headers_from(response), "Content-Type": BLOB_TYPE, "Docker-Content-Digest": digest
    }  # fmt: skip
    if request.method == "HEAD":
        await stack.aclose()
        return HttpResponse(status=response.status_code, headers=out_headers)
    verify = response.status_code == 200
    expected = int(response.headers.get("content-length") or -1)

    async def body():
        sent = 0
        reason = ""
        hasher = hashlib.sha256() if verify else None
        # sha256 (~0.75 s/GiB here, OpenSSL's own speed) would be half the event loop's work.
        # hashlib releases the GIL, so chunks are hashed in a worker thread, a batch of at least
        # HASH_BATCH_BYTES at a time, in order, one batch at a time, while the loop moves bytes;
        # the rest inline at the end. bench/proxy.py: 1 GiB GET ~1.5x faster.
        loop = asyncio.get_running_loop()
        hashing: asyncio.Future | None = None
        batch: list[bytes] = []
        batch_bytes = 0
        held: bytes | None = None
        try:
            async with stack:
                async for chunk in response.aiter_raw():
                    # The new chunk goes to the hashing thread first, so it is hashed while the
                    # loop sends the one before (the other order was ~15% slower).
                    if hasher is not None:
                        batch.append(chunk)
                        batch_bytes += len(chunk)
                        if batch_bytes >= HASH_BATCH_BYTES:
                            if hashing is not None:
                                await hashing
                            hashing = loop.run_in_executor(None, _hash_all, hasher, batch)
                            batch, batch_bytes = [], 0
                    if held is not None:
                        yield held
                        sent += len(held)
                    held = chunk
                if hashing is not None:
                    await hashing
                if hasher is not None:
                    _hash_all(hasher, batch)
                if expected >= 0 and sent + len(held or b"") != expected:
                    reason = "truncated"
                    raise RegistryError("upstream blob was cut short", ErrorCategory.INVALID_RESPONSE)
                if hasher is not None and "sha256:" + hasher.hexdigest() != digest:
                    reason = "digest mismatch"
                    logger.warning("digest mismatch on blob %s@%s from registry %s", name, digest, upstream.registry.pk)
                    raise RegistryError("upstream blob does not match its digest", ErrorCategory.INVALID_RESPONSE)
                if held is not None:
                    yield held  # the last chunk goes out only once the digest checks out
                    sent += len(held)
        except httpx.HTTPError as e:
            reason = reason or as_registry_error(e).category.value
            raise
        finally:
            _log(caller, app, name, "blob", digest, 200 if not reason else 502, sent, reason)

    return StreamingHttpResponse(body(), status=response.status_code, headers=out_headers)


def _hash_all(hasher, chunks: list[bytes]) -> None:
    for chunk in chunks:
        hasher.update(chunk)


def _tag_list(raw: bytes) -> list[str]:
    """The sorted tags of an upstream's `{"tags": [...]}`; ValueError naming what is wrong.
    A null list is an empty one (registries answer so for a repository without tags); a tag
    the spec's grammar refuses would end up in our JSON and Link header, so it refuses the list."""
    try:
        document = _parse_json(raw)
    except ValueError:
        raise ValueError("not JSON") from None
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    tags = document.get("tags")
    if tags is None:
        return []
    if not isinstance(tags, list) or not all(isinstance(t, str) and ocispec.is_tag(t) for t in tags):
        raise ValueError("tags is not a list of tags")
    return sorted(set(tags))


@csrf_exempt
async def tags_list(request, name: str):
    if request.method not in ("GET", "HEAD"):
        return oci_error(405, "UNSUPPORTED", "the proxy is read-only")
    resolved = await _resolve(request, name, "tags", "list")
    if isinstance(resolved, HttpResponse):
        return resolved
    caller, app, upstream = resolved
    params = {}
    n = request.GET.get("n")
    if n is not None:
        if not n.isdigit() or not 0 < int(n):
            return oci_error(400, "PAGINATION_NUMBER_INVALID", "n must be a positive number")
        params["n"] = str(min(int(n), MAX_TAGS_PAGE))
    last = request.GET.get("last")
    if last:
        if not ocispec.is_tag(last):
            return oci_error(400, "TAG_INVALID", "last must be a tag")
        params["last"] = last
    try:
        response, stack = await open_stream(upstream, "GET", "tags/list", {"Accept": "application/json"}, params=params)
        async with stack:
            raw = await _read_bounded(response, MAX_TAGS_BODY_BYTES)
    except RegistryError as e:
        return _failed(caller, app, name, "tags", "list", e)
    except httpx.HTTPError as e:
        return _failed(caller, app, name, "tags", "list", as_registry_error(e))
    if raw is None:
        _log(caller, app, name, "tags", "list", 502, 0, "tag list too large")
        return oci_error(502, "UNAVAILABLE", "the upstream registry's tag list is too large")
    if response.status_code != 200:
        failure = _status_failure(response, "tags", raw)
        _log(caller, app, name, "tags", "list", failure.status_code, 0, f"upstream {response.status_code}")
        return failure
    try:
        tags = _tag_list(raw)
    except ValueError as e:
        logger.warning("invalid tag list of %s from registry %s: %s", name, upstream.registry.pk, e)
        _log(caller, app, name, "tags", "list", 502, 0, f"invalid tag list: {e}")
        return oci_error(502, "UNAVAILABLE", f"the upstream registry's tag list is invalid: {e}")
    # Distribution 2.8 ignores n and last for tags: page here as well, in lexical order.
    if last:
        tags = [t for t in tags if t > last]
    more = "link" in response.headers
    if "n" in params and len(tags) > int(params["n"]):
        tags, more = tags[: int(params["n"])], True
    headers = dict(API_VERSION)
    if more and tags:
        page = params.get("n") or str(len(tags))
        headers["Link"] = f'</v2/{name}/tags/list?n={page}&last={tags[-1]}>; rel="next"'
    _log(caller, app, name, "tags", "list", 200, len(raw))
    return JsonResponse({"name": name, "tags": tags}, headers=headers)
