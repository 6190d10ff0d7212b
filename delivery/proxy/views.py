"""The registry proxy: /v2/proxy/<app>/<upstream-host>/<repository>/{manifests,blobs,tags}/…

Customers authenticate with their license (a token from /v2/token, or Basic straight here);
the proxy pulls upstream with the vendor's stored credentials, verifies what it passes on, keeps
blobs and manifests in the team's cache (delivery/proxy/cache.py), and re-checks the license on
every manifest and blob request (delivery/proxy/gate.py), cached or not. Blobs are
delivery/proxy/blobs.py; this module is the root, manifests and tag lists.
Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from functools import partial

import httpx
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from delivery import customer_auth
from delivery.proxy import answers, cache, gate
from delivery.proxy.upstream import open_stream
from delivery.routing import Upstream
from portal import metrics, ocispec
from portal.db import off_loop
from portal.objectstore import StorageError
from portal.ocierrors import API_VERSION, oci_error
from portal.outbound.errors import ErrorCategory, RegistryError
from portal.outbound.httperrors import as_registry_error

logger = logging.getLogger(__name__)


@csrf_exempt
async def v2_root(request):
    """GET /v2/: 200 for a valid license, else the challenge that sends clients to /v2/token."""
    verdict = await off_loop(request, customer_auth.authorize, request)
    if not verdict.allowed:
        return answers.refusal(request, verdict)
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
    answers.log(caller, app, name, "manifest", reference, 502, 0, f"invalid manifest: {why}")
    return oci_error(502, "MANIFEST_INVALID", f"the upstream registry's manifest is invalid: {why}")


def _manifest_lookup(reference: str, by_digest: bool, upstream: Upstream):
    """(cached manifest or None, the tag's last answer or None, the manifest's verified bytes or
    None), in the authorizing thread: a cached answer costs the request one trip to a thread.
    The bytes are read when they may be served as they are (this repository served them and,
    by tag, the tag's answer is recent); bytes damaged or gone make it a miss, whose fetch
    stores them anew."""
    if by_digest:
        found, tag = cache.find(upstream, reference, cache.MANIFEST), None
    else:
        found, tag = cache.find_by_tag(upstream, reference)
    if found is None or not found.linked or not (by_digest or tag.fresh):
        return found, tag, None
    body = _cached_bytes(found)
    return (found if body is not None else None), tag, body


def _cached_bytes(found: cache.Found) -> bytes | None:
    """A cached manifest's bytes once they match its digest, else None (and why, in the log)."""
    try:
        body = cache.read_all(found.key)
    except StorageError as e:
        logger.warning("cached manifest %s unreadable: %s", found.digest, e)
        return None
    if "sha256:" + hashlib.sha256(body).hexdigest() != found.digest:
        logger.warning("cached manifest %s does not match its digest; fetching it again", found.digest)
        return None
    return body


def _accepts(accept: str | None, media_type: str) -> bool:
    """Whether a client's Accept header takes `media_type` (none, or */*, takes any)."""
    if not accept:
        return True
    types = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return media_type in types or "*/*" in types


# Upstream failures a cached answer may stand in for: the upstream is down, slow, busy or
# rate limiting. A refusal of the portal's credentials or an invalid answer is not covered.
STALE_CATEGORIES = frozenset(
    {ErrorCategory.DNS, ErrorCategory.CONNECT, ErrorCategory.TIMEOUT, ErrorCategory.TLS,
     ErrorCategory.RATE_LIMITED, ErrorCategory.UPSTREAM_ERROR, ErrorCategory.BUSY}
)  # fmt: skip


def _stale_reason(category: ErrorCategory) -> str:
    return f"served from the cache: the upstream registry failed ({category.value})"


def _cached_manifest(request, caller, app, name: str, reference: str, found: cache.Found, body: bytes, reason=""):
    """The answer of a cached manifest, its verified `body`; `reason` says why a stale one."""
    metrics.CACHE_REQUESTS.labels(cache.MANIFEST, "stale" if reason else "hit").inc()
    headers = {
        **API_VERSION, "Content-Type": found.media_type, "Docker-Content-Digest": found.digest,
        "Content-Length": str(len(body)), "ETag": f'"{found.digest}"',
    }  # fmt: skip
    if request.method == "HEAD":
        return HttpResponse(status=200, headers=headers)
    answers.log(caller, app, name, "manifest", reference, 200, len(body), reason)
    return HttpResponse(body, status=200, headers=headers)


@csrf_exempt
async def manifest(request, name: str, reference: str):
    if request.method not in ("GET", "HEAD"):
        return oci_error(405, "UNSUPPORTED", "the proxy is read-only")
    by_digest = ":" in reference  # a tag never holds one
    if by_digest and (refusal := answers.digest_refusal(reference)):
        return refusal
    if not by_digest and not ocispec.is_tag(reference):
        return oci_error(400, "MANIFEST_INVALID", "invalid tag")
    resolved = await gate.resolve(request, name, "manifest", reference, partial(_manifest_lookup, reference, by_digest))
    if isinstance(resolved, HttpResponse):
        return resolved
    caller, app, upstream, (found, tag, body) = resolved
    accept = request.headers.get("Accept") or ocispec.ACCEPT_MANIFESTS
    usable = found is not None and found.linked and _accepts(request.headers.get("Accept"), found.media_type)
    if usable and body is not None:
        return _cached_manifest(request, caller, app, name, reference, found, body)

    # Requests missing the same manifest at once in this process wait for the first one's
    # fetch, then read the cache: an image many customers pull at the same moment costs one
    # upstream GET per process (Docker Hub counts each as a pull), not one per customer.
    fetch = partial(_fetch_manifest, request, caller, app, name, reference, upstream, by_digest, accept, found, usable)
    fetches = request.method == "GET" or not by_digest  # HEAD by digest goes upstream as a HEAD
    if not (cache.enabled() and fetches):
        return await fetch()
    key = (asyncio.get_running_loop(), upstream.registry.pk, upstream.repository, reference, accept)
    flight = _in_flight.get(key)
    if flight is not None:
        answer = await _after_flight(request, caller, app, name, reference, upstream, by_digest, flight)
        return answer if answer is not None else await fetch()
    _in_flight[key] = flight = _Flight()
    try:
        answer = await fetch()
        if answer.status_code >= 400:
            flight.failure = answer
        return answer
    finally:
        flight.ended.set()
        _in_flight.pop(key, None)


class _Flight:
    """A manifest fetch in progress: set once it ended, with its answer if that was a failure."""

    def __init__(self) -> None:
        self.ended = asyncio.Event()
        self.failure: HttpResponse | None = None


# (event loop, registry, repository, reference, Accept) -> the fetch in progress.
_in_flight: dict[tuple, _Flight] = {}


async def _after_flight(request, caller, app, name: str, reference: str, upstream: Upstream, by_digest: bool, flight):
    """Once another request's fetch of this manifest ended: the cached answer, or the same
    failure (a stuck or failing upstream is not asked once more per waiting request), or None
    when neither is there (then this request asks the upstream itself)."""
    wait = settings.UPSTREAM_POOL_WAIT + settings.UPSTREAM_FIRST_BYTE_TIMEOUT + 5
    try:
        await asyncio.wait_for(flight.ended.wait(), wait)
    except TimeoutError:
        return None
    if flight.failure is not None:
        failure = flight.failure
        answers.log(
            caller, app, name, "manifest", reference, failure.status_code, 0, "the same as a concurrent request"
        )
        return HttpResponse(failure.content, status=failure.status_code, headers=dict(failure.items()))
    found, tag, body = await off_loop(request, _manifest_lookup, reference, by_digest, upstream)
    if body is None or not _accepts(request.headers.get("Accept"), found.media_type):
        return None
    return _cached_manifest(request, caller, app, name, reference, found, body)


async def _fetch_manifest(
    request, caller, app, name: str, reference: str, upstream: Upstream, by_digest: bool, accept: str, found, usable
):
    """The manifest from the upstream, verified and kept in the cache; while the upstream
    fails, the cached answer if there is one (`usable`)."""

    async def stale(category: ErrorCategory) -> HttpResponse | None:
        """The last known answer while the upstream fails this way, if the cache has it intact."""
        if not (usable and category in STALE_CATEGORIES):
            return None
        cached = await sync_to_async(_cached_bytes, thread_sensitive=False)(found)
        if cached is None:
            return None
        logger.warning("upstream of %s failed (%s); answering %s from the cache", name, category.value, reference)
        return _cached_manifest(request, caller, app, name, reference, found, cached, _stale_reason(category))

    # A HEAD by tag (how containerd resolves a tag) is answered from a GET, so the digest it
    # gives is one computed here, the same a GET gives, never the upstream's word for it.
    method = "HEAD" if request.method == "HEAD" and by_digest else "GET"
    try:
        response, stack = await open_stream(upstream, method, f"manifests/{reference}", {"Accept": accept})
        async with stack:
            body = b""
            if method == "GET" and response.status_code == 200:
                body = await answers.read_bounded(response, answers.MAX_MANIFEST_BYTES)
                if body is None:
                    answers.log(caller, app, name, "manifest", reference, 502, 0, "manifest too large")
                    return oci_error(502, "MANIFEST_INVALID", "manifest too large")
            elif response.status_code == 404:
                body = await answers.read_bounded(response, answers.MAX_ERROR_BODY_BYTES) or b""
    except (RegistryError, httpx.HTTPError) as e:
        error = e if isinstance(e, RegistryError) else as_registry_error(e)
        answer = await stale(error.category)
        return answer if answer is not None else answers.failed(caller, app, name, "manifest", reference, error)
    if response.status_code != 200:
        if response.status_code == 429 or response.status_code >= 500:
            category = ErrorCategory.RATE_LIMITED if response.status_code == 429 else ErrorCategory.UPSTREAM_ERROR
            if (answer := await stale(category)) is not None:
                return answer
        failure = answers.status_failure(response, "manifest", body)
        answers.log(
            caller, app, name, "manifest", reference, failure.status_code, 0, f"upstream {response.status_code}"
        )
        return failure
    headers = {**API_VERSION, **answers.headers_from(response)}
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
        answers.log(caller, app, name, "manifest", reference, 502, 0, "digest mismatch")
        return oci_error(502, "DIGEST_INVALID", "the upstream manifest does not match its digest")
    try:
        document = answers.parse_json(body)
    except ValueError:
        return _manifest_invalid(caller, app, name, reference, upstream, "not JSON")
    media_type = _manifest_type(document, declared)
    if media_type is None:
        return _manifest_invalid(caller, app, name, reference, upstream, "not a manifest media type")
    if cache.enabled():
        metrics.CACHE_REQUESTS.labels(cache.MANIFEST, "miss").inc()
        kept = found is not None and found.linked and found.digest == digest  # the tag still names it
        await off_loop(
            request, _keep_manifest, upstream, None if by_digest else reference, digest, body, media_type, kept
        )
    headers.update(
        {"Content-Type": media_type, "Docker-Content-Digest": digest, "Content-Length": str(len(body)),
         "ETag": f'"{digest}"'}
    )  # fmt: skip
    if request.method == "HEAD":
        return HttpResponse(status=200, headers=headers)  # Content-Length stays the body's
    answers.log(caller, app, name, "manifest", reference, 200, len(body))
    return HttpResponse(body, status=200, headers=headers)


def _keep_manifest(upstream: Upstream, tag: str | None, digest: str, body: bytes, media_type: str, kept: bool) -> None:
    """A verified manifest into the cache (unless `kept` there already), and the tag's answer
    if asked by tag."""
    if not kept:
        cache.add_bytes(upstream, digest, cache.MANIFEST, body, media_type)
    if tag is not None:
        cache.remember_tag(upstream, tag, digest)


def _tag_list(raw: bytes) -> list[str]:
    """The sorted tags of an upstream's `{"tags": [...]}`; ValueError naming what is wrong.
    A null list is an empty one (registries answer so for a repository without tags); a tag
    the spec's grammar refuses would end up in our JSON and Link header, so it refuses the list."""
    try:
        document = answers.parse_json(raw)
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
    resolved = await gate.resolve(request, name, "tags", "list")
    if isinstance(resolved, HttpResponse):
        return resolved
    caller, app, upstream, _ = resolved
    params = {}
    n = request.GET.get("n")
    if n is not None:
        if not n.isdigit() or not 0 < int(n):
            return oci_error(400, "PAGINATION_NUMBER_INVALID", "n must be a positive number")
        params["n"] = str(min(int(n), answers.MAX_TAGS_PAGE))
    last = request.GET.get("last")
    if last:
        if not ocispec.is_tag(last):
            return oci_error(400, "TAG_INVALID", "last must be a tag")
        params["last"] = last
    try:
        response, stack = await open_stream(upstream, "GET", "tags/list", {"Accept": "application/json"}, params=params)
        async with stack:
            raw = await answers.read_bounded(response, answers.MAX_TAGS_BODY_BYTES)
    except RegistryError as e:
        return answers.failed(caller, app, name, "tags", "list", e)
    except httpx.HTTPError as e:
        return answers.failed(caller, app, name, "tags", "list", as_registry_error(e))
    if raw is None:
        answers.log(caller, app, name, "tags", "list", 502, 0, "tag list too large")
        return oci_error(502, "UNAVAILABLE", "the upstream registry's tag list is too large")
    if response.status_code != 200:
        failure = answers.status_failure(response, "tags", raw)
        answers.log(caller, app, name, "tags", "list", failure.status_code, 0, f"upstream {response.status_code}")
        return failure
    try:
        tags = _tag_list(raw)
    except ValueError as e:
        logger.warning("invalid tag list of %s from registry %s: %s", name, upstream.registry.pk, e)
        answers.log(caller, app, name, "tags", "list", 502, 0, f"invalid tag list: {e}")
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
    answers.log(caller, app, name, "tags", "list", 200, len(raw))
    return JsonResponse({"name": name, "tags": tags}, headers=headers)
