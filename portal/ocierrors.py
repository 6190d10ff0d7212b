"""The registry API's error answer, written one way for every door under /v2/ (token service,
proxy, the ASGI body limit): `{"errors": [{"code", "message", "detail"}]}` with a code of
portal.ocispec.ERROR_CODES, and Distribution's API version header, which clients look for.

Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes
"""

from __future__ import annotations

from django.http import JsonResponse

from portal.ocispec import ERROR_CODES

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}


def oci_error_body(code: str, message: str, **extra: object) -> dict:
    """The JSON body; `extra` adds top-level members (the token service's OAuth `error`).
    ValueError for a code clients do not know: a typo here would reach every client."""
    if code not in ERROR_CODES:
        raise ValueError(f"{code!r} is not an OCI error code (portal.ocispec.ERROR_CODES)")
    return {"errors": [{"code": code, "message": message, "detail": None}], **extra}


def oci_error(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: object
) -> JsonResponse:
    return JsonResponse(
        oci_error_body(code, message, **extra), status=status, headers={**API_VERSION, **(headers or {})}
    )
