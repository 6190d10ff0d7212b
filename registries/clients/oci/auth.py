"""Registry authentication: WWW-Authenticate challenges, which token realms may receive the
credentials, and fetching a bearer token from a realm.

Reference: https://distribution.github.io/distribution/spec/auth/token/
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx
from django.views.decorators.debug import sensitive_variables

from portal import safejson
from portal.outbound.addresses import GuardPolicy, check_url
from portal.outbound.async_client import GuardedClient
from portal.outbound.errors import ErrorCategory, RegistryError
from portal.outbound.httperrors import where

from .endpoint import Endpoint
from .errors import status_error

# Token realms that may receive credentials besides the registry's own host and the hosts
# the vendor declared. ECR is matched by its registry host form only: a bare
# *.amazonaws.com would include API Gateway and S3 hosts anyone can put a listener behind.
KNOWN_REALM_HOSTS = frozenset({"auth.docker.io", "ghcr.io", "quay.io", "gcr.io"})
_KNOWN_REALM_SUFFIXES = (".gcr.io", ".pkg.dev")
_ECR_HOST = re.compile(r"^[0-9]{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "bearer", "basic", …
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str:
        return self.params.get("service", "")

    @property
    def scope(self) -> str:
        return self.params.get("scope", "")


_TOKEN_CHARS = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_BARE_VALUE = re.compile(r"[^,\s]*")


def parse_www_authenticate(values: str | Iterable[str]) -> list[Challenge]:
    """All challenges in one or more WWW-Authenticate values, params lower-cased.

    Reference: https://www.rfc-editor.org/rfc/rfc9110#section-11.6.1 (challenge syntax),
    https://www.rfc-editor.org/rfc/rfc6750#section-3 (Bearer). Quoted values may contain
    commas and escaped quotes; unquoted values end at a comma or space.
    """
    challenges: list[Challenge] = []
    for header in [values] if isinstance(values, str) else values:
        current: Challenge | None = None
        i, n = 0, len(header)
        while i < n:
            while i < n and header[i] in " \t,":
                i += 1
            match = _TOKEN_CHARS.match(header, i)
            if not match:
                i += 1
                continue
            name, j = match.group(), match.end()
            k = j
            while k < n and header[k] in " \t":
                k += 1
            if current is not None and k < n and header[k] == "=":
                k += 1
                while k < n and header[k] in " \t":
                    k += 1
                quoted = _QUOTED.match(header, k) if k < n and header[k] == '"' else None
                if quoted:
                    value, i = re.sub(r"\\(.)", r"\1", quoted.group(1)), quoted.end()
                elif k < n and header[k] == '"':  # unterminated quote: take the rest
                    value, i = header[k + 1 :], n
                else:
                    bare = _BARE_VALUE.match(header, k)
                    assert bare is not None
                    value, i = bare.group(), bare.end()
                current.params.setdefault(name.lower(), value)
            else:
                current = Challenge(name.lower(), {})
                challenges.append(current)
                i = j
    return challenges


def pick_challenge(challenges: list[Challenge]) -> Challenge | None:
    """The challenge to answer: Bearer before Basic; None when there is neither."""
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    return None


def check_realm(
    realm: str, *, endpoint: Endpoint, allowed_realm_hosts: Iterable[str] = (), policy: GuardPolicy
) -> httpx.URL:
    """The realm URL if credentials may go there, else RegistryError(realm_not_allowed)."""
    try:
        url = httpx.URL(realm)
    except httpx.InvalidURL:
        raise RegistryError("the token realm is not a valid URL", ErrorCategory.INVALID_RESPONSE) from None
    if not url.host or url.userinfo or url.fragment:
        raise RegistryError("the token realm is not an acceptable URL", ErrorCategory.REALM_NOT_ALLOWED)
    host = url.raw_host.decode("ascii").lower().rstrip(".")
    # http only for a plain-http registry where plain http is allowed; never https → http.
    if url.scheme != "https" and not (url.scheme == "http" and endpoint.scheme == "http" and policy.allow_http):
        raise RegistryError(f"the token realm on {host} is not https", ErrorCategory.REALM_NOT_ALLOWED)
    declared = {h.strip().lower().rstrip(".") for h in allowed_realm_hosts if h.strip()}
    if not (
        host == endpoint.host
        or host in KNOWN_REALM_HOSTS
        or host.endswith(_KNOWN_REALM_SUFFIXES)
        or _ECR_HOST.match(host)
        or host in declared
    ):
        raise RegistryError(
            f"the registry sends credentials to token realm {host}; declare that host on the registry to allow it",
            ErrorCategory.REALM_NOT_ALLOWED,
        )
    return check_url(url, policy)


@sensitive_variables("authorization", "headers")
async def fetch_token(
    http: GuardedClient,
    challenge: Challenge,
    scope: str,
    *,
    endpoint: Endpoint,
    authorization: str | None = None,
    allowed_realm_hosts: Iterable[str] = (),
) -> str:
    """A bearer token from the challenge's realm; `authorization` (the Basic credentials) goes
    only to an allowed realm."""
    # Reference: https://distribution.github.io/distribution/spec/auth/token/
    realm = check_realm(
        challenge.realm,
        endpoint=endpoint,
        allowed_realm_hosts=allowed_realm_hosts,
        policy=http.policy,
    )
    params = {k: v for k, v in (("service", challenge.service), ("scope", scope)) if v}
    headers = {"Authorization": authorization} if authorization else {}
    # No redirects from a token service: a hop elsewhere would carry the credentials.
    response = await http.request("GET", realm, params=params, headers=headers, follow_redirects=False)
    if response.status_code in (401, 403):
        raise RegistryError(
            f"the token service on {where(realm)} rejected the credentials",
            "unauthorized",
            status_code=response.status_code,
        )
    if response.is_redirect:
        raise RegistryError(f"the token service on {where(realm)} redirected; not followed", "invalid_response")
    if response.status_code != 200:
        raise status_error(response, what="token")
    try:
        data = safejson.loads(response.content)
        token = data.get("token") or data.get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise RegistryError(f"the token service on {where(realm)} answered without a token", "invalid_response")
    return token
