"""External registries: save (validated, secret encrypted), test, mint and refresh tokens."""

from __future__ import annotations

import json
import logging
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from accounts.access import Actor
from accounts.services import audit
from licenses.models import App
from portal import crypto, ratelimit
from portal.encrypted_fields import register_encrypted_field
from portal.outbound.addresses import GuardPolicy, address_refusal, parse_ip_literal
from portal.outbound.errors import RegistryError
from registries import providers, steps
from registries.clients import oci
from registries.models import CheckStatus, ExternalRegistry, Health, RegistryTest
from registries.providers import Provider
from registries.upstream_limits import registry_rate_limit_record

logger = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
HOST_RE = re.compile(r"^(?:\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?)(?::\d{1,5})?(?:/[a-z0-9._/-]*)?$")


@dataclass(frozen=True)
class Credentials:
    """What goes to the upstream registry for one request; lives only in memory."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=<hidden>)"


def _no_control_chars(value: str, field: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        raise ValidationError({field: "Must not contain control or invisible characters."})
    return value


def _aad(registry: ExternalRegistry, purpose: str) -> str:
    return f"registries.ExternalRegistry:{registry.uid}:team={registry.team_id}:{purpose}"


# Rotated and checked with every other encrypted column (portal.encrypted_fields).
register_encrypted_field(
    ExternalRegistry, "secret", aad=lambda registry: _aad(registry, "secret"), aad_fields=("uid", "team_id")
)
register_encrypted_field(
    ExternalRegistry, "minted_token", aad=lambda registry: _aad(registry, "minted"), aad_fields=("uid", "team_id")
)


def _private_literal(host: str) -> bool:
    """A loopback/private IP the settings allow: tests and private mirrors skip provider host checks."""
    ip = parse_ip_literal(host.split(":")[0] if not host.startswith("[") else host.split("]")[0] + "]")
    if ip is None:
        return False
    return any(ip in net for net in GuardPolicy.from_settings().allowed_private_networks)


def _clean_endpoint(provider: str, endpoint: str, region: str) -> tuple[str, str]:
    """The stored form of an endpoint (and ECR region), or a ValidationError naming the field."""
    rules = providers.rules(provider)
    raw = _no_control_chars((endpoint or "").strip(), "endpoint") or rules.default_endpoint
    if not raw:
        raise ValidationError({"endpoint": "Enter the registry's address, e.g. registry.example.com."})
    scheme = ""
    lowered = raw.lower()
    if lowered.startswith("http://"):
        scheme, lowered = "http://", lowered[len("http://") :]
    elif lowered.startswith("https://"):
        lowered = lowered[len("https://") :]
    lowered = lowered.rstrip("/")
    if not HOST_RE.match(lowered):
        raise ValidationError({"endpoint": "Use host[:port][/path-prefix], e.g. registry.example.com/team."})
    host = lowered.split("/")[0]
    policy = GuardPolicy.from_settings()
    if scheme and not policy.allow_http:
        raise ValidationError({"endpoint": "Plain-HTTP registries are not allowed here; use an https endpoint."})
    try:
        parsed = oci.parse_endpoint(scheme + lowered, policy=policy)
    except RegistryError as e:
        raise ValidationError({"endpoint": e.message}) from None
    # An address literal the guard would refuse is refused here too, even with skip_validation.
    literal = parse_ip_literal(parsed.host)
    refusal = address_refusal(literal, policy) if literal is not None else None
    if refusal:
        raise ValidationError({"endpoint": f"{parsed.host} is not allowed: it is {refusal}."})
    if _private_literal(host):
        return scheme + lowered, region
    return rules.clean_endpoint(scheme, lowered, region)


@sensitive_variables("secrets", "given", "value")
def _clean_secret(provider: str, username: str, secrets: dict[str, str], *, required: bool) -> tuple[str, dict | None]:
    """(username, secret dict) for this provider; secret None means "keep the stored one"."""
    given = {k: v for k, v in secrets.items() if v}
    for field, value in given.items():
        if len(value) > providers.MAX_SECRET_LENGTH:
            raise ValidationError({field: f"Too long: at most {providers.MAX_SECRET_LENGTH // 1024} KiB."})
        if field != "service_account_key":
            _no_control_chars(value, field)
    username = _no_control_chars((username or "").strip(), "username")
    if len(username) > 255:
        raise ValidationError({"username": "At most 255 characters."})
    rules = providers.rules(provider)
    unknown = set(given) - set(rules.secrets)
    if unknown:
        field = sorted(unknown)[0]
        raise ValidationError({field: f"{Provider(provider).label} does not take a {field.replace('_', ' ')}."})
    username, secret = rules.clean_credentials(username, given)
    if secret is None and required:
        field = rules.secrets[0]
        raise ValidationError({field: f"Enter the {field.replace('_', ' ')}."})
    return username, secret


def _derived_name(team_id: int, endpoint: str, provider: str) -> str:
    """The provider's or endpoint's natural name, with -2, -3 … when the team already uses it
    (localhost:5000 and 127.0.0.1:5000 both read `local-5000`)."""
    base = providers.rules(provider).default_name or providers.name_for_endpoint(endpoint)
    taken = set(ExternalRegistry.objects.filter(team_id=team_id, name__startswith=base).values_list("name", flat=True))
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base[: 63 - len(str(n)) - 1].rstrip('-')}-{n}"
    return name


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise ValidationError({"name": "Use lowercase letters, digits and hyphens (at most 63)."})
    return name


def _clean_apps(actor: Actor, app_slugs: list[str] | None) -> list[App]:
    if not app_slugs:
        return []
    apps = list(App.objects.filter(team=actor.team, slug__in=app_slugs))
    missing = sorted(set(app_slugs) - {a.slug for a in apps})
    if missing:
        raise ValidationError({"apps": f"No app “{missing[0]}” in your team."})
    return apps


def _clean_realm_host(value: str) -> str:
    value = _no_control_chars((value or "").strip().lower(), "realm_host")
    if value and not HOST_RE.match(value):
        raise ValidationError({"realm_host": "Give a host name such as auth.example.com."})
    return value


def _store_secret(registry: ExternalRegistry, secret: dict) -> None:
    registry.secret = crypto.encrypt(json.dumps(secret), aad=_aad(registry, "secret"))
    registry.secret_updated_at = timezone.now()
    registry.minted_token, registry.minted_token_expires_at = "", None


def registry_secret(registry: ExternalRegistry) -> dict:
    """The decrypted secret, for the request in hand only. Raises DecryptionError."""
    if not registry.secret:
        return {}
    return json.loads(crypto.decrypt(registry.secret, aad=_aad(registry, "secret")))


@sensitive_variables()
@transaction.atomic
def registry_create(
    *,
    actor: Actor,
    provider: str,
    endpoint: str = "",
    name: str = "",
    username: str = "",
    region: str = "",
    realm_host: str = "",
    apps: list[str] | None = None,
    skip_validation: bool = False,
    **secrets: str,
) -> ExternalRegistry:
    """Save a registry after checking every field (and, unless skipped, the credentials upstream)."""
    if provider not in Provider.values:
        raise ValidationError({"provider": f"Choose one of: {', '.join(Provider.values)}."})
    recognised = providers.recognise(endpoint, username, secrets) if provider == Provider.OTHER else None
    if recognised is not None:
        others = {k: v for k, v in secrets.items() if k not in ("password", "token")}
        try:
            return registry_create(
                actor=actor, provider=recognised.provider, endpoint=endpoint, name=name, username=recognised.username,
                region=region, realm_host=realm_host, apps=apps, skip_validation=skip_validation,
                **{**others, **recognised.secrets},
            )  # fmt: skip
        except ValidationError as e:
            raise recognised.as_given(e) from None
    endpoint, region = _clean_endpoint(provider, endpoint, region)
    username, secret = _clean_secret(
        provider, username, {k: secrets.get(k, "") for k in providers.SECRET_INPUTS}, required=True
    )
    registry = ExternalRegistry(
        team=actor.team,
        provider=provider,
        endpoint=endpoint,
        name=_clean_name(name) if (name or "").strip() else _derived_name(actor.team.pk, endpoint, provider),
        username=username,
        region=region,
        realm_host=_clean_realm_host(realm_host),
        created_by=actor.user,
    )
    app_rows = _clean_apps(actor, apps)
    registry.all_apps = not app_rows
    _check_unique(registry)
    _store_secret(registry, secret)
    if not skip_validation:
        _verify(registry, secret)
    try:
        with transaction.atomic():
            registry.save()
    except IntegrityError:
        _check_unique(registry)
        raise
    registry.apps.set(app_rows)
    audit(actor=actor, action="registry.create", target=registry.name, endpoint=endpoint, provider=provider)
    if registry.insecure:
        audit(actor=actor, action="registry.insecure_http", target=registry.name, endpoint=endpoint)
    return registry


def _check_unique(registry: ExternalRegistry) -> None:
    others = ExternalRegistry.objects.filter(team_id=registry.team_id).exclude(pk=registry.pk)
    if others.filter(name=registry.name).exists():
        raise ValidationError({"name": f"Your team already has a registry named “{registry.name}”."})
    if others.filter(endpoint=registry.endpoint).exists():
        raise ValidationError({"endpoint": f"Your team already has a registry for {registry.endpoint}."})


@sensitive_variables()
@transaction.atomic
def registry_update(
    *,
    actor: Actor,
    registry: ExternalRegistry,
    skip_validation: bool = False,
    **changes: Any,
) -> ExternalRegistry:
    """Change a registry. A blank secret keeps the stored one, unless the endpoint's host changes
    or plain HTTP is turned on: then the secret must be entered again (it would go elsewhere)."""
    registry = ExternalRegistry.objects.select_for_update().get(pk=registry.pk)
    recognised = None
    if registry.provider == Provider.OTHER:
        recognised = providers.recognise(
            changes.get("endpoint", registry.endpoint),
            changes.get("username", registry.username),
            {k: changes.get(k) or "" for k in ("password", "token")},
        )
    if recognised is not None:  # an "Other" registry given a cloud's credentials becomes that cloud's
        registry.provider = recognised.provider
        changes = {k: v for k, v in changes.items() if k not in ("password", "token")}
        changes.update(endpoint=changes.get("endpoint", registry.endpoint), username=recognised.username)
        changes.update(recognised.secrets)
    try:
        return _registry_update(actor, registry, skip_validation, changes)
    except ValidationError as e:
        if recognised is None:
            raise
        raise recognised.as_given(e) from None


def _login_facts(registry: ExternalRegistry) -> tuple[str, ...]:
    """What, besides the secret, decides whether the portal can log in."""
    return (registry.endpoint, registry.username, registry.region, registry.realm_host)


@sensitive_variables()
def _registry_update(
    actor: Actor, registry: ExternalRegistry, skip_validation: bool, changes: dict[str, Any]
) -> ExternalRegistry:
    old_host = registry.endpoint.removeprefix("http://").split("/")[0]
    was_insecure = registry.insecure
    login_before = _login_facts(registry)
    if "endpoint" in changes or "region" in changes:
        registry.endpoint, registry.region = _clean_endpoint(
            registry.provider, changes.get("endpoint", registry.endpoint), changes.get("region", registry.region)
        )
    secrets = {k: changes.get(k) or "" for k in providers.SECRET_INPUTS}
    new_host = registry.endpoint.removeprefix("http://").split("/")[0]
    must_reenter = new_host != old_host or (registry.insecure and not was_insecure)
    username, secret = _clean_secret(
        registry.provider, changes.get("username", registry.username), secrets, required=must_reenter
    )
    if not providers.rules(registry.provider).username_from_secret or secret is not None:
        registry.username = username
    if (changes.get("name") or "").strip():  # blank keeps the name: releases refer to it
        registry.name = _clean_name(changes["name"])
    if "realm_host" in changes:
        registry.realm_host = _clean_realm_host(changes["realm_host"])
    if "apps" in changes:
        app_rows = _clean_apps(actor, changes["apps"])
        registry.all_apps = not app_rows
        registry.apps.set(app_rows)
    _check_unique(registry)
    if secret is not None:
        _store_secret(registry, secret)
    if not skip_validation and (secret is not None or new_host != old_host):
        _verify(registry, secret if secret is not None else registry_secret(registry))
    if secret is not None or _login_facts(registry) != login_before:
        # Until a test requested from now on finishes, the last health says nothing about these.
        registry.health, registry.health_reason = Health.CREDENTIALS_CHANGED, ""
        registry.credentials_changed_at = timezone.now()
    registry.save()
    audit(
        actor=actor,
        action="registry.update",
        target=registry.name,
        fields=sorted(k for k in changes if k not in providers.SECRET_INPUTS),
        secret_changed=secret is not None,
    )
    if registry.insecure and not was_insecure:
        audit(actor=actor, action="registry.insecure_http", target=registry.name, endpoint=registry.endpoint)
    return registry


def registry_delete(*, actor: Actor, registry: ExternalRegistry) -> None:
    audit(actor=actor, action="registry.delete", target=registry.name, endpoint=registry.endpoint)
    registry.delete()


# --- credentials for upstream calls ----------------------------------------------------


@sensitive_variables("secret", "token")
def _mint(registry: ExternalRegistry, secret: dict) -> tuple[Credentials, datetime]:
    minting = providers.rules(registry.provider).minting
    assert minting is not None, f"{registry.provider} does not mint tokens"
    token = minting.mint(registry.username, secret, registry.region)
    return Credentials(token.username, token.password), token.expires_at


@sensitive_variables("secret", "credentials")
def registry_credentials(registry: ExternalRegistry, *, fresh: bool = False) -> Credentials:
    """What to send upstream: the stored user/password, or a (cached) minted ECR/GCR token.

    Raises DecryptionError for an unreadable secret and RegistryError when minting fails.
    """
    secret = registry_secret(registry)
    if not registry.mints_tokens:
        return Credentials(registry.username, secret.get("password", ""))
    now = timezone.now()
    if (
        not fresh
        and registry.minted_token
        and registry.minted_token_expires_at
        and registry.minted_token_expires_at > now
    ):
        cached = json.loads(crypto.decrypt(registry.minted_token, aad=_aad(registry, "minted")))
        return Credentials(cached["username"], cached["password"])
    credentials, expires_at = _mint(registry, secret)
    ciphertext = crypto.encrypt(
        json.dumps({"username": credentials.username, "password": credentials.password}), aad=_aad(registry, "minted")
    )
    ExternalRegistry.objects.filter(pk=registry.pk).update(minted_token=ciphertext, minted_token_expires_at=expires_at)
    registry.minted_token, registry.minted_token_expires_at = ciphertext, expires_at
    return credentials


def registry_token_invalidate(registry: ExternalRegistry) -> None:
    ExternalRegistry.objects.filter(pk=registry.pk).update(minted_token="", minted_token_expires_at=None)
    registry.minted_token, registry.minted_token_expires_at = "", None


def _client_options(registry: ExternalRegistry) -> dict[str, Any]:
    return {"allowed_realm_hosts": [registry.realm_host] if registry.realm_host else []}


@sensitive_variables("secret", "credentials", "kwargs")  # kwargs: verify_credentials_sync's
def _verify(registry: ExternalRegistry, secret: dict) -> None:
    """Log in upstream with the new credentials; a refusal is a field error, nothing is saved."""
    try:
        if registry.mints_tokens:
            credentials, expires_at = _mint(registry, secret)
        else:
            credentials = Credentials(registry.username, secret.get("password", ""))
        oci.verify_credentials_sync(
            registry.endpoint,
            username=credentials.username,
            password=credentials.password,
            **_client_options(registry),
        )
    except RegistryError as e:
        field = providers.rules(registry.provider).secrets[0] if e.category.value == "unauthorized" else "endpoint"
        raise ValidationError(
            {field: f"{e.message} ({e.category.value}). Fix it, or save with “skip validation”."}
        ) from None


# --- connection tests ------------------------------------------------------------------


class TooManyTests(Exception):
    """The team has run its connection tests for this window (SECURITY-TESTS S10)."""

    def __init__(self, *, limit: int, window: int, retry_after: int) -> None:
        self.limit, self.window, self.retry_after = limit, window, retry_after
        super().__init__(
            f"Your team may run {limit} connection tests every {_duration(window)} and has run them all; "
            f"try again in {_duration(retry_after)}."
        )


def _duration(seconds: int) -> str:
    """`45 seconds`, `10 minutes`, `2 hours`: rounded up, so a client waiting that long is in time."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = math.ceil(seconds / size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _check_test_rate(team) -> None:
    limit, window = settings.REGISTRY_TEST_RATE, settings.REGISTRY_TEST_RATE_WINDOW
    # created_at with the id: a recreated database (as in tests) reuses team ids.
    key = f"registry-tests:{team.pk}:{int(team.created_at.timestamp())}"
    try:
        count = ratelimit.hit(caches["default"], key, window=window)
    except Exception:
        logger.warning("connection-test rate limit unavailable (shared cache down); allowing the test")
        return
    if count > limit:
        raise TooManyTests(limit=limit, window=window, retry_after=ratelimit.seconds_left(window))


