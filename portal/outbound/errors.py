"""The one error type the registry clients raise, with a fixed set of categories."""

from __future__ import annotations

from enum import StrEnum


class ErrorCategory(StrEnum):
    DNS = "dns"
    CONNECT = "connect"
    TIMEOUT = "timeout"
    TLS = "tls"
    UNAUTHORIZED = "unauthorized"  # credentials rejected (401)
    FORBIDDEN = "forbidden"  # authenticated, but no access (403)
    REPOSITORY_UNKNOWN = "repository_unknown"
    MANIFEST_UNKNOWN = "manifest_unknown"
    BLOB_UNKNOWN = "blob_unknown"
    RATE_LIMITED = "rate_limited"
    UPSTREAM_ERROR = "upstream_error"  # 5xx
    BLOCKED = "blocked"  # the network guard refused the address
    REALM_NOT_ALLOWED = "realm_not_allowed"
    INVALID_RESPONSE = "invalid_response"
    INSECURE_NOT_ALLOWED = "insecure_not_allowed"
    BUSY = "busy"  # the proxy's share of connections to the upstream is in use (bulkhead)


class RegistryError(Exception):
    """A registry call failed.

    `message` is written by us from fixed phrases and caller-given names only: never a
    credential, never upstream body or header text (it may end up in a page or a log).
    """

    def __init__(
        self,
        message: str,
        category: ErrorCategory | str,
        *,
        retry_after: int | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.category = ErrorCategory(category)
        self.retry_after = retry_after
        self.status_code = status_code

    def __str__(self) -> str:
        return f"{self.category}: {self.message}"

    def __repr__(self) -> str:
        return f"RegistryError({self.message!r}, {self.category.value!r})"
