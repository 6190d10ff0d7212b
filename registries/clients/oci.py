"""OCI Distribution client: ping, token auth, manifest and blob checks.

Plain values in (endpoint, image, username, password), plain dataclasses out, RegistryError
on failure. All traffic goes through netguard. Credentials never appear in results, errors
or logs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, TypeVar

import anyio
import httpx
from django.views.decorators.debug import sensitive_variables

from portal import safejson

from .errors import ErrorCategory, RegistryError
from .netguard import DEFAULT_TIMEOUT, GuardedClient, GuardPolicy, Resolver, check_url

T = TypeVar("T")

# Reference: https://github.com/opencontainers/image-spec/blob/main/media-types.md
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
# Reference: https://distribution.github.io/distribution/spec/manifest-v2-2/
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_MEDIA_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)
INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
ACCEPT_MANIFESTS = ", ".join(MANIFEST_MEDIA_TYPES)

DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})
DOCKER_HUB_API_HOST = "registry-1.docker.io"

# Token realms that may receive credentials besides the registry's own host and the hosts
# the vendor declared. ECR is matched by its registry host form only: a bare
# *.amazonaws.com would include API Gateway and S3 hosts anyone can put a listener behind.
KNOWN_REALM_HOSTS = frozenset({"auth.docker.io", "ghcr.io", "quay.io", "gcr.io"})
_KNOWN_REALM_SUFFIXES = (".gcr.io", ".pkg.dev")
_ECR_HOST = re.compile(r"^[0-9]{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")

# Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
_REPOSITORY = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
# Reference: https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


# --- endpoints and image names ---------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """Where a registry's API lives: `host[:port][/path-prefix]`, https unless written http://."""

    scheme: str
    host: str  # API host, lower case, punycode
    port: int | None = None
    path_prefix: str = ""  # repositories live under it
    docker_hub: bool = False

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port else host

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    def __str__(self) -> str:
        text = self.netloc + (f"/{self.path_prefix}" if self.path_prefix else "")
        return f"http://{text}" if self.scheme == "http" else text


def parse_endpoint(value: str, *, policy: GuardPolicy | None = None) -> Endpoint:
    """Parse what a vendor typed; raise RegistryError(blocked|insecure_not_allowed)."""
    policy = policy if policy is not None else GuardPolicy.from_settings()
    text = value.strip()
    scheme = "https"
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", text)
    if match:
        scheme, text = match.group(1).lower(), text[match.end() :]
    if scheme not in ("http", "https"):
        raise RegistryError("the endpoint must be host[:port][/path] or an http(s):// URL", ErrorCategory.BLOCKED)
    if not text or "\\" in text or any(c.isspace() for c in text):
        raise RegistryError("the endpoint must be host[:port][/path]", ErrorCategory.BLOCKED)
    try:
        url = httpx.URL(f"{scheme}://{text}")
    except httpx.InvalidURL:
        raise RegistryError("the endpoint is not a valid host name", ErrorCategory.BLOCKED) from None
    if url.query:
        raise RegistryError("the endpoint may not have a ?query", ErrorCategory.BLOCKED)
    url = check_url(url, policy)
    host = url.raw_host.decode("ascii").lower().rstrip(".")
    prefix = url.path.strip("/")
    if prefix == "v2":
        prefix = ""
    if prefix and not _REPOSITORY.match(prefix):
        raise RegistryError("the endpoint's path must be a repository prefix like team/images", ErrorCategory.BLOCKED)
    if host in DOCKER_HUB_HOSTS:
        return Endpoint("https", DOCKER_HUB_API_HOST, None, prefix, docker_hub=True)
    return Endpoint(scheme, host, url.port, prefix)