def registry_test_request(*, actor: Actor, registry: ExternalRegistry, image: str) -> RegistryTest:
    """Queue a connection test with `image`; the worker records the outcome on the returned row.

    Raises TooManyTests beyond REGISTRY_TEST_RATE tests per REGISTRY_TEST_RATE_WINDOW per team."""
    from portal.queue import QueueUnavailable, enqueue
    from registries.tasks import registry_test_task

    image = _no_control_chars((image or "").strip(), "image")
    if not image:
        raise ValidationError({"image": "Enter an image to test with, e.g. acme/api:1.0.0."})
    try:
        oci.parse_image(image, oci.parse_endpoint(registry.endpoint, policy=GuardPolicy.from_settings()))
    except (ValueError, RegistryError) as e:
        raise ValidationError({"image": f"Not an image reference: {getattr(e, 'message', e)}."}) from None
    if not actor.system:
        # The limit stops a person or a token hammering upstreams; the portal's own daily check
        # (once per registry a day) neither waits for it nor spends the team's tests.
        _check_test_rate(actor.team)
    test = RegistryTest.objects.create(registry=registry, image=image, requested_by=actor.label)
    try:
        enqueue(registry_test_task, test.pk)
    except QueueUnavailable:
        _finish(test, ok=False, category="queue_unavailable", message="The task queue is unavailable; try again.")
        raise
    return test


