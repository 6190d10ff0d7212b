"""Google GCR / Artifact Registry: endpoint and service-account key validation, token minting."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from django.views.decorators.debug import sensitive_variables
from google.auth.transport import Request as GoogleRequest
from google.auth.transport import Response as GoogleResponse

from portal import safejson
from portal.outbound.addresses import GuardPolicy, address_refusal, check_url, parse_ip_literal, port_refusal
from portal.outbound.errors import ErrorCategory, RegistryError
from portal.outbound.httperrors import as_registry_error
from portal.outbound.sync_client import GuardedSyncClient

GCR_HOSTS = frozenset({"gcr.io", "us.gcr.io", "eu.gcr.io", "asia.gcr.io"})
# Locations are regions (us-central1, europe-west4) or multi-regions (us, europe, asia).
# Reference: https://cloud.google.com/artifact-registry/docs/repositories/repo-locations
GAR_HOST_RE = re.compile(r"^(?P<location>[a-z]+(?:-[a-z]+\d+)?)-docker\.pkg\.dev$")
_PATH_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")

GOOGLE_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
REGISTRY_USERNAME = "oauth2accesstoken"
# A real key is about 2.3 KB; anything near this is not a key, and is refused before parsing.
MAX_KEY_BYTES = 64 * 1024
MAX_RESPONSE_BYTES = 64 * 1024
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 15.0
SHORT_LIFETIME = timedelta(minutes=5)
_OAUTH_ERROR_RE = re.compile(r"^[a-z_]{1,40}$")
_BAD_KEY_ERRORS = {"invalid_grant", "invalid_client", "unauthorized_client"}

SERVICE_ACCOUNT_CODE = "invalid_service_account_json"


class GcrInputError(ValueError):
    """A vendor-supplied value is unusable; the message names the problem, never the value."""

    def __init__(self, message: str, field: str, code: str, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code
        self.reason = reason


def _key_error(message: str, reason: str) -> GcrInputError:
    return GcrInputError(message, "service_account_key", SERVICE_ACCOUNT_CODE, reason)


@dataclass(frozen=True)
class GoogleEndpoint:
    provider: str  # "gcr" or "gar"
    host: str
    location: str | None  # GAR location; GCR hosts name a multi-region instead
    path_prefix: str  # e.g. "my-project/my-repo"; "" for the whole host


@dataclass(frozen=True)
class GcrToken:
    username: str
    password: str = field(repr=False)
    expires_at: datetime


def parse_google_endpoint(provider: str, endpoint: str) -> GoogleEndpoint:
    """Check a `gcr` (gcr.io, us.gcr.io, …) or `gar` (<location>-docker.pkg.dev) endpoint."""
    value = (endpoint or "").strip().lower().removeprefix("https://").strip("/")
    if not value:
        raise GcrInputError("Endpoint is required.", "endpoint", "required")
    host, _, prefix = value.partition("/")
    if prefix and not all(_PATH_COMPONENT_RE.fullmatch(part) for part in prefix.split("/")):
        raise GcrInputError(
            "The path after the host must be lowercase repository path components.",
            "endpoint",
            "invalid_endpoint",
        )
    if provider == "gcr":
        if host not in GCR_HOSTS:
            raise GcrInputError(
                "GCR endpoint must be gcr.io, us.gcr.io, eu.gcr.io or asia.gcr.io.",
                "endpoint",
                "invalid_endpoint",
            )
        return GoogleEndpoint(provider="gcr", host=host, location=None, path_prefix=prefix)
    if provider == "gar":
        match = GAR_HOST_RE.fullmatch(host)
        if not match:
            raise GcrInputError(
                "Artifact Registry endpoint must look like us-central1-docker.pkg.dev.",
                "endpoint",
                "invalid_endpoint",
            )
        return GoogleEndpoint(provider="gar", host=host, location=match["location"], path_prefix=prefix)
    raise GcrInputError("Provider must be gcr or gar.", "provider", "invalid_provider")


@sensitive_variables()
def parse_service_account_key(text: str | bytes) -> dict[str, Any]:
    """Parse and check a service-account JSON key as uploaded; returns the JSON object."""
    raw = text.encode() if isinstance(text, str) else bytes(text)
    if len(raw) > MAX_KEY_BYTES:
        raise _key_error(f"Service-account key is larger than {MAX_KEY_BYTES // 1024} KiB.", "too_large")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _key_error("Service-account key is not UTF-8 text.", "not_utf8") from None
    try:
        info = safejson.loads(decoded)
    except ValueError as e:
        position = f" (line {e.lineno}, column {e.colno})" if isinstance(e, json.JSONDecodeError) else ""
        raise _key_error(f"Service-account key is not valid JSON{position}.", "not_json") from None
    check_service_account_info(info)
    return info


@sensitive_variables()
def check_service_account_info(info: Any, *, check_token_uri: bool = True) -> None:
    """Refuse a key google-auth could not use, or could be tricked with, naming the field."""
    if not isinstance(info, dict):
        raise _key_error("Service-account key must be a JSON object.", "not_object")
    if info.get("type") != "service_account":
        raise _key_error('Field "type" must be "service_account".', "wrong_type")
    for name in ("client_email", "private_key", "token_uri"):
        if not isinstance(info.get(name), str) or not info[name].strip():
            raise _key_error(f'Field "{name}" is missing or empty.', "missing_field")
    if "@" not in info["client_email"] or any(c.isspace() for c in info["client_email"]):
        raise _key_error('Field "client_email" is not an email address.', "invalid_client_email")
    _check_private_key(info["private_key"])
    if check_token_uri:
        _check_token_uri(info["token_uri"])
    # Another universe makes google-auth sign its own JWT instead of asking token_uri.
    universe = info.get("universe_domain", "googleapis.com")
    if universe != "googleapis.com":
        raise _key_error('Field "universe_domain" must be "googleapis.com".', "unsupported_universe")


@sensitive_variables()
def _check_private_key(pem: str) -> None:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    message = 'Field "private_key" is not a PEM-encoded, unencrypted RSA private key.'
    if "-----BEGIN" not in pem:
        raise _key_error(message, "invalid_private_key")
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise _key_error(message, "invalid_private_key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _key_error(message, "invalid_private_key")


def _check_token_uri(uri: str) -> None:
    """What can be told without a DNS lookup; the guard checks the resolved address when minting."""
    policy = GuardPolicy.from_settings()
    try:
        url = check_url(uri, replace(policy, allowed_ports=None))
    except RegistryError as e:
        if e.category == ErrorCategory.INSECURE_NOT_ALLOWED:
            raise _key_error('Field "token_uri" must be an https URL.', "invalid_token_uri") from None
        raise _key_error('Field "token_uri" must be an https URL without user info.', "invalid_token_uri") from None
    refused_port = port_refusal(url.port or (443 if url.scheme == "https" else 80), policy)
    if refused_port:
        raise _key_error(f'Field "token_uri": {refused_port}.', "blocked_token_uri")
    literal = parse_ip_literal(url.host)
    if literal is not None and address_refusal(literal, policy):
        raise _key_error('Field "token_uri" points at an address that may not be contacted.', "blocked_token_uri")


@sensitive_variables()
def mint_gcr_token(key_info: Mapping[str, Any]) -> GcrToken:
    """Exchange a service-account key for an access token (registry user `oauth2accesstoken`)."""
    from google.auth import exceptions as google_exceptions
    from google.oauth2 import service_account

    info = dict(key_info)
    # token_uri is left to the guard here, which refuses with a RegistryError(blocked) and also
    # covers names that resolve to a refused address.
    check_service_account_info(info, check_token_uri=False)
    request = GuardedRequest()
    try:
        credentials = service_account.Credentials.from_service_account_info(info, scopes=GOOGLE_SCOPES)
    except (ValueError, KeyError):
        raise _key_error("Service-account key could not be loaded.", "unloadable") from None
    try:
        # POSTs a signed JWT-bearer assertion to info["token_uri"] through GuardedRequest.
        # Reference: https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests
        # Reference: https://googleapis.dev/python/google-auth/latest/reference/google.oauth2.service_account.html
        credentials.refresh(request)
    except google_exceptions.RefreshError as e:
        raise _refresh_error(e, request.last_status) from None
    except google_exceptions.GoogleAuthError as e:
        raise RegistryError(
            f"Could not get a Google access token ({type(e).__name__}).", ErrorCategory.UPSTREAM_ERROR
        ) from None
    if not credentials.token:
        raise RegistryError("The Google token endpoint returned no access token.", ErrorCategory.INVALID_RESPONSE)
    now = datetime.now(UTC)
    # google-auth keeps expiry as naive UTC.
    expiry = credentials.expiry.replace(tzinfo=UTC) if credentials.expiry else now + SHORT_LIFETIME
    expires_at = max(expiry, now + SHORT_LIFETIME)
    return GcrToken(username=REGISTRY_USERNAME, password=credentials.token, expires_at=expires_at)


def _refresh_error(error: Exception, status: int | None) -> RegistryError:
    """Map a failed token exchange to a category; only the OAuth error code is repeated."""
    data = error.args[1] if len(error.args) > 1 else None
    code = data.get("error") if isinstance(data, Mapping) else None
    code = code if isinstance(code, str) and _OAUTH_ERROR_RE.fullmatch(code) else None
    label = code or (f"HTTP {status}" if status else "no response")
    if code in _BAD_KEY_ERRORS or status == 401:
        message, category = "Google rejected the service-account key", ErrorCategory.UNAUTHORIZED
    elif code == "access_denied" or status == 403:
        message, category = "The service account may not get a token", ErrorCategory.FORBIDDEN
    elif status == 429:
        message, category = "The Google token endpoint is rate limiting", ErrorCategory.RATE_LIMITED
    elif status is not None and status < 400:
        message, category = "The Google token endpoint gave no usable token", ErrorCategory.INVALID_RESPONSE
    else:
        message, category = "The Google token endpoint returned an error", ErrorCategory.UPSTREAM_ERROR
    return RegistryError(f"{message} ({label}).", category, status_code=status)


class _Response(GoogleResponse):
    """google.auth.transport.Response over an already-read httpx response."""

    def __init__(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
        self._status, self._headers, self._data = status, headers, data

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._headers

    @property
    def data(self) -> bytes:
        return self._data


class GuardedRequest(GoogleRequest):
    """google-auth transport through the network guard: checked address, no redirects, timeouts."""

    def __init__(self, connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT) -> None:
        self.timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self.last_status: int | None = None

    @sensitive_variables()
    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> _Response:
        # A token endpoint has no reason to redirect, and following one would carry the
        # signed assertion (a bearer credential for an hour) to wherever it points.
        with GuardedSyncClient(timeout=self.timeout, max_redirects=0) as client:
            with client.stream(method, url, content=body, headers=dict(headers or {}), follow_redirects=False) as r:
                try:
                    data = b"".join(_bounded(r.iter_bytes(), MAX_RESPONSE_BYTES))
                except httpx.HTTPError as e:
                    raise as_registry_error(e) from None
        self.last_status = r.status_code
        return _Response(r.status_code, dict(r.headers), data)


def _bounded(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise RegistryError("The token endpoint's answer is too large.", ErrorCategory.INVALID_RESPONSE)
        yield chunk