def parse_image(image: str, endpoint: Endpoint) -> tuple[str, str]:
    """`repo[:tag]` or `repo@digest` → (full repository path, tag or digest); ValueError if malformed.

    Adds the endpoint's path prefix and Docker Hub's `library/`; tolerates a leading
    registry host equal to the endpoint's.
    """
    text = image.strip()
    first, slash, rest = text.partition("/")
    if slash and first.lower() in {endpoint.netloc, *(DOCKER_HUB_HOSTS if endpoint.docker_hub else ())}:
        text = rest
    if "@" in text:
        text, reference = text.split("@", 1)
        if ":" in text.rsplit("/", 1)[-1]:
            text = text.rsplit(":", 1)[0]
        if not _DIGEST.match(reference):
            raise ValueError(f"{reference!r} is not a valid digest")
    elif ":" in text.rsplit("/", 1)[-1]:
        text, reference = text.rsplit(":", 1)
        if not _TAG.match(reference):
            raise ValueError(f"{reference!r} is not a valid tag")
    else:
        reference = "latest"
    repository = text.strip("/")
    if not _REPOSITORY.match(repository):
        raise ValueError(f"{repository!r} is not a valid repository name (lower case, a-z0-9._-/)")
    prefix = endpoint.path_prefix
    if prefix and repository != prefix and not repository.startswith(prefix + "/"):
        repository = f"{prefix}/{repository}"
    if endpoint.docker_hub and "/" not in repository:
        repository = f"library/{repository}"
    return repository, reference


# --- WWW-Authenticate ------------------------------------------------------------------


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


def _pick_challenge(challenges: list[Challenge]) -> Challenge | None:
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


# --- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: str | None = None  # "os/arch[/variant]" for index entries


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    size: int
    data: dict[str, Any] = field(repr=False)
    raw: bytes = field(repr=False)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES

    @property
    def children(self) -> list[Descriptor]:
        return [d for d in _descriptors(self.data.get("manifests")) if d.platform != "unknown/unknown"]

    @property
    def layers(self) -> list[Descriptor]:
        return _descriptors(self.data.get("layers"))

    @property
    def platforms(self) -> list[str]:
        return [d.platform for d in self.children if d.platform]


def _descriptors(items: Any) -> list[Descriptor]:
    result = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not _DIGEST.match(str(item.get("digest", ""))):
            continue
        platform = item.get("platform")
        name = None
        if isinstance(platform, dict):
            name = "/".join(str(platform[k]) for k in ("os", "architecture", "variant") if platform.get(k))
        size = item.get("size")
        result.append(
            Descriptor(str(item.get("mediaType", "")), item["digest"], size if isinstance(size, int) else -1, name)
        )
    return result


@dataclass(frozen=True)
class BlobInfo:
    digest: str
    size: int | None
    redirected: bool = False  # served from another host (storage); not followed by a HEAD


@dataclass
class RateLimit:
    """Docker Hub's pull limit headers, e.g. `ratelimit-limit: 100;w=21600`."""

    limit: int | None = None
    remaining: int | None = None
    window_seconds: int | None = None


StepName = Literal["ping", "auth", "manifest", "blob"]
Outcome = Literal["ok", "failed", "skipped"]


@dataclass
class Step:
    name: StepName
    outcome: Outcome = "skipped"
    latency_ms: int | None = None
    detail: str = ""  # e.g. "bearer", "sha256:…", "linux/amd64"
    category: str | None = None


@dataclass
class CheckResult:
    """What a connection test saw; JSON-safe through as_dict()."""

    endpoint: str
    repository: str
    reference: str
    ok: bool = False
    steps: list[Step] = field(default_factory=list)
    auth_scheme: str | None = None  # none | basic | bearer
    digest: str | None = None
    media_type: str | None = None
    platforms: list[str] = field(default_factory=list)
    blob_digest: str | None = None
    rate_limit: RateLimit | None = None
    error_category: str | None = None
    error_message: str | None = None
    retry_after: int | None = None

    @property
    def manifest_fetched(self) -> bool:
        return self.digest is not None

    def step(self, name: StepName) -> Step:
        return next(s for s in self.steps if s.name == name)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- status codes ----------------------------------------------------------------------


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


