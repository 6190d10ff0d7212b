"""The gate of every proxy request: the license (a token or Basic), the app and repository
rules, before any upstream contact; refusals of a known license go to its pull log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpResponse, JsonResponse

from delivery import customer_auth, routing
from delivery.customer_auth import Denial
from delivery.proxy import answers, pull_log
from delivery.routing import Upstream
from delivery.scopes import Scope
from licenses.models import Refusal
from portal.db import off_loop
from portal.ocierrors import oci_error


def _raw_path(request) -> str:
    scope = getattr(request, "scope", None) or {}
    raw = scope.get("raw_path") or request.META.get("RAW_URI", "").encode()
    return raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)


async def resolve(request, name: str, kind: str, reference: str, lookup: Callable[[Upstream], Any] | None = None):
    """(caller, app, upstream, looked up) or an error response; checks run before any upstream
    contact. `kind` and `reference` name the request in the pull log when it is refused;
    `lookup(upstream)` (the cache's answer) runs in the same thread trip once it is allowed."""
    if "%" in _raw_path(request).split("?")[0]:
        return oci_error(400, "NAME_INVALID", "encoded characters are not allowed in repository names")
    try:
        proxy = routing.parse_proxy_name(name)
    except routing.NameInvalid:
        return oci_error(400, "NAME_INVALID", "invalid repository name")
    except routing.NameUnknown:
        return oci_error(404, "NAME_UNKNOWN", "repository name not known to the proxy")
    # One trip to a worker thread for every database and cache look-up of the request
    # (off_loop hands its connections back: a blob may stream for minutes and needs none).
    return await off_loop(request, _authorize, request, name, proxy, kind, reference, lookup)


def _authorize(request, name: str, proxy: routing.ProxyName, kind: str, reference: str, lookup):
    resolved = authorize_in_db(request, name, proxy, kind, reference)
    if isinstance(resolved, HttpResponse):
        return resolved
    return *resolved, (lookup(resolved[2]) if lookup is not None else None)


def authorize_in_db(request, name: str, proxy: routing.ProxyName, kind: str, reference: str):
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
        return answers.refusal(request, caller, name)

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
        return answers.challenge(request, name)
    return caller, routes.app, upstream