def _finish(test: RegistryTest, *, ok: bool, category: str = "", message: str = "", result: dict | None = None) -> None:
    RegistryTest.objects.filter(pk=test.pk).update(
        status=CheckStatus.SUCCEEDED if ok else CheckStatus.FAILED,
        category=category,
        message=message[:500],
        result=result or {},
        finished_at=timezone.now(),
    )


def _record_health(
    registry: ExternalRegistry, test: RegistryTest, *, ok: bool, reason: str = "", image: str = ""
) -> None:
    """The registry's credential health after `test` (recorded before the test reads done, so whoever
    sees it done sees this), unless the credentials changed since the test was requested."""
    fields: dict[str, Any] = {
        "health": Health.HEALTHY if ok else Health.UNHEALTHY,
        "health_reason": reason[:500],
        "last_checked_at": timezone.now(),
        "last_image_test": test.pk,
    }
    if image:
        fields["last_good_image"] = image
    ExternalRegistry.objects.filter(pk=registry.pk).exclude(credentials_changed_at__gt=test.created_at).update(**fields)


@sensitive_variables("credentials", "kwargs")  # kwargs: check_image_sync's
def registry_test_run(test_id: int) -> RegistryTest:
    """The worker's half of a test: log in, fetch the manifest, HEAD a blob; store the outcome.

    A test never stays "running": an unexpected error marks it failed before it propagates."""
    test = RegistryTest.objects.select_related("registry").get(pk=test_id)
    RegistryTest.objects.filter(pk=test.pk).update(status=CheckStatus.RUNNING, started_at=timezone.now())
    try:
        return _registry_test_run(test)
    except Exception:
        _finish(test, ok=False, category="internal_error", message="The test failed unexpectedly; it was logged.")
        raise