_KNOWN_ERROR_CODES = frozenset(
    {"NAME_UNKNOWN", "MANIFEST_UNKNOWN", "BLOB_UNKNOWN", "UNAUTHORIZED", "DENIED", "TOOMANYREQUESTS"}
)


def _error_codes(response: httpx.Response) -> set[str]:
    # Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes
    # Only codes from the spec's list are read; no other body text leaves this function.
    try:
        errors = safejson.loads(response.content).get("errors", [])
        return {e["code"] for e in errors if isinstance(e, dict) and e.get("code") in _KNOWN_ERROR_CODES}
    except (ValueError, AttributeError, TypeError, httpx.ResponseNotRead):
        return set()


def _status_error(response: httpx.Response, *, what: str, name: str = "") -> RegistryError:
    status = response.status_code
    host = response.request.url.host
    codes = _error_codes(response)
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


def _rate_limit(headers: httpx.Headers) -> RateLimit | None:
    # Reference: https://docs.docker.com/docker-hub/usage/pulls/
    def number(value: str | None) -> tuple[int | None, int | None]:
        match = re.match(r"^\s*(\d+)(?:\s*;\s*w=(\d+))?", value or "")
        return (int(match.group(1)), int(match.group(2)) if match.group(2) else None) if match else (None, None)

    limit, window = number(headers.get("ratelimit-limit"))
    remaining, window2 = number(headers.get("ratelimit-remaining"))
    if limit is None and remaining is None:
        return None
    return RateLimit(limit, remaining, window or window2)


def _verify_digest(body: bytes, *expected: str | None) -> str:
    """The body's sha256 digest, after checking it against every expected digest given."""
    computed = {"sha256": "sha256:" + hashlib.sha256(body).hexdigest()}
    for digest in filter(None, expected):
        algorithm = digest.split(":", 1)[0]
        if algorithm not in _HASHES:
            raise RegistryError(f"unsupported digest algorithm {algorithm[:20]}", "invalid_response")
        if algorithm not in computed:
            computed[algorithm] = f"{algorithm}:" + _HASHES[algorithm](body).hexdigest()
        if computed[algorithm] != digest:
            raise RegistryError("the manifest does not match its digest", "invalid_response")
    return computed["sha256"]


# --- the client ------------------------------------------------------------------------


