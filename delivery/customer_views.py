"""The customer's downloads under /customer/v1/, authorised with the license itself (Basic:
the license ID as user name and password) through delivery.customer_auth, like the proxy.
Errors answer `{"code", "message"}` as the API does; a refused license gets the Basic
challenge, so curl and browsers know to ask for credentials."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_safe

from delivery import customer_auth, downloads, installkit
from delivery.airgap import download
from delivery.customer_auth import Denial, Verdict
from delivery.models import DownloadKind

CHALLENGE = 'Basic realm="portal", charset="UTF-8"'


def _error(status: int, code: str, message: str, **extra) -> JsonResponse:
    return JsonResponse({"code": code, "message": message, **extra}, status=status)


def _refused(verdict: Verdict) -> JsonResponse:
    if verdict.denial == Denial.TOO_MANY_ATTEMPTS:
        response = _error(429, "throttled", verdict.message)
        response["Retry-After"] = str(verdict.retry_after)
        return response
    license = verdict.license
    if verdict.denial == Denial.REVOKED:
        message = "This license is revoked; ask the vendor to restore it."
    elif verdict.denial == Denial.EXPIRED:
        when = f" on {license.expires_at:%Y-%m-%d}" if license is not None and license.expires_at else ""
        message = f"This license expired{when}; ask the vendor to extend it."
    elif verdict.denial == Denial.UNKNOWN:
        message = "No license has this license ID; check the ID the vendor sent you."
    else:  # no Basic credentials (a token of ours does not name the license ID the Secret needs)
        message = "Authentication required: your license ID as user name and password (curl -u ID:ID)."
    response = _error(401, "not_authenticated", message)
    response["WWW-Authenticate"] = CHALLENGE
    return response


@require_safe
@sensitive_variables("credentials", "license_id")
def install_kit(request):
    """GET /customer/v1/install-kit.tar.gz[?sequence=N][&secret_name=NAME]: the license's
    install kit (see delivery/installkit.py)."""
    verdict = customer_auth.authorize(request)
    credentials = customer_auth.basic_credentials(request)
    if not verdict.allowed or verdict.license is None or credentials is None:
        return _refused_logged(request, verdict, DownloadKind.INSTALL_KIT, None)
    license = verdict.license
    try:
        sequence, secret_name = installkit.kit_options(request.GET)
    except ValidationError as e:
        errors = e.message_dict
        message = "; ".join(f"{field}: {' '.join(texts)}" for field, texts in errors.items())
        return _error(400, "invalid", message, errors=errors)
    license_id = credentials[1]
    kind = DownloadKind.INSTALL_KIT
    try:
        release = installkit.license_release(license, sequence)
        response = installkit.download(request, license, license_id, sequence=release.sequence, secret_name=secret_name)
    except installkit.NoRelease as e:
        downloads.download_record(request, license, kind=kind, status=404, sequence=sequence)
        return _error(404, "not_found", str(e))
    sent = len(response.content) if request.method != "HEAD" else 0
    downloads.download_record(request, license, kind=kind, status=200, release=release, bytes_sent=sent)
    return response


def _refused_logged(request, verdict: Verdict, kind: str, sequence: int | None) -> JsonResponse:
    """The refusal; a license that exists but may not be used now (revoked, expired) gets the
    attempt in its download log."""
    if verdict.allowed:
        verdict = Verdict(Denial.NO_CREDENTIALS)
    response = _refused(verdict)
    if verdict.license is not None:
        downloads.download_record(request, verdict.license, kind=kind, status=response.status_code, sequence=sequence)
    return response


@require_safe
def airgap_bundle(request, sequence: int | None = None):
    """GET|HEAD /customer/v1/airgap/latest.tar or /customer/v1/airgap/<sequence>.tar: the
    air-gap bundle of a release of the license's channel (see delivery/airgap/download.py)."""
    verdict = customer_auth.authorize(request)
    kind = DownloadKind.AIRGAP
    if not verdict.allowed or verdict.license is None:
        return _refused_logged(request, verdict, kind, sequence)
    license = verdict.license
    try:
        return download.bundle_response(request, license, sequence)
    except download.Unavailable as e:
        downloads.download_record(request, license, kind=kind, status=e.status, release=e.release, sequence=sequence)
        response = _error(e.status, e.code, e.message)
        if e.retry_after:
            response["Retry-After"] = str(e.retry_after)
        return response