@sensitive_variables("credentials", "kwargs")
def _registry_test_run(test: RegistryTest) -> RegistryTest:
    registry = test.registry
    result = None
    for attempt in (1, 2):
        try:
            credentials = registry_credentials(registry, fresh=attempt == 2)
        except crypto.DecryptionError as e:
            _record_health(registry, test, ok=False, reason="stored credentials unreadable")
            _finish(test, ok=False, category="credential_corrupt", message=f"Stored credentials unreadable: {e}.")
            return RegistryTest.objects.get(pk=test.pk)
        except RegistryError as e:
            _record_health(registry, test, ok=False, reason=e.message)
            _finish(test, ok=False, category=e.category.value, message=f"Could not get a registry token: {e.message}")
            return RegistryTest.objects.get(pk=test.pk)
        result = oci.check_image_sync(
            registry.endpoint,
            test.image,
            username=credentials.username,
            password=credentials.password,
            **_client_options(registry),
        )
        # A minted token the registry refuses is invalidated and minted again, exactly once.
        if registry.mints_tokens and attempt == 1 and result.error_category in ("unauthorized", "forbidden"):
            registry_token_invalidate(registry)
            continue
        break
    assert result is not None
    message = "" if result.ok else (result.error_message or "failed")
    category, stored = result.error_category or "", result.as_dict()
    # A missing image or tag is the test's finding; the registry stays healthy, its login worked.
    credentials_ok = result.ok or steps.is_image_finding(category, stored)
    failed = steps.failed_step(stored)
    reason = "" if credentials_ok else f"{steps.step_label(failed)}: {message}" if failed else message
    if result.rate_limit is not None:
        registry_rate_limit_record(registry_id=registry.pk, rate_limit=result.rate_limit, seen_at=timezone.now())
    _record_health(registry, test, ok=credentials_ok, reason=reason, image=test.image if result.ok else "")
    _finish(test, ok=result.ok, category=category, message=message, result=stored)
    return RegistryTest.objects.get(pk=test.pk)