class OciClient:
    """One registry endpoint, one set of credentials, one GuardedClient."""

    def __init__(
        self,
        endpoint: Endpoint,
        http: GuardedClient,
        *,
        username: str | None = None,
        password: str | None = None,
        allowed_realm_hosts: Iterable[str] = (),
    ) -> None:
        self.endpoint = endpoint
        self.http = http
        self._username = username or None
        self._password = password or ""
        self._allowed_realm_hosts = tuple(allowed_realm_hosts)
        self._authorization: str | None = None
        self._scopes: set[str] = set()
        self.challenge: Challenge | None = None
        self.rate_limit: RateLimit | None = None

    def __repr__(self) -> str:
        return f"OciClient({self.endpoint!s})"

    def _basic(self) -> str:
        raw = f"{self._username}:{self._password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    async def _get(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        follow_redirects: bool = True,
        authorize: bool = True,
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        if authorize and self._authorization:
            all_headers["Authorization"] = self._authorization
        response = await self.http.request(
            method, f"{self.endpoint.base_url}/v2/{path}", headers=all_headers, follow_redirects=follow_redirects
        )
        self.rate_limit = _rate_limit(response.headers) or self.rate_limit
        return response

    async def _get_authorized(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """_get, re-fetching a token once if the registry asks for a scope we do not hold yet."""
        response = await self._get(method, path, **kwargs)
        if response.status_code == 401 and self.challenge and self.challenge.scheme == "bearer":
            retry = _pick_challenge(parse_www_authenticate(response.headers.get_list("www-authenticate")))
            if retry and retry.scheme == "bearer" and retry.scope and retry.scope not in self._scopes:
                await self._bearer(retry, retry.scope)
                response = await self._get(method, path, **kwargs)
        return response

    async def ping(self) -> Challenge | None:
        """GET /v2/: None when no auth is needed, else the challenge to answer."""
        # Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#determining-support
        response = await self._get("GET", "", authorize=False)
        if response.status_code == 200:
            self.challenge = None
            return None
        if response.status_code == 401:
            challenge = _pick_challenge(parse_www_authenticate(response.headers.get_list("www-authenticate")))
            if challenge is None:
                raise RegistryError(
                    f"{self.endpoint.host} asks for authentication without a Basic or Bearer challenge",
                    "invalid_response",
                )
            self.challenge = challenge
            return challenge
        raise _status_error(response, what="ping")

    async def authenticate(self, repository: str, actions: str = "pull") -> str:
        """Answer the ping's challenge for `repository`; returns "none", "basic" or "bearer"."""
        challenge = self.challenge
        if challenge is None:
            return "none"
        if challenge.scheme == "basic":
            if not self._username:
                raise RegistryError(f"{self.endpoint.host} requires a user name and password", "unauthorized")
            # Reference: https://www.rfc-editor.org/rfc/rfc7617 (Basic), checked on /v2/ once.
            self._authorization = self._basic()
            response = await self._get("GET", "")
            if response.status_code != 200:
                raise _status_error(response, what="ping", name="the registry")
            return "basic"
        await self._bearer(challenge, f"repository:{repository}:{actions}")
        return "bearer"

    async def _bearer(self, challenge: Challenge, scope: str) -> None:
        self._authorization = "Bearer " + await self.fetch_token(challenge, scope)
        self._scopes.add(scope)

    async def fetch_token(self, challenge: Challenge, scope: str) -> str:
        """A bearer token from the challenge's realm; credentials go only to an allowed realm."""
        # Reference: https://distribution.github.io/distribution/spec/auth/token/
        realm = check_realm(
            challenge.realm,
            endpoint=self.endpoint,
            allowed_realm_hosts=self._allowed_realm_hosts,
            policy=self.http.policy,
        )
        params = {k: v for k, v in (("service", challenge.service), ("scope", scope)) if v}
        headers = {"Authorization": self._basic()} if self._username else {}
        # No redirects from a token service: a hop elsewhere would carry the credentials.
        response = await self.http.request("GET", realm, params=params, headers=headers, follow_redirects=False)
        if response.status_code in (401, 403):
            raise RegistryError(
                f"the token service on {realm.host} rejected the credentials",
                "unauthorized",
                status_code=response.status_code,
            )
        if response.is_redirect:
            raise RegistryError(f"the token service on {realm.host} redirected; not followed", "invalid_response")
        if response.status_code != 200:
            raise _status_error(response, what="token")
        try:
            data = safejson.loads(response.content)
            token = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"the token service on {realm.host} answered without a token", "invalid_response")
        return token

    async def get_manifest(self, repository: str, reference: str) -> Manifest:
        """GET a manifest or index with the full Accept list, digest verified."""
        # Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
        name = f"{repository}@{reference}" if ":" in reference else f"{repository}:{reference}"
        response = await self._get_authorized(
            "GET", f"{repository}/manifests/{reference}", headers={"Accept": ACCEPT_MANIFESTS}
        )
        if response.status_code != 200:
            error = _status_error(response, what="manifest", name=name)
            if error.category == ErrorCategory.MANIFEST_UNKNOWN and await self.repository_exists(repository) is False:
                # Distribution answers MANIFEST_UNKNOWN even when the repository is missing.
                raise RegistryError(f"repository {repository} not found", "repository_unknown", status_code=404)
            raise error
        body = response.content
        header_digest = response.headers.get("docker-content-digest")
        if header_digest and not _DIGEST.match(header_digest):
            raise RegistryError("the registry sent a malformed Docker-Content-Digest", "invalid_response")
        digest = _verify_digest(body, header_digest, reference if ":" in reference else None)
        try:
            data = safejson.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise RegistryError(f"the manifest of {name} is not JSON", "invalid_response")
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in MANIFEST_MEDIA_TYPES:
            media_type = str(data.get("mediaType", ""))
        if media_type not in MANIFEST_MEDIA_TYPES:
            raise RegistryError(f"{name} has an unsupported manifest type (schema 1?)", "invalid_response")
        return Manifest(header_digest or digest, media_type, len(body), data, body)

    async def repository_exists(self, repository: str) -> bool | None:
        """True/False from the tag list; None when the registry will not say."""
        # Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-tags
        try:
            response = await self._get_authorized("GET", f"{repository}/tags/list?n=1")
        except RegistryError:
            return None
        if response.status_code == 200:
            return True
        if response.status_code == 404 and "NAME_UNKNOWN" in _error_codes(response):
            return False
        return None

    async def head_blob(self, repository: str, descriptor: Descriptor) -> BlobInfo:
        """HEAD a blob. A redirect to storage counts as present and is not followed."""
        # Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#checking-if-content-exists-in-the-registry
        response = await self._get_authorized("HEAD", f"{repository}/blobs/{descriptor.digest}", follow_redirects=False)
        if response.is_redirect and response.headers.get("location"):
            return BlobInfo(descriptor.digest, descriptor.size if descriptor.size >= 0 else None, redirected=True)
        if response.status_code != 200:
            raise _status_error(response, what="blob", name=descriptor.digest)
        length = response.headers.get("content-length", "")
        size = int(length) if length.isdigit() else None
        if size is not None and descriptor.size >= 0 and size != descriptor.size:
            raise RegistryError(f"blob {descriptor.digest} has the wrong size", "invalid_response")
        header_digest = response.headers.get("docker-content-digest")
        if header_digest and header_digest != descriptor.digest:
            raise RegistryError(f"blob {descriptor.digest} answered with another digest", "invalid_response")
        return BlobInfo(descriptor.digest, size)


