"""GET/POST /v2/token: Docker token auth for the registry proxy (and the private registry).

Reference: https://distribution.github.io/distribution/spec/auth/token/ (GET with Basic)
and https://distribution.github.io/distribution/spec/auth/oauth/ (POST grant_type=password).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_http_methods

from accounts import lockout
from accounts.services import TOKEN_PREFIXES, TokenExpired, actor_for_user, memberships_of, token_authenticate
from delivery import customer_auth, hosts
from delivery import scopes as tokens
from delivery.customer_auth import Denial, Verdict
from delivery.proxy import pull_log
from portal import metrics, registry_tokens
from portal.db import off_loop
from portal.ocierrors import oci_error

# A token request names any number of scopes; the pull log keeps the refusals of the first few.
MAX_LOGGED_REFUSALS = 10
# The limits per address and per credential are delivery/customer_auth.py's, as at every door.


@csrf_exempt
@require_http_methods(["GET", "POST"])
async def token(request):
    """The token service; every answer counts in portal_tokens_total by service and result.
    Its cache counters, database look-ups and signature are one trip off the event loop."""
    response, service, result = await off_loop(request, _serve, request)
    metrics.TOKENS.labels(service, result).inc()
    return response


def _serve(request) -> tuple[JsonResponse, str, str]:
    response, result = _answer(request)
    return response, _service_label(request), result


def _service_label(request) -> str:
    """The service asked for (or the host's default) if it is one of ours, else "other"."""
    params = request.POST if request.method == "POST" else request.GET
    served = hosts.served(request)
    service = params.get("service") or (served.services[0] if served is not None and served.services else "")
    return service if service in (settings.PROXY_SERVICE, settings.REGISTRY_SERVICE) else "other"


@sensitive_variables("credentials", "password")
def _answer(request) -> tuple[JsonResponse, str]:
    """The answer and its result word: issued, rate_limited, locked, unauthenticated (no
    credentials), refused (unknown, revoked or expired license or token), invalid (the scope
    or the service)."""
    if request.method == "POST":
        params = request.POST
        credentials = customer_auth.basic_credentials(request)
        if credentials is None and params.get("grant_type") == "password":
            credentials = (params.get("username", ""), params.get("password", ""))
    else:
        params = request.GET
        credentials = customer_auth.basic_credentials(request)
    verdict = customer_auth.token_request(request, credentials)
    if verdict.denial == Denial.TOO_MANY_ATTEMPTS:
        return oci_error(
            429, "TOOMANYREQUESTS", verdict.message, headers={"Retry-After": str(verdict.retry_after)}
        ), "rate_limited"
    if verdict.denial == Denial.NO_CREDENTIALS or credentials is None:
        return oci_error(
            401, "UNAUTHORIZED", "authentication required", headers={"WWW-Authenticate": 'Basic realm="portal"'}
        ), "unauthenticated"
    username, password = credentials
    try:
        scopes = tokens.parse_scopes(params.getlist("scope"))
    except tokens.InvalidScope:
        return oci_error(
            400, "UNSUPPORTED", "invalid_scope: a scope is type:name:actions", error="invalid_scope"
        ), "invalid"
    served = hosts.served(request)
    services = served.services if served is not None else ()
    service = params.get("service") or (services[0] if services else "")
    if service not in services:
        return oci_error(400, "UNSUPPORTED", f"unknown service; this host serves {' and '.join(services)}"), "invalid"
    try:
        license, actors, subject = _identify(
            request, verdict, username, password, vendors=service == settings.REGISTRY_SERVICE, served=served
        )
    except lockout.AccountLocked as e:
        return oci_error(429, "TOOMANYREQUESTS", str(e), headers={"Retry-After": str(e.seconds)}), "locked"
    except TokenExpired as e:
        return oci_error(401, "UNAUTHORIZED", str(e), headers={"WWW-Authenticate": 'Basic realm="portal"'}), "refused"
    if subject is None:
        if license is not None and service == settings.PROXY_SERVICE:
            _log_refused_license(verdict, scopes)
        return oci_error(
            401,
            "UNAUTHORIZED",
            "invalid, expired or revoked license or token",
            headers={"WWW-Authenticate": 'Basic realm="portal"'},
        ), "refused"
    if service == settings.PROXY_SERVICE:
        access, refused = tokens.license_access(license, scopes) if license is not None else ([], [])
        for name, reason in refused[:MAX_LOGGED_REFUSALS]:
            pull_log.record_request(str(license.uid), license.app_id, name, "token", "", 403, reason=reason)
    else:
        access = tokens.private_registry_grants(scopes=scopes, license=license, actors=actors)
    jwt_token, expires_in, issued_at = registry_tokens.issue(subject=subject, audience=service, access=access)
    return JsonResponse(
        {"token": jwt_token, "access_token": jwt_token, "expires_in": expires_in, "issued_at": issued_at}
    ), "issued"


def _log_refused_license(verdict: Verdict, scopes: list[tokens.Scope]) -> None:
    """A refused license's token request in its pull log: a row per repository it asked for,
    or one `login` row (docker login asks for no scope). A license ID nobody has is logged
    nowhere: there is no license to show it on."""
    names = list(dict.fromkeys(s.name for s in scopes if s.type == "repository"))[:MAX_LOGGED_REFUSALS]
    for name in names or [""]:
        kind = "token" if name else "login"
        reason = verdict.denial.value
        pull_log.record_request(verdict.license_uid, verdict.app_id, name, kind, "", 401, reason=reason)


@sensitive_variables("password")
def _identify(request, verdict: Verdict, username: str, password: str, *, vendors: bool, served: hosts.Served | None):
    """(license, vendor actors, token subject). Subject None when nobody is recognised; the
    license is then the revoked or expired one the ID belongs to, if any.

    Customers log in with their license ID as password (customer_auth.token_request has
    looked it up). At the private registry vendors may also use an API token (any user name)
    or their email and password; TokenExpired for an expired API token; AccountLocked when that email's password logins are
    locked (accounts/lockout.py). On a team's registry domain only that team's members count."""
    if vendors and password.startswith(tuple(TOKEN_PREFIXES.values())):
        actor = token_authenticate(password)
        if actor is None or served is None or not served.serves_team(actor.team.pk):
            return None, [], None
        return None, [actor], f"token:{actor.token.pk}"
    if verdict.allowed:
        return verdict.license, [], f"license:{verdict.license_uid}"
    refused = verdict.license  # a license that exists but may not pull now, for its pull log
    if vendors and "@" in username:
        email = lockout.normalize(username)
        lockout.check(email)
        user = authenticate(request, username=email, password=password)
        if user is not None:
            actors = [a for m in memberships_of(user) if (a := actor_for_user(user, m.team_id))]
            if served is None or served.team_id is None:
                return None, actors, f"user:{user.pk}"
            actors = [a for a in actors if a.team.pk == served.team_id]
            if actors:
                return None, actors, f"user:{user.pk}"
    return refused, [], None


def jwks(request):
    return JsonResponse(registry_tokens.jwks())
