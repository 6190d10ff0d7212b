"""What a registry's error answer means: its status and the spec's error codes in its body,
turned into a RegistryError with a category and a message that quotes nothing of the body."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from portal import ocispec, safejson
from portal.outbound.errors import RegistryError
from portal.outbound.httperrors import where


def _retry_after(response: httpx.Response) -> int | None:
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return min(int(value), 86400)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, min(int((when - datetime.now(UTC)).total_seconds()), 86400))


def error_codes(response: httpx.Response) -> set[str]:
    """The spec's error codes in a registry's error body; empty if it has none or is not JSON."""
    # Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes
    # Only codes from the spec's list are read; no other body text leaves this function.
    try:
        errors = safejson.loads(response.content).get("errors", [])
        return {e["code"] for e in errors if isinstance(e, dict) and e.get("code") in ocispec.ERROR_CODES}
    except (ValueError, AttributeError, TypeError, httpx.ResponseNotRead):
        return set()


def status_error(response: httpx.Response, *, what: str, name: str = "") -> RegistryError:
    """The RegistryError for a failed answer to a `what` request (ping, token, manifest, blob)
    about `name`."""
    status = response.status_code
    host = where(response.request.url)
    codes = error_codes(response)
    if status == 429 or "TOOMANYREQUESTS" in codes:
        retry_after = _retry_after(response)
        wait = f"; retry after {retry_after} s" if retry_after is not None else ""
        return RegistryError(
            f"{host} is rate limiting requests{wait}", "rate_limited", retry_after=retry_after, status_code=status
        )
    if status == 401:
        return RegistryError(
            f"{host} rejected the credentials for {name or 'this request'}", "unauthorized", status_code=status
        )
    if status == 403:
        return RegistryError(
            f"the credentials have no access to {name or 'this registry'}", "forbidden", status_code=status
        )
    if status == 404:
        if "NAME_UNKNOWN" in codes:
            return RegistryError(
                f"repository {name.split(':')[0].split('@')[0]} not found", "repository_unknown", status_code=status
            )
        if "BLOB_UNKNOWN" in codes or what == "blob":
            return RegistryError(f"blob {name} not found", "blob_unknown", status_code=status)
        if "MANIFEST_UNKNOWN" in codes or what == "manifest":
            return RegistryError(f"{name} not found", "manifest_unknown", status_code=status)
        return RegistryError(f"no registry API at {host}", "invalid_response", status_code=status)
    if status >= 500:
        return RegistryError(
            f"{host} answered HTTP {status}", "upstream_error", retry_after=_retry_after(response), status_code=status
        )
    return RegistryError(f"{host} answered an unexpected HTTP {status}", "invalid_response", status_code=status)
