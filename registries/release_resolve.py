"""Resolving a release's images: each entry of its `images:` list is looked up where it lives
(tag → digest, manifest type, platforms, compressed size) and judged public or private, once,
when the release is created. What fails becomes an error finding on the image; the release
ends `ready` (no errors) or `failed`.

The database is read and written on the calling thread only; the registry calls run on a few
threads of their own (one event loop and one guarded client per image), each under a deadline.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from accounts.access import Actor
from accounts.services import audit
from licenses import signals
from licenses.models import (
    FindingLevel,
    ImageSource,
    Release,
    ReleaseFinding,
    ReleaseImage,
    ReleaseStatus,
    Visibility,
)
from licenses.release_spec import read_settings
from portal import crypto, ocispec
from portal.outbound.addresses import GuardPolicy, parse_ip_literal
from portal.outbound.errors import ErrorCategory, RegistryError
from registries import services
from registries.clients import oci
from registries.clients.distribution import AsyncPrivateRegistry, PrivateRegistry
from registries.models import ExternalRegistry

logger = logging.getLogger(__name__)

# The findings resolving writes (all errors, each about one image). A new run deletes these
# and only these: the lint's findings, written at upload, stay.
IMAGE_NOT_FOUND = "image-not-found"
CREDENTIALS_REJECTED = "credentials-rejected"
UPSTREAM_UNREACHABLE = "upstream-unreachable"
DIGEST_MISMATCH = "digest-mismatch"
INVALID_MANIFEST = "invalid-manifest"
RESOLVE_RULES = (IMAGE_NOT_FOUND, CREDENTIALS_REJECTED, UPSTREAM_UNREACHABLE, DIGEST_MISMATCH, INVALID_MANIFEST)

# Images looked up at once, and how long one may take (anonymous try, login, manifests and
# config together). 200 images against a slow upstream: at most 200 / 4 × 30 s = 25 min.
CONCURRENCY = 4
IMAGE_TIMEOUT = 30.0
# The task's retries when every failure may pass (unreachable, timed out, 5xx, rate limited).
RETRIES = 3
# A release still `resolving` this long after its upload is enqueued again by the beat sweep
# (the queue was down, or a worker died); after GIVE_UP_AFTER it is marked failed instead.
STUCK_AFTER = timedelta(minutes=10)
GIVE_UP_AFTER = timedelta(days=1)
# One run per release at a time: a sweep's duplicate finds the lock taken and returns.
LOCK_SECONDS = 30 * 60
ACTOR = "release resolver"

_RULES = {
    ErrorCategory.MANIFEST_UNKNOWN: IMAGE_NOT_FOUND,
    ErrorCategory.REPOSITORY_UNKNOWN: IMAGE_NOT_FOUND,
    ErrorCategory.BLOB_UNKNOWN: IMAGE_NOT_FOUND,
    ErrorCategory.UNAUTHORIZED: CREDENTIALS_REJECTED,
    ErrorCategory.FORBIDDEN: CREDENTIALS_REJECTED,
    ErrorCategory.REALM_NOT_ALLOWED: CREDENTIALS_REJECTED,
    ErrorCategory.INVALID_RESPONSE: INVALID_MANIFEST,
}
TRANSIENT = frozenset(
    {
        ErrorCategory.DNS,
        ErrorCategory.CONNECT,
        ErrorCategory.TIMEOUT,
        ErrorCategory.RATE_LIMITED,
        ErrorCategory.UPSTREAM_ERROR,
        ErrorCategory.BUSY,
    }
)


@dataclass(frozen=True)
class Problem:
    """A failure known before or after asking the registry, as a finding will say it."""

    rule: str
    message: str
    transient: bool = False
    retry_after: int | None = None


@dataclass(frozen=True)
class Target:
    """One image to look up, prepared on the calling thread (rows, credentials)."""

    image_id: int
    label: str  # the reference as listed, for messages
    source: str
    repository: str = ""
    reference: str = ""
    endpoint: oci.Endpoint | None = None  # None: the private registry at private_url
    private_url: str = ""
    username: str = ""
    password: str = ""
    realm_hosts: tuple[str, ...] = ()
    registry_id: int | None = None
    problem: Problem | None = None  # known without asking (no such registry, unreadable secret)

    def __repr__(self) -> str:
        return f"Target({self.label!r}, {self.source!r})"


@dataclass(frozen=True)
class Outcome:
    target: Target
    facts: oci.ImageFacts | None = None
    error: RegistryError | None = None


@dataclass(frozen=True)
class ResolveResult:
    status: str
    images: int
    errors: int
    retry_after: int | None = None  # set when the release stays `resolving` for another try


# --- enqueueing ----------------------------------------------------------------------------


def release_resolve_request(release_id: int) -> bool:
    """Queue resolving a release; False when the queue is down (the release stays `resolving`
    and the beat sweep queues it again)."""
    from portal.queue import QueueUnavailable, enqueue
    from registries.tasks import release_resolve_task

    try:
        enqueue(release_resolve_task, release_id)
    except QueueUnavailable:
        logger.warning("release %s: resolving not queued (queue unavailable); the sweep retries", release_id)
        return False
    return True


def on_release_created(sender, release: Release, **kwargs) -> None:
    """licenses.signals.release_created: resolve the new release's images (a release without
    images is ready from the start)."""
    if release.status == ReleaseStatus.RESOLVING:
        release_resolve_request(release.pk)


def releases_stuck() -> list[int]:
    """Releases still `resolving` STUCK_AFTER their upload; those past GIVE_UP_AFTER are marked
    failed here instead of being returned."""
    now = timezone.now()
    stuck = Release.objects.filter(status=ReleaseStatus.RESOLVING, created_at__lt=now - STUCK_AFTER)
    for release in stuck.filter(created_at__lt=now - GIVE_UP_AFTER).select_related("app__team"):
        with transaction.atomic():
            updated = Release.objects.filter(pk=release.pk, status=ReleaseStatus.RESOLVING).update(
                status=ReleaseStatus.FAILED, resolved_at=now
            )
            if updated:
                ReleaseFinding.objects.create(
                    release=release, level=FindingLevel.ERROR, rule=UPSTREAM_UNREACHABLE,
                    message="Resolving the images did not finish within a day; upload the release again.",
                )  # fmt: skip
                _audit(release, ReleaseStatus.FAILED, images=release.images.count(), errors=1)
    return list(stuck.filter(created_at__gte=now - GIVE_UP_AFTER).values_list("pk", flat=True))


# --- resolving -----------------------------------------------------------------------------


def release_resolve(release_id: int, *, final: bool = True) -> ResolveResult | None:
    """Resolve every image of the release and set its status; None when another run holds it.

    Idempotent: earlier resolve findings and results are cleared first. With `final` False and
    only failures that may pass, the release stays `resolving` and `retry_after` says when to
    try again.
    """
    release = Release.objects.select_related("app__team").get(pk=release_id)
    lock = f"release-resolve:{release.pk}:{int(release.created_at.timestamp())}"
    try:
        if not cache.add(lock, 1, timeout=LOCK_SECONDS):
            logger.info("release %s is being resolved by another run", release.pk)
            return None
    except Exception:
        logger.warning("cache unavailable; resolving release %s without the run lock", release.pk)
        lock = ""
    try:
        return _resolve(release, final=final)
    finally:
        if lock:
            try:
                cache.delete(lock)
            except Exception:
                logger.warning("cache unavailable; the lock of release %s expires by itself", release.pk)


def _resolve(release: Release, *, final: bool) -> ResolveResult:
    images = list(release.images.order_by("position"))
    with transaction.atomic():
        ReleaseFinding.objects.filter(release=release, rule__in=RESOLVE_RULES).delete()
        release.images.update(resolved_digest="", media_type="", platforms=[], size=None, visibility="")
    where = _where_listed(release, images)
    targets = _targets(release, images)
    problems: list[Problem] = []
    retried: set[int] = set()  # registries whose minted token was refreshed in this run
    with ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix=f"resolve-{release.pk}") as pool:
        pending: set[Future[Outcome]] = set()
        for target in targets:
            if target.problem is not None:
                _record(release, target, None, target.problem, where)
                problems.append(target.problem)
            else:
                pending.add(pool.submit(_look_up, target))
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                outcome = future.result()
                again = _with_fresh_token(outcome, retried)
                if again is not None:
                    pending.add(pool.submit(_look_up, again))
                    continue
                problem = _problem(outcome)
                problem = _record(release, outcome.target, outcome.facts, problem, where)
                if problem is not None:
                    problems.append(problem)
    retry = not final and bool(problems) and all(p.transient for p in problems)
    if not problems:
        status = ReleaseStatus.READY
    elif retry:
        status = ReleaseStatus.RESOLVING
    else:
        status = ReleaseStatus.FAILED
    finished = None if status == ReleaseStatus.RESOLVING else timezone.now()
    Release.objects.filter(pk=release.pk).update(status=status, resolved_at=finished)
    _audit(release, status, images=len(images), errors=len(problems))
    if status != ReleaseStatus.RESOLVING:
        release.refresh_from_db()
        signals.release_resolved.send(sender=Release, release=release)
    retry_after = max((p.retry_after or 0 for p in problems), default=0) if retry else None
    return ResolveResult(status, len(images), len(problems), retry_after)


def _audit(release: Release, status: str, *, images: int, errors: int) -> None:
    actor = Actor.for_system(release.app.team, ACTOR)
    audit(
        actor=actor, action="release.resolve", target=f"{release.app.slug}#{release.sequence}",
        status=status, images=images, errors=errors,
    )  # fmt: skip


def _where_listed(release: Release, images: list[ReleaseImage]) -> dict[int, tuple[str, int | None]]:
    """Image id → (file, line) of its entry in the settings, for the findings."""
    files = dict(release.files.values_list("path", "content"))
    specs, _ = read_settings(files, {image.source for image in images})
    if len(specs.images) != len(images):
        return {}
    return {image.pk: (spec.file, spec.line) for image, spec in zip(images, specs.images, strict=True)}


# --- what to ask where -----------------------------------------------------------------------


def _targets(release: Release, images: list[ReleaseImage]) -> list[Target]:
    registries = {r.name: r for r in release.app.team.registries.all()}
    logins: dict[str, tuple[services.Credentials | None, Problem | None]] = {}
    policy = GuardPolicy.from_settings()
    targets = []
    for image in images:
        label = _listed(image)
        if image.source == ImageSource.PRIVATE:
            reference = image.tag or image.digest
            targets.append(
                Target(image.pk, label, image.source, image.repository, reference, private_url=settings.REGISTRY_URL)
            )
            continue
        registry = registries.get(image.source) if image.source != ImageSource.PUBLIC else None
        if image.source != ImageSource.PUBLIC and registry is None:
            problem = Problem(
                UPSTREAM_UNREACHABLE,
                f"{label}: this team has no registry named “{image.source}” any more (deleted or renamed "
                "since the upload); connect it and upload the release again.",
            )
            targets.append(Target(image.pk, label, image.source, problem=problem))
            continue
        try:
            if registry is None:
                endpoint = oci.parse_endpoint(_public_address(image.host, policy), policy=policy)
                name = image.repository
            else:
                endpoint = oci.parse_endpoint(registry.endpoint, policy=policy)
                name = image.name
            repository, reference = oci.parse_image(
                f"{name}:{image.tag}" if image.tag else f"{name}@{image.digest}", endpoint
            )
        except (RegistryError, ValueError) as e:
            message = e.message if isinstance(e, RegistryError) else str(e)
            problem = Problem(UPSTREAM_UNREACHABLE, f"{label}: the portal may not reach it: {message}.")
            targets.append(Target(image.pk, label, image.source, problem=problem))
            continue
        target = Target(image.pk, label, image.source, repository, reference, endpoint)
        if registry is not None:
            if registry.name not in logins:
                logins[registry.name] = _login(registry)
            credentials, problem = logins[registry.name]
            if problem is not None:
                target = replace(target, problem=replace(problem, message=f"{label}: {problem.message}"))
            else:
                assert credentials is not None
                target = _with_login(target, registry, credentials)
        targets.append(target)
    return targets


def _listed(image: ReleaseImage) -> str:
    reference = image.name + (f":{image.tag}" if image.tag else "") + (f"@{image.digest}" if image.digest else "")
    return reference if image.source == ImageSource.PUBLIC else f"{image.source}/{reference}"


def _public_address(host: str, policy: GuardPolicy) -> str:
    """Where a public image's registry answers: https, except a loopback host over plain http
    where the settings allow plain http (Docker's own default: 127.0.0.0/8 is insecure)."""
    bare = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    ip = parse_ip_literal(bare)
    loopback = bare == "localhost" or (ip is not None and ip.is_loopback)
    if loopback and policy.allow_http:
        return f"http://{host}"
    return host if host != ocispec.DOCKER_HUB else ocispec.DOCKER_HUB_API_HOST


@sensitive_variables("credentials")
def _login(registry: ExternalRegistry) -> tuple[services.Credentials | None, Problem | None]:
    try:
        return services.registry_credentials(registry), None
    except crypto.DecryptionError:
        return None, Problem(
            CREDENTIALS_REJECTED,
            f"the stored credentials of registry “{registry.name}” cannot be read (the encryption key "
            "changed?); enter them again on the registry's page, then upload the release again.",
        )
    except RegistryError as e:
        problem = _problem_of(e, f"registry “{registry.name}” could not mint a login token: {e.message}")
        return None, problem


@sensitive_variables("credentials")
def _with_login(target: Target, registry: ExternalRegistry, credentials: services.Credentials) -> Target:
    return replace(
        target,
        username=credentials.username,
        password=credentials.password,
        realm_hosts=(registry.realm_host,) if registry.realm_host else (),
        registry_id=registry.pk,
    )


def _with_fresh_token(outcome: Outcome, retried: set[int]) -> Target | None:
    """A minted ECR/GCR token the registry refused is minted again, once per registry and run
    (as the connection test does); the target to look up again with it, or None."""
    target, error = outcome.target, outcome.error
    if error is None or error.category not in (ErrorCategory.UNAUTHORIZED, ErrorCategory.FORBIDDEN):
        return None
    if target.registry_id is None or target.registry_id in retried:
        return None
    registry = ExternalRegistry.objects.filter(pk=target.registry_id).first()
    if registry is None or not registry.mints_tokens:
        return None
    retried.add(registry.pk)
    services.registry_token_invalidate(registry)
    try:
        return _with_login(target, registry, services.registry_credentials(registry, fresh=True))
    except (crypto.DecryptionError, RegistryError):
        return None


# --- on the worker threads (no database here) -----------------------------------------------


def _look_up(target: Target) -> Outcome:
    """One image, on a loop of its own. A hostile upstream ends as an error, never a crash."""
    try:
        if target.endpoint is None:
            facts = asyncio.run(_private_facts(target))
        else:
            facts = asyncio.run(
                oci.fetch_image_facts(
                    target.endpoint,
                    target.repository,
                    target.reference,
                    username=target.username or None,
                    password=target.password or None,
                    allowed_realm_hosts=target.realm_hosts,
                    total_timeout=IMAGE_TIMEOUT,
                )
            )
        return Outcome(target, facts=facts)
    except RegistryError as e:
        return Outcome(target, error=e)
    except Exception:
        logger.exception("resolving %r failed unexpectedly", target)
        return Outcome(target, error=RegistryError("the answer could not be read", ErrorCategory.INVALID_RESPONSE))


async def _private_facts(target: Target) -> oci.ImageFacts:
    # The private registry's client blocks; its own timeouts (3 s to connect, 10 s to read)
    # bound each of the few calls one image takes.
    with PrivateRegistry(target.private_url) as registry:
        facts = await oci.describe_image(AsyncPrivateRegistry(registry), target.repository, target.reference)
    # Nobody pulls from the portal's registry without a license or a login: always private.
    return replace(facts, public=False)


# --- findings ---------------------------------------------------------------------------------


def _problem(outcome: Outcome) -> Problem | None:
    error = outcome.error
    if error is None:
        return None
    target = outcome.target
    return _problem_of(error, _explain(target, error))


def _problem_of(error: RegistryError, message: str) -> Problem:
    return Problem(
        _RULES.get(error.category, UPSTREAM_UNREACHABLE),
        message,
        transient=error.category in TRANSIENT,
        retry_after=error.retry_after,
    )


def _explain(target: Target, error: RegistryError) -> str:
    """The finding's message: what happened, then what to do about it."""
    label, rule = target.label, _RULES.get(error.category, UPSTREAM_UNREACHABLE)
    where = "the portal's private registry" if target.endpoint is None else str(target.endpoint)
    if rule == IMAGE_NOT_FOUND:
        return f"{label} is not in {where} ({error.message}): push it, or correct the name and tag, then upload the release again."
    if rule == CREDENTIALS_REJECTED:
        if target.endpoint is None:
            return f"{label}: {error.message}."
        if target.source == ImageSource.PUBLIC:
            return (
                f"{label} cannot be pulled anonymously from {where} ({error.message}): it does not exist or is private; "
                "a private image is listed under the registry that holds its credentials, not `public`."
            )
        return (
            f"{label}: {where} refused registry “{target.source}”'s credentials ({error.message}): update them "
            "on the registry's page (its Test checks them), then upload the release again."
        )
    if rule == INVALID_MANIFEST:
        return f"{label}: {where} did not answer with a usable image manifest ({error.message})."
    retry = " The portal tries again a few times." if error.category in TRANSIENT else ""
    return f"{label}: {where} could not be reached ({error.category.value}: {error.message}).{retry}"


def _record(
    release: Release,
    target: Target,
    facts: oci.ImageFacts | None,
    problem: Problem | None,
    where: dict[int, tuple[str, int | None]],
) -> Problem | None:
    """Store one image's result (so the page shows progress) and its finding, if any."""
    image = ReleaseImage.objects.get(pk=target.image_id)
    if facts is not None:
        ReleaseImage.objects.filter(pk=image.pk).update(
            resolved_digest=facts.digest,
            media_type=facts.media_type[:100],
            platforms=facts.platforms,
            size=facts.size,
            visibility=Visibility.PUBLIC if facts.public else Visibility.PRIVATE,
        )
        if image.digest and image.tag and facts.digest != image.digest:
            problem = Problem(
                DIGEST_MISMATCH,
                f"{target.label}: tag {image.tag} points to {facts.digest}, not the listed {image.digest}; "
                "list the digest you mean (or the tag alone) and upload the release again.",
            )
    if problem is not None:
        file, line = where.get(image.pk, ("", None))
        ReleaseFinding.objects.create(
            release=release, image=image, level=FindingLevel.ERROR, rule=problem.rule,
            file=file, line=line, message=problem.message,
        )  # fmt: skip
    return problem