# --- the connection test ---------------------------------------------------------------


async def _timed(result: CheckResult, name: StepName, call: Callable[[], Awaitable[T]]) -> T:
    step = result.step(name)
    started = time.monotonic()
    try:
        value = await call()
    except RegistryError as exc:
        step.outcome, step.category = "failed", exc.category.value
        raise
    except TimeoutError:
        step.outcome, step.category = "failed", ErrorCategory.TIMEOUT.value
        raise
    finally:
        step.latency_ms = round((time.monotonic() - started) * 1000)
    step.outcome = "ok"
    return value


@sensitive_variables("password", "client")
async def check_image(
    endpoint: str | Endpoint,
    image: str,
    *,
    username: str | None = None,
    password: str | None = None,
    allowed_realm_hosts: Iterable[str] = (),
    policy: GuardPolicy | None = None,
    resolver: Resolver | None = None,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    total_timeout: float = 10.0,
) -> CheckResult:
    """Ping, authenticate, fetch the manifest (verify its digest), HEAD one layer.

    Never raises RegistryError: failures come back as `error_category`/`error_message`
    on the result. Raises ValueError for a malformed image name.
    """
    policy = policy if policy is not None else GuardPolicy.from_settings()
    try:
        ep = endpoint if isinstance(endpoint, Endpoint) else parse_endpoint(endpoint, policy=policy)
    except RegistryError as exc:
        result = CheckResult(str(endpoint), "", "", steps=[Step("ping", "failed", 0, category=exc.category.value)])
        result.steps += [Step(n) for n in ("auth", "manifest", "blob")]
        result.error_category, result.error_message = exc.category.value, exc.message
        return result
    repository, reference = parse_image(image, ep)
    result = CheckResult(str(ep), repository, reference, steps=[Step(n) for n in ("ping", "auth", "manifest", "blob")])
    async with GuardedClient(policy=policy, resolver=resolver, timeout=timeout) as http:
        client = OciClient(ep, http, username=username, password=password, allowed_realm_hosts=allowed_realm_hosts)
        try:
            with anyio.fail_after(total_timeout):
                await _run_check(client, result)
            result.ok = True
        except RegistryError as exc:
            result.error_category, result.error_message = exc.category.value, exc.message
            result.retry_after = exc.retry_after
        except TimeoutError:
            for step in result.steps:  # the step the deadline cancelled has a latency but no outcome
                if step.outcome == "skipped" and step.latency_ms is not None:
                    step.outcome, step.category = "failed", ErrorCategory.TIMEOUT.value
            result.error_category = ErrorCategory.TIMEOUT.value
            result.error_message = f"the test did not finish within {total_timeout:g} s"
        result.rate_limit = client.rate_limit
    return result


