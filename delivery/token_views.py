"""GET/POST /v2/token: Docker token auth for the registry proxy (and the private registry).

Reference: https://distribution.github.io/distribution/spec/auth/token/ (GET with Basic)
and https://distribution.github.io/distribution/spec/auth/oauth/ (POST grant_type=password).
"""

from __future__ import annotations

import base64
import binascii
import logging

from django.conf import settings
from django.contrib.auth import authenticate
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_http_methods

from accounts import lockout
from accounts.services import TOKEN_PREFIXES, actor_for_user, memberships_of, token_authenticate
from delivery import scopes as tokens
from delivery.proxy import pull_log
from licenses import services
from portal import ratelimit, registry_tokens
from portal.cache import shared_cache
from portal.ocierrors import oci_error

logger = logging.getLogger(__name__)

# A token request names any number of scopes; the pull log keeps the refusals of the first few.
MAX_LOGGED_REFUSALS = 10
# Requests per window (a minute) before 429: per client address, and per credential tried.
RATE_PER_ADDRESS = settings.TOKEN_RATE_PER_ADDRESS
RATE_PER_CREDENTIAL = settings.TOKEN_RATE_PER_CREDENTIAL
RATE_WINDOW = 60


@sensitive_variables("header", "decoded", "password")
def basic_credentials(request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


def _count(key: str) -> int:
    """One more in `key`'s current window in the shared cache; 0 when the cache is down, so
    limits fail open (the license itself is still checked against the database)."""
    try:
        return ratelimit.hit(shared_cache(), key, window=RATE_WINDOW)
    except Exception:
        logger.warning("rate limiter unavailable (shared cache down); allowing the request")
        return 0


def _over_limit(key: str, limit: int) -> bool:
    return _count(key) > limit


def failures_over_limit(key: str, limit: int) -> bool:
    """Whether `key` has failed `limit` times this window (read only: successes cost nothing
    more than this look-up). Fails open like _over_limit."""
    try:
        return ratelimit.peek(shared_cache(), key, window=RATE_WINDOW) >= limit
    except Exception:
        logger.warning("rate limiter unavailable (shared cache down); allowing the request")
        return False


def count_failure(key: str) -> None:
    _count(key)


def client_address(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


@csrf_exempt
@require_http_methods(["GET", "POST"])
@sensitive_variables("credentials", "password")
def token(request):
    if request.method == "POST":
        params = request.POST
        credentials = basic_credentials(request)
        if credentials is None and params.get("grant_type") == "password":
            credentials = (params.get("username", ""), params.get("password", ""))
    else:
        params = request.GET
        credentials = basic_credentials(request)
    retry = {"Retry-After": str(ratelimit.seconds_left(RATE_WINDOW))}
    if _over_limit(f"token-rate:addr:{client_address(request)}", RATE_PER_ADDRESS):
        return oci_error(429, "TOOMANYREQUESTS", "too many token requests; slow down", headers=retry)
    if credentials is None:
        return oci_error(
            401, "UNAUTHORIZED", "authentication required", headers={"WWW-Authenticate": 'Basic realm="portal"'}
        )
    username, password = credentials
    if _over_limit(f"token-rate:cred:{services.license_lookup_hash(password)[:32]}", RATE_PER_CREDENTIAL):
        return oci_error(429, "TOOMANYREQUESTS", "too many token requests; slow down", headers=retry)
    try:
        scopes = tokens.parse_scopes(params.getlist("scope"))
    except tokens.InvalidScope:
        return oci_error(400, "UNSUPPORTED", "invalid_scope: a scope is type:name:actions", error="invalid_scope")
    service = params.get("service") or settings.PROXY_SERVICE
    if service not in (settings.PROXY_SERVICE, settings.REGISTRY_SERVICE):
        return oci_error(
            400,
            "UNSUPPORTED",
            f"unknown service; this portal serves {settings.PROXY_SERVICE} and {settings.REGISTRY_SERVICE}",
        )
    try:
        license, actors, subject = _identify(request, username, password, vendors=service == settings.REGISTRY_SERVICE)
    except lockout.AccountLocked as e:
        return oci_error(429, "TOOMANYREQUESTS", str(e), headers={"Retry-After": str(e.seconds)})
    if subject is None:
        if license is not None and service == settings.PROXY_SERVICE:
            _log_refused_license(license, scopes)
        return oci_error(
            401,
            "UNAUTHORIZED",
            "invalid, expired or revoked license or token",
            headers={"WWW-Authenticate": 'Basic realm="portal"'},
        )
    if service == settings.PROXY_SERVICE:
        access, refused = tokens.license_access(license, scopes) if license is not None else ([], [])
        for name, reason in refused[:MAX_LOGGED_REFUSALS]:
            pull_log.record_request(str(license.uid), license.app_id, name, "token", "", 403, reason=reason)
    else:
        access = tokens.private_registry_grants(scopes=scopes, license=license, actors=actors)
    jwt_token, expires_in, issued_at = registry_tokens.issue(subject=subject, audience=service, access=access)
    return JsonResponse(
        {"token": jwt_token, "access_token": jwt_token, "expires_in": expires_in, "issued_at": issued_at}
    )


def _log_refused_license(license, scopes: list[tokens.Scope]) -> None:
    """A refused license's token request in its pull log: a row per repository it asked for,
    or one `login` row (docker login asks for no scope). A license ID nobody has is logged
    nowhere: there is no license to show it on."""
    reason = services.license_refusal_reason(license)
    names = list(dict.fromkeys(s.name for s in scopes if s.type == "repository"))[:MAX_LOGGED_REFUSALS]
    for name in names or [""]:
        kind = "token" if name else "login"
        pull_log.record_request(str(license.uid), license.app_id, name, kind, "", 401, reason=reason)


@sensitive_variables("password")
def _identify(request, username: str, password: str, *, vendors: bool):
    """(license, vendor actors, token subject). Subject None when nobody is recognised; the
    license is then the revoked or expired one the ID belongs to, if any.

    Customers log in with their license ID as password. At the private registry vendors
    may also use an API token (any user name) or their email and password; AccountLocked
    when that email's password logins are locked (accounts/lockout.py)."""
    if vendors and password.startswith(tuple(TOKEN_PREFIXES.values())):
        actor = token_authenticate(password)
        if actor is None:
            return None, [], None
        return None, [actor], f"token:{actor.token.pk}"
    license = services.license_find(password)
    if license is not None and license.is_valid:
        return license, [], f"license:{license.uid}"
    refused = license  # a license that exists but may not pull now, for its pull log
    if vendors and "@" in username:
        email = lockout.normalize(username)
        lockout.check(email)
        user = authenticate(request, username=email, password=password)
        if user is not None:
            actors = [a for m in memberships_of(user) if (a := actor_for_user(user, m.team_id))]
            return None, actors, f"user:{user.pk}"
    return refused, [], None


def jwks(request):
    return JsonResponse(registry_tokens.jwks())
