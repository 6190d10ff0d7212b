"""Every Prometheus series the portal keeps, in one place; the layers above count through here.

prometheus-client in multi-process mode: each process (every uvicorn worker, every Celery
worker) writes its values to memory-mapped files in settings.PROMETHEUS_MULTIPROC_DIR and
/metrics adds up every process's files, so a scrape of any web process sees the whole
machine. Labels stay few and fixed: app slugs, registry names, task names and fixed result
words, never a license ID, a digest or a repository.

Counting costs the proxy little: a labelled child is looked up in a dict and its value
written to the mapped file (see the README's Metrics section for the figures).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Settings put PROMETHEUS_MULTIPROC_DIR in the environment, and prometheus-client reads it
# when it is first imported: reading a setting here loads them before that import.
_MULTIPROC_DIR = settings.PROMETHEUS_MULTIPROC_DIR

from prometheus_client import (  # noqa: E402 (after the settings, see above)
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

if values.ValueClass is values.MutexValue:
    raise ImproperlyConfigured(
        "prometheus_client was imported before the portal's settings set PROMETHEUS_MULTIPROC_DIR; "
        "its series would stay in one process"
    )

# The classic text format, which every Prometheus version reads (prometheus-client 0.22+ labels
# its output version=1.0.0, which Prometheus 2 does not know; the bytes are the same).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Result words of a proxy request, from the status it was answered with.
OK = "ok"
REFUSED = "refused"  # 401/403: the license may not pull this (the reason is in license_denials)
NOT_FOUND = "not_found"
RATE_LIMITED = "rate_limited"
FAILED = "failed"  # the upstream failed or sent something invalid

PULLS = Counter(
    "portal_pulls",
    "Manifest requests through the proxy (a pull), by app and result.",
    ["app", "result"],
)
PULL_BYTES = Counter(
    "portal_pull_bytes",
    "Bytes the proxy sent to customers (manifests, blobs, tag lists), by app and result.",
    ["app", "result"],
)
LICENSE_DENIALS = Counter(
    "portal_license_denials",
    "Requests refused because of the license, at the proxy and the token service, by reason.",
    ["reason"],
)
UPSTREAM_SECONDS = Histogram(
    "portal_upstream_request_seconds",
    "Seconds from sending a request to an upstream registry to its response headers, per attempt.",
    ["registry"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
UPSTREAM_ERRORS = Counter(
    "portal_upstream_errors",
    "Proxy requests to an upstream registry that failed, by registry and error category.",
    ["registry", "category"],
)
CACHE_REQUESTS = Counter(
    "portal_proxy_cache",
    "Blob and manifest requests the proxy's cache answered (hit), fetched upstream (miss), served"
    " from another request's fetch (joined) or answered while the upstream failed (stale), by kind.",
    ["kind", "result"],
)
CACHE_EVICTIONS = Counter(
    "portal_proxy_cache_evictions",
    "Objects removed from the proxy's cache to keep it within PROXY_CACHE_MAX_BYTES.",
)
CACHE_EVICTED_BYTES = Counter(
    "portal_proxy_cache_evicted_bytes",
    "Bytes removed from the proxy's cache to keep it within PROXY_CACHE_MAX_BYTES.",
)
TOKENS = Counter(
    "portal_tokens",
    "Token requests at /v2/token, by service and result.",
    ["service", "result"],
)
CELERY_TASKS = Counter(
    "portal_celery_tasks",
    "Celery task outcomes, by task name and state (success, failure, retry).",
    ["task", "state"],
)


def result_of(status: int) -> str:
    """The result word of a proxy request answered with `status`."""
    if status in (200, 206):
        return OK
    if status in (401, 403):
        return REFUSED
    if status == 404:
        return NOT_FOUND
    if status == 429:
        return RATE_LIMITED
    return FAILED


def task_outcome(task_name: str, state: str) -> None:
    CELERY_TASKS.labels(task_name, state).inc()


def authorized(header: str, token: str) -> bool:
    """Whether an Authorization header carries `token` as a Bearer token; constant time."""
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def exposition() -> tuple[bytes, str]:
    """The series of every process writing to the folder, in the text format, and its content type."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(_MULTIPROC_DIR))
    return generate_latest(registry), CONTENT_TYPE
