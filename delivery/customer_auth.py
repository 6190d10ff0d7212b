"""Who a customer request comes from, for every customer door: the token service (/v2/token),
the registry proxy, and the downloads to come (install kits, air-gap bundles). A door calls
`authorize(request, scope)` (or, issuing tokens, `token_request`) and maps the Verdict to its
own answer; the limits, the token checks and the license's state are decided here only.

The limits, one rule for every door (fixed windows of RATE_WINDOW seconds in the shared cache):
- One counter per client address, shared by every door. A door that issues tokens (the token
  service) counts each request: each may cost a signature and a password hash. A door that
  is shown the credentials on every request (the proxy with Basic, a download) counts only
  the failed ones, a license ID nobody has: a pull sends its ID with each of its requests.
- One counter per credential (the keyed hash of the password presented), counted where
  tokens are issued: a leaked license ID used from many addresses is still one ID.
- Once a counter holds its limit (RATE_PER_ADDRESS, RATE_PER_CREDENTIAL), every door refuses
  that address or credential before looking further, the right license ID included, until
  the window ends; Retry-After is the window's length, the most anyone then waits. Guesses
  spread over the token service and the proxy spend one budget.
- A Bearer token of ours is never counted or refused for its address: it cannot be guessed,
  and checking it asks the database nothing.
- The shared cache down: no limits (fail open, with a warning); the license is still checked.

On a team's custom domain (delivery/hosts.py) only that team's licenses exist: another team's
license, valid or not, by ID or by token, gets the verdict of a license ID nobody has
(UNKNOWN, counted as a failure like one), so the answer tells nothing about it.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
from enum import StrEnum

import jwt
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from delivery import hosts
from delivery.scopes import Scope
from licenses import services as licenses
from licenses.models import License, Refusal
from portal import ratelimit, registry_tokens
from portal.cache import shared_cache

logger = logging.getLogger(__name__)

RATE_PER_ADDRESS = settings.TOKEN_RATE_PER_ADDRESS
RATE_PER_CREDENTIAL = settings.TOKEN_RATE_PER_CREDENTIAL
RATE_WINDOW = 60


class Denial(StrEnum):
    NO_CREDENTIALS = "no credentials"
    UNKNOWN = "unknown"  # nobody's license ID, or a token not ours, not for this service or scope
    REVOKED = Refusal.LICENSE_REVOKED  # the pull log's words
    EXPIRED = Refusal.LICENSE_EXPIRED
    TOO_MANY_ATTEMPTS = "too many attempts"
    # A valid license's token of ours that does not grant the scope asked for: the door decides
    # whether the license may pull it (then the client fetches a token that says so) or not.
    NOT_IN_TOKEN = "not in token"


@dataclass(frozen=True)
class Verdict:
    denial: Denial | None = None  # None: the license may be used now
    license_uid: str = ""  # the license presented, when it exists (revoked or expired too)
    app_id: int | None = None  # its app
    license: License | None = None  # its row, when the credentials were a license ID
    channel_id: int | None = None  # the channel the license follows (what it may pull)
    message: str = ""  # with TOO_MANY_ATTEMPTS: what the client is told
    retry_after: int = 0  # with TOO_MANY_ATTEMPTS: seconds

    @property
    def allowed(self) -> bool:
        return self.denial is None

    @property
    def refused_license(self) -> bool:
        """A license that exists but may not be used now: its refusals go to its pull log."""
        return self.denial in (Denial.REVOKED, Denial.EXPIRED)


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


def client_address(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


@sensitive_variables("credentials")
def authorize(request, scope: Scope | None = None) -> Verdict:
    """The license behind a request to a door that checks it every time (the proxy, a
    download): a token of ours that grants `scope` (any of ours for the proxy service when
    None), or Basic with the license ID as password."""
    served = hosts.served(request)
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        verdict = _bearer(header[7:].strip(), scope)
        if verdict.app_id is not None and not _serves(served, hosts.app_team(verdict.app_id)):
            return Verdict(Denial.UNKNOWN)
        return verdict
    credentials = basic_credentials(request)
    if credentials is None:
        return Verdict(Denial.NO_CREDENTIALS)
    address = _address_key(request)
    if _spent(address, RATE_PER_ADDRESS):
        return _too_many_from_address()
    license = _license_here(served, credentials[1])
    if license is None:
        _count(address)
        return Verdict(Denial.UNKNOWN)
    return _of_license(license)


@sensitive_variables("credentials")
def token_request(request, credentials: tuple[str, str] | None) -> Verdict:
    """The token service's request, with the credentials it read (Basic or a password grant):
    counted per address and per credential, then the license ID looked up (a license found
    within LICENSE_CACHE_SECONDS is not asked again). UNKNOWN may still be a vendor at the
    private registry; the token service tries that itself."""
    if _count(_address_key(request)) > RATE_PER_ADDRESS:
        return _too_many_from_address()
    if credentials is None:
        return Verdict(Denial.NO_CREDENTIALS)
    password = credentials[1]
    if _count(f"customer-auth:cred:{licenses.license_lookup_hash(password)[:32]}") > RATE_PER_CREDENTIAL:
        return Verdict(
            Denial.TOO_MANY_ATTEMPTS,
            message=f"too many requests with these credentials; try again in {RATE_WINDOW} seconds",
            retry_after=RATE_WINDOW,
        )
    license = _license_here(hosts.served(request), password, recent=True)
    return _of_license(license) if license is not None else Verdict(Denial.UNKNOWN)


@sensitive_variables("license_id")
def _license_here(served: hosts.Served | None, license_id: str, *, recent: bool = False) -> License | None:
    """The license with this ID, if the request's host serves its team. `recent`: as found
    within LICENSE_CACHE_SECONDS (licenses.services.license_find_recent), for the token service."""
    license = licenses.license_find_recent(license_id) if recent else licenses.license_find(license_id)
    return license if license is not None and _serves(served, license.app.team_id) else None


def _serves(served: hosts.Served | None, team_id: int | None) -> bool:
    return served is not None and served.serves_team(team_id)


def _of_license(license: License) -> Verdict:
    """A license row's verdict, its expiry judged now."""
    uid = str(license.uid)
    if license.is_valid:
        return Verdict(license_uid=uid, app_id=license.app_id, license=license, channel_id=license.channel_id)
    return Verdict(Denial(licenses.license_refusal_reason(license)), uid, license.app_id, license)


