"""The connection test: ping, log in, fetch the manifest, HEAD one layer, each step timed and
reported; and a login check without an image for saving credentials."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeVar

import anyio
import httpx
from django.views.decorators.debug import sensitive_variables

from portal.outbound.addresses import GuardPolicy
from portal.outbound.async_client import GuardedClient
from portal.outbound.client_base import DEFAULT_TIMEOUT
from portal.outbound.errors import ErrorCategory, RegistryError
from portal.outbound.resolve import Resolver

from .client import BlobInfo, Manifest, OciClient, RateLimit
from .endpoint import Endpoint, parse_endpoint, parse_image

T = TypeVar("T")

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
