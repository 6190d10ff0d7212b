"""How the portal reaches a release's images upstream: for each `images:` entry, where to ask
(an endpoint, or the private registry) and with which login (stored credentials, a minted
ECR/GCR token, none for `public`), and how a failure is put into words.

Release resolving (registries/release_resolve.py) and the air-gap build
(delivery/airgap/build.py) both prepare their upstream calls here, on the calling thread (rows
and credentials are read from the database); the calls themselves run elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from licenses.models import ImageSource, ReleaseImage
from portal import crypto, ocispec
from portal.outbound.addresses import GuardPolicy, parse_ip_literal
from portal.outbound.errors import ErrorCategory, RegistryError
from registries import services
from registries.clients import oci
from registries.models import ExternalRegistry

# What went wrong with an image, as release findings name it (their `rule`) and the air-gap
# build's error words it.
IMAGE_NOT_FOUND = "image-not-found"
CREDENTIALS_REJECTED = "credentials-rejected"
UPSTREAM_UNREACHABLE = "upstream-unreachable"
DIGEST_MISMATCH = "digest-mismatch"
INVALID_MANIFEST = "invalid-manifest"

RULES = {
    ErrorCategory.MANIFEST_UNKNOWN: IMAGE_NOT_FOUND,
    ErrorCategory.REPOSITORY_UNKNOWN: IMAGE_NOT_FOUND,
    ErrorCategory.BLOB_UNKNOWN: IMAGE_NOT_FOUND,
    ErrorCategory.UNAUTHORIZED: CREDENTIALS_REJECTED,
    ErrorCategory.FORBIDDEN: CREDENTIALS_REJECTED,
    ErrorCategory.REALM_NOT_ALLOWED: CREDENTIALS_REJECTED,
    ErrorCategory.INVALID_RESPONSE: INVALID_MANIFEST,
}
# Failures that may pass: worth trying again later.
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
    """A failure known before or after asking the registry, in words for the vendor."""

    rule: str
    message: str
    transient: bool = False
    retry_after: int | None = None


@dataclass(frozen=True)
class Target:
    """One image to ask for, prepared on the calling thread (rows, credentials)."""

    image_id: int
    label: str  # the reference as listed, for messages
    source: str
    repository: str = ""
    reference: str = ""  # the tag or digest to ask for
    endpoint: oci.Endpoint | None = None  # None: the private registry at private_url
    private_url: str = ""
    username: str = ""
    password: str = ""
    realm_hosts: tuple[str, ...] = ()
    registry_id: int | None = None
    problem: Problem | None = None  # known without asking (no such registry, unreadable secret)

    def __repr__(self) -> str:
        return f"Target({self.label!r}, {self.source!r})"

    @property
    def where(self) -> str:
        return "the portal's private registry" if self.endpoint is None else str(self.endpoint)


def listed(image: ReleaseImage) -> str:
    """The image as its `images:` entry lists it: `source/name[:tag][@digest]` (`public`: the name)."""
    reference = image.name + (f":{image.tag}" if image.tag else "") + (f"@{image.digest}" if image.digest else "")
    return reference if image.source == ImageSource.PUBLIC else f"{image.source}/{reference}"


def targets(team, images: list[ReleaseImage]) -> list[Target]:
    """Where and how to ask for each image of a release of `team`, in the same order."""
    registries = {r.name: r for r in team.registries.all()}
    logins: dict[str, tuple[services.Credentials | None, Problem | None]] = {}
    policy = GuardPolicy.from_settings()
    found = []
    for image in images:
        label = listed(image)
        if image.source == ImageSource.PRIVATE:
            reference = image.tag or image.digest
            found.append(
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
            found.append(Target(image.pk, label, image.source, problem=problem))
            continue
        try:
            if registry is None:
                endpoint = oci.parse_endpoint(public_address(image.host, policy), policy=policy)
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
            found.append(Target(image.pk, label, image.source, problem=problem))
            continue
        target = Target(image.pk, label, image.source, repository, reference, endpoint)
        if registry is not None:
            if registry.name not in logins:
                logins[registry.name] = login(registry)
            credentials, problem = logins[registry.name]
            if problem is not None:
                target = replace(target, problem=replace(problem, message=f"{label}: {problem.message}"))
            else:
                assert credentials is not None
                target = with_login(target, registry, credentials)
        found.append(target)
    return found


def public_address(host: str, policy: GuardPolicy) -> str:
    """Where a public image's registry answers: https, except a loopback host over plain http
    where the settings allow plain http (Docker's own default: 127.0.0.0/8 is insecure)."""
    bare = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    ip = parse_ip_literal(bare)
    loopback = bare == "localhost" or (ip is not None and ip.is_loopback)
    if loopback and policy.allow_http:
        return f"http://{host}"
    return host if host != ocispec.DOCKER_HUB else ocispec.DOCKER_HUB_API_HOST


@sensitive_variables("credentials")
def login(registry: ExternalRegistry) -> tuple[services.Credentials | None, Problem | None]:
    """The registry's credentials (a minted token for ECR/GCR), or the problem getting them."""
    try:
        return services.registry_credentials(registry), None
    except crypto.DecryptionError:
        return None, Problem(
            CREDENTIALS_REJECTED,
            f"the stored credentials of registry “{registry.name}” cannot be read (the encryption key "
            "changed?); enter them again on the registry's page, then upload the release again.",
        )
    except RegistryError as e:
        problem = problem_of(e, f"registry “{registry.name}” could not mint a login token: {e.message}")
        return None, problem


@sensitive_variables("credentials")
def with_login(target: Target, registry: ExternalRegistry, credentials: services.Credentials) -> Target:
    return replace(
        target,
        username=credentials.username,
        password=credentials.password,
        realm_hosts=(registry.realm_host,) if registry.realm_host else (),
        registry_id=registry.pk,
    )


def with_fresh_token(target: Target, error: RegistryError | None, retried: set[int]) -> Target | None:
    """A minted ECR/GCR token the registry refused is minted again, once per registry and run
    (as the connection test does); the target to ask again with it, or None."""
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
        return with_login(target, registry, services.registry_credentials(registry, fresh=True))
    except (crypto.DecryptionError, RegistryError):
        return None


def problem_of(error: RegistryError, message: str) -> Problem:
    return Problem(
        RULES.get(error.category, UPSTREAM_UNREACHABLE),
        message,
        transient=error.category in TRANSIENT,
        retry_after=error.retry_after,
    )


def explain(target: Target, error: RegistryError, *, then: str = "upload the release again") -> str:
    """What happened to `target`, then what to do about it (`then`: the step that tries again)."""
    label, rule, where = target.label, RULES.get(error.category, UPSTREAM_UNREACHABLE), target.where
    if rule == IMAGE_NOT_FOUND:
        return f"{label} is not in {where} ({error.message}): push it, or correct the name and tag, then {then}."
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
            f"on the registry's page (its Test checks them), then {then}."
        )
    if rule == INVALID_MANIFEST:
        return f"{label}: {where} did not answer with a usable image manifest ({error.message})."
    retry = " The portal tries again a few times." if error.category in TRANSIENT else ""
    return f"{label}: {where} could not be reached ({error.category.value}: {error.message}).{retry}"