def _bearer(token: str, scope: Scope | None) -> Verdict:
    try:
        claims = registry_tokens.verify(token, audience=settings.PROXY_SERVICE)
    except jwt.InvalidTokenError:
        return Verdict(Denial.UNKNOWN)
    subject = str(claims.get("sub", ""))
    if not subject.startswith("license:"):
        return Verdict(Denial.UNKNOWN)
    uid = subject.removeprefix("license:")
    granted = scope is None or _grants(claims, scope)
    state = licenses.license_state(uid)  # cached for seconds: revocation reaches every process
    if state is not None:
        denial = None if granted else Denial.NOT_IN_TOKEN
        return Verdict(denial, license_uid=uid, app_id=state.app_id, channel_id=state.channel_id)
    if not granted:
        return Verdict(Denial.UNKNOWN)
    refused = licenses.license_refusal(uid)  # a refusal costs one query, a granted request none
    if refused is None:
        return Verdict(Denial.UNKNOWN)
    return Verdict(Denial(refused[1]), uid, refused[0])


def _grants(claims: dict, scope: Scope) -> bool:
    return any(
        isinstance(a, dict)
        and a.get("type") == scope.type
        and a.get("name") == scope.name
        and all(action in (a.get("actions") or []) for action in scope.actions)
        for a in claims.get("access") or []
    )


# --- the counters ------------------------------------------------------------------------


def _address_key(request) -> str:
    return f"customer-auth:addr:{client_address(request)}"


def _too_many_from_address() -> Verdict:
    return Verdict(
        Denial.TOO_MANY_ATTEMPTS,
        message=f"too many attempts from your address; try again in {RATE_WINDOW} seconds",
        retry_after=RATE_WINDOW,
    )


def _count(key: str) -> int:
    """One more in `key`'s window; 0 when the shared cache is down (fail open)."""
    try:
        return ratelimit.hit(shared_cache(), key, window=RATE_WINDOW)
    except Exception:
        logger.warning("rate limiter unavailable (shared cache down); allowing the request")
        return 0


def _spent(key: str, limit: int) -> bool:
    """Whether `key` already holds `limit` this window (read only: a success costs this look-up
    and nothing more). False when the shared cache is down."""
    try:
        return ratelimit.peek(shared_cache(), key, window=RATE_WINDOW) >= limit
    except Exception:
        logger.warning("rate limiter unavailable (shared cache down); allowing the request")
        return False