# --- beat jobs -------------------------------------------------------------------------


def registries_due_for_refresh() -> list[int]:
    now = timezone.now()
    due = []
    for registry in ExternalRegistry.objects.filter(provider__in=providers.MINTING_PROVIDERS).only(
        "pk", "provider", "username", "minted_token_expires_at"
    ):
        if not registry.mints_tokens:
            continue
        expires = registry.minted_token_expires_at
        if expires is None or expires - _refresh_margin(registry) <= now:
            due.append(registry.pk)
    return due


def _refresh_margin(registry: ExternalRegistry) -> timedelta:
    minting = providers.rules(registry.provider).minting
    return minting.refresh_margin if minting else timedelta(0)


def registry_refresh_token(registry_id: int) -> bool:
    """Mint a new token for one registry. Two workers may run it at once: the row lock makes the
    second one skip. Returns False when another worker holds the row."""
    with transaction.atomic():
        registry = ExternalRegistry.objects.select_for_update(skip_locked=True).filter(pk=registry_id).first()
        if registry is None:
            return False
        margin = _refresh_margin(registry)
        if registry.minted_token_expires_at and registry.minted_token_expires_at - margin > timezone.now():
            return True  # another worker refreshed it a moment ago
        registry_credentials(registry, fresh=True)
    return True


def registry_mark_refresh_failed(registry_id: int, reason: str) -> None:
    ExternalRegistry.objects.filter(pk=registry_id).update(
        health=Health.UNHEALTHY, health_reason=f"token refresh failed: {reason}"[:500], last_checked_at=timezone.now()
    )


def registries_to_retest() -> list[tuple[int, str]]:
    return list(ExternalRegistry.objects.exclude(last_good_image="").values_list("pk", "last_good_image"))