async def _run_check(client: OciClient, result: CheckResult) -> None:
    await _timed(result, "ping", client.ping)
    result.auth_scheme = await _timed(result, "auth", lambda: client.authenticate(result.repository))
    result.step("auth").detail = result.auth_scheme

    async def manifest_and_layer() -> Manifest:
        manifest = await client.get_manifest(result.repository, result.reference)
        result.digest, result.media_type, result.platforms = manifest.digest, manifest.media_type, manifest.platforms
        return manifest

    manifest = await _timed(result, "manifest", manifest_and_layer)
    result.step("manifest").detail = manifest.digest

    async def one_blob() -> BlobInfo:
        image = manifest
        if manifest.is_index:
            if not manifest.children:
                raise RegistryError("the index lists no images", "invalid_response")
            child = manifest.children[0]
            result.step("blob").detail = child.platform or ""
            image = await client.get_manifest(result.repository, child.digest)
        if not image.layers:
            raise RegistryError("the image has no layers", "invalid_response")
        blob = await client.head_blob(result.repository, image.layers[0])
        result.blob_digest = blob.digest
        return blob

    await _timed(result, "blob", one_blob)


def check_image_sync(endpoint: str | Endpoint, image: str, **kwargs: Any) -> CheckResult:
    """check_image for sync callers (Celery tasks); not for use inside a running event loop."""
    return asyncio.run(check_image(endpoint, image, **kwargs))


@sensitive_variables("password", "client")
async def verify_credentials(
    endpoint: str | Endpoint,
    *,
    username: str | None = None,
    password: str | None = None,
    allowed_realm_hosts: Iterable[str] = (),
    policy: GuardPolicy | None = None,
    resolver: Resolver | None = None,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
) -> str:
    """Ping and log in without naming an image; returns "none", "basic" or "bearer".

    Raises RegistryError when the registry is unreachable or refuses the credentials.
    """
    policy = policy if policy is not None else GuardPolicy.from_settings()
    ep = endpoint if isinstance(endpoint, Endpoint) else parse_endpoint(endpoint, policy=policy)
    async with GuardedClient(policy=policy, resolver=resolver, timeout=timeout) as http:
        client = OciClient(ep, http, username=username, password=password, allowed_realm_hosts=allowed_realm_hosts)
        challenge = await client.ping()
        if challenge is None:
            return "none"
        if challenge.scheme == "basic":
            return await client.authenticate("")
        # A token request without a scope still checks the credentials.
        # Reference: https://distribution.github.io/distribution/spec/auth/token/#requesting-a-token
        await client.fetch_token(challenge, "")
        return "bearer"


def verify_credentials_sync(endpoint: str | Endpoint, **kwargs: Any) -> str:
    return asyncio.run(verify_credentials(endpoint, **kwargs))
