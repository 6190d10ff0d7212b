"""The catalogue's writes: apps and the customer licenses to them, each taking the actor and
recording an audit entry; and the license state the proxy asks about on every request."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.debug import sensitive_variables

from accounts.access import Actor
from accounts.services import audit
from licenses.models import App, License, LicenseType, Refusal, RetiredSlug
from licenses.releases import channel_get
from licenses.validators import validate_app_slug
from portal import crypto, ocispec
from portal.cache import shared_cache
from portal.encrypted_fields import register_encrypted_field


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError({"name": "Enter a name for the app."})
    if len(name) > 100:
        raise ValidationError({"name": "An app name has at most 100 characters."})
    return name


def app_slug_suggest(name: str) -> str:
    return slugify(name)[:63].strip("-")


def app_create(*, actor: Actor, name: str, slug: str = "") -> App:
    """A new app of the actor's team; the slug defaults from the name and is unique portal-wide."""
    errors: dict[str, list[str]] = {}
    try:
        name = _clean_name(name)
    except ValidationError as e:
        errors.update(e.message_dict)
    slug = (slug or "").strip() or app_slug_suggest(name or "")
    try:
        validate_app_slug(slug)
        if App.objects.filter(slug=slug).exists() or RetiredSlug.objects.filter(slug=slug).exists():
            raise ValidationError(f"The slug “{slug}” is taken; choose another.")
    except ValidationError as e:
        errors["slug"] = e.messages
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            app = App.objects.create(team=actor.team, name=name, slug=slug, created_by=actor.user)
            audit(actor=actor, action="app.create", target=slug, name=name)
    except IntegrityError:
        raise ValidationError({"slug": [f"The slug “{slug}” is taken; choose another."]}) from None
    return app


@transaction.atomic
def app_update(
    *,
    actor: Actor,
    app: App,
    name: str | None = None,
    repository_rules: list[str] | None = None,
    airgap_platforms: list[str] | None = None,
) -> App:
    """Rename the app, set its repository rules and/or its air-gap platforms (None: leave as
    is); all or nothing."""
    if name is not None:
        name = _clean_name(name)
        if name != app.name:
            was, app.name = app.name, name
            app.save(update_fields=["name"])
            audit(actor=actor, action="app.rename", target=app.slug, name=name, was=was)
    if repository_rules is not None:
        app_set_repository_rules(actor=actor, app=app, rules=repository_rules)
    if airgap_platforms is not None:
        app_set_airgap_platforms(actor=actor, app=app, platforms=airgap_platforms)
    return app


@transaction.atomic
def app_delete(*, actor: Actor, app: App) -> None:
    """Delete an app; its slug is retired for good (see RetiredSlug)."""
    RetiredSlug.objects.get_or_create(slug=app.slug)
    audit(actor=actor, action="app.delete", target=app.slug, name=app.name)
    app.delete()


# --- licenses --------------------------------------------------------------------------

logger = logging.getLogger(__name__)

LICENSE_ID_BYTES = 24  # 192 random bits, URL-safe
ID_PREFIX_LENGTH = 6  # the license ID's first characters, kept in clear (License.id_prefix) to show and find it


def _new_license_id() -> str:
    """192 random bits, URL-safe, never starting with '-' (which CLIs take for an option)."""
    while True:
        license_id = secrets.token_urlsafe(LICENSE_ID_BYTES)
        if license_id[0].isalnum():
            return license_id


def license_lookup_hash(license_id: str) -> str:
    """The keyed hash a license is found by; without LICENSE_LOOKUP_KEY a dump finds nothing."""
    return hmac.new(settings.LICENSE_LOOKUP_KEY.encode(), license_id.encode(), hashlib.sha256).hexdigest()


def _license_aad(license: License) -> str:
    return f"licenses.License:{license.uid}:app={license.app_id}"


# Rotated and checked with every other encrypted column (portal.encrypted_fields).
register_encrypted_field(License, "license_id_encrypted", aad=_license_aad, aad_fields=("uid", "app_id"))


def _clean_license_fields(
    *, customer_name: str, customer_email: str, type: str, expires_at: datetime | None, new: bool
) -> dict:
    errors: dict[str, list[str]] = {}
    customer_name = " ".join((customer_name or "").split())
    if not customer_name:
        errors["customer_name"] = ["Enter the customer's name."]
    elif len(customer_name) > 200:
        errors["customer_name"] = ["At most 200 characters."]
    customer_email = (customer_email or "").strip().lower()
    if customer_email:
        try:
            validate_email(customer_email)
        except ValidationError:
            errors["customer_email"] = ["Enter a valid email address, like it@customer.com."]
    if type not in LicenseType.values:
        errors["type"] = [f"Choose one of: {', '.join(LicenseType.values)}."]
    if expires_at is not None and new and expires_at <= timezone.now():
        errors["expires_at"] = ["The expiry must be in the future."]
    if errors:
        raise ValidationError(errors)
    return {"customer_name": customer_name, "customer_email": customer_email, "type": type, "expires_at": expires_at}


@sensitive_variables("license_id")
def license_create(
    *,
    actor: Actor,
    app: App,
    customer_name: str,
    customer_email: str = "",
    type: str = LicenseType.PAID,
    expires_at: datetime | None = None,
    channel: str = "stable",
) -> tuple[License, str]:
    """A new license following `channel` of the app; returns it with its license ID (the
    customer's credential)."""
    fields = _clean_license_fields(
        customer_name=customer_name, customer_email=customer_email, type=type, expires_at=expires_at, new=True
    )
    fields["channel"] = channel_get(app, channel or "stable")
    license_id = _new_license_id()
    license = License(app=app, created_by=actor.user, id_prefix=license_id[:ID_PREFIX_LENGTH], **fields)
    license.lookup_hash = license_lookup_hash(license_id)
    license.license_id_encrypted = crypto.encrypt(license_id, aad=_license_aad(license))
    license.save()
    audit(
        actor=actor, action="license.create", target=f"{app.slug}/{license.id_prefix}", customer=license.customer_name
    )
    return license, license_id


def license_update(*, actor: Actor, license: License, **changes) -> License:
    fields = _clean_license_fields(
        customer_name=changes.get("customer_name", license.customer_name),
        customer_email=changes.get("customer_email", license.customer_email),
        type=changes.get("type", license.type),
        expires_at=changes.get("expires_at", license.expires_at),
        new=False,
    )
    if "channel" in changes:
        fields["channel"] = channel_get(license.app, changes["channel"])
    for name, value in fields.items():
        setattr(license, name, value)
    # Only what changed: a full save() would write back the ciphertext this object was loaded
    # with, undoing a key rotation that ran meanwhile.
    license.save(update_fields=[*fields, "updated_at"])
    license_state_forget(license)
    audit(
        actor=actor, action="license.update", target=f"{license.app.slug}/{license.id_prefix}", fields=sorted(changes)
    )
    return license


def license_revoke(*, actor: Actor, license: License) -> None:
    License.objects.filter(pk=license.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    license.refresh_from_db()
    license_state_forget(license)
    audit(actor=actor, action="license.revoke", target=f"{license.app.slug}/{license.id_prefix}")


def license_unrevoke(*, actor: Actor, license: License) -> None:
    License.objects.filter(pk=license.pk).update(revoked_at=None)
    license.refresh_from_db()
    license_state_forget(license)
    audit(actor=actor, action="license.unrevoke", target=f"{license.app.slug}/{license.id_prefix}")


def license_id_of(license: License) -> str:
    """The license ID, for the vendor to show or download; raises crypto.DecryptionError."""
    return crypto.decrypt(license.license_id_encrypted, aad=_license_aad(license))


def license_find(license_id: str) -> License | None:
    """The license with this ID (valid or not), straight from the database."""
    if not license_id or len(license_id) > 200:
        return None
    return _license_by_hash(license_lookup_hash(license_id))


def _license_by_hash(lookup_hash: str) -> License | None:
    try:
        # get(), not first(): lookup_hash is unique, and first()'s ORDER BY cost ~0.14 ms of CPU
        # in the ORM on every token request (bench/tokens.py).
        return License.objects.select_related("app").get(lookup_hash=lookup_hash)
    except License.DoesNotExist:
        return None


# The token service finds the license behind every token request, and `docker pull` asks for a
# token per repository (and again on each retry): asking the database cost ~0.6 ms of CPU and
# two round trips of a ~2.8 ms token (bench/tokens.py). The row found is kept in the shared cache
# for LICENSE_CACHE_SECONDS, the bound revocation already has at the proxy (license_state), and
# license_state_forget drops it with the state, so a revocation through the services reaches
# every process at once. An ID nobody has is asked each time: guesses must not fill the cache,
# and a new license works at once. Expiry is judged when the row is used (License.is_valid).
_FOUND_KEY = "license-found:{}"


def license_find_recent(license_id: str) -> License | None:
    """license_find, answered from the shared cache for LICENSE_CACHE_SECONDS after it found the
    license (a row to read, never to save)."""
    if not license_id or len(license_id) > 200:
        return None
    lookup_hash = license_lookup_hash(license_id)
    key = _FOUND_KEY.format(lookup_hash)
    try:
        cached = shared_cache().get(key)
    except Exception:  # the shared cache is down: ask the database
        cached = None
    if isinstance(cached, License) and cached.lookup_hash == lookup_hash:
        return cached
    license = _license_by_hash(lookup_hash)
    if license is not None and settings.LICENSE_CACHE_SECONDS > 0:
        try:
            shared_cache().set(key, license, timeout=settings.LICENSE_CACHE_SECONDS)
        except Exception:
            logger.warning("license cache unavailable; finding licenses in the database")
    return license


# The proxy asks on every manifest and blob request; the answer is cached for a few seconds
# in the shared cache (Redis in production) so revocation reaches every process within
# LICENSE_CACHE_SECONDS. The database stays the source of truth: without the cache, ask it.
_STATE_KEY = "license-state:{}"


@dataclass(frozen=True)
class LicenseState:
    """What a license may pull for right now: its app, and the channel whose releases it gets."""

    app_id: int
    channel_id: int


def license_state(uid: str) -> LicenseState | None:
    """The app and channel of a license that may pull right now, or None (revoked, expired,
    unknown)."""
    key = _STATE_KEY.format(uid)
    now = timezone.now().timestamp()
    try:
        cached = shared_cache().get(key)
    except Exception:  # the shared cache is down: fall back to the database
        cached = None
    # (app id, until, channel id); anything else (an entry of an older release) is asked again.
    if isinstance(cached, tuple | list) and len(cached) == 3:
        app_id, until, channel_id = cached
        if app_id is None:
            return None
        if until is None or until > now:
            return LicenseState(app_id, channel_id)
    license = License.objects.filter(uid=uid).only("app_id", "channel_id", "revoked_at", "expires_at").first()
    valid = license is not None and license.is_valid
    app_id = license.app_id if valid else None
    channel_id = license.channel_id if valid else None
    until = license.expires_at.timestamp() if valid and license.expires_at else None
    try:
        shared_cache().set(key, (app_id, until, channel_id), timeout=settings.LICENSE_CACHE_SECONDS)
    except Exception:
        logger.warning("license state cache unavailable; answering from the database")
    return LicenseState(app_id, channel_id) if valid else None


def license_refusal(uid: str) -> tuple[int, str] | None:
    """(app id, reason) of a license that exists but may not pull now, for the pull log; None
    if it is valid after all or gone. Asked on refusals only: one query."""
    license = License.objects.filter(uid=uid).only("app_id", "revoked_at", "expires_at").first()
    if license is None or license.is_valid:
        return None
    return license.app_id, license_refusal_reason(license)


def license_refusal_reason(license: License) -> str:
    """Why an invalid license may not pull, in the pull log's words."""
    return Refusal.LICENSE_REVOKED if license.is_revoked else Refusal.LICENSE_EXPIRED


def license_state_forget(license: License) -> None:
    """Drop the cached state now (the cache would forget it within seconds anyway): after a
    revocation, a new expiry or another channel."""
    try:
        shared_cache().delete_many([_STATE_KEY.format(license.uid), _FOUND_KEY.format(license.lookup_hash)])
    except Exception:
        logger.warning("license state cache unavailable; it expires within %ss", settings.LICENSE_CACHE_SECONDS)


# host[__port] then /repo, /prefix/* or just /* (everything on the host: what the migration to
# deny-by-default wrote for apps that had no rules; the app page flags it as broad).
RULE_RE = re.compile(r"^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?:__\d{1,5})?(?:(?:/[a-z0-9._-]+)+(?:/\*)?|/\*)$")


def app_set_repository_rules(*, actor: Actor, app: App, rules: list[str]) -> App:
    """Which upstream repositories the app's licenses may pull besides those the releases
    promoted to their channel list: `host/repo` exactly, `host/prefix/*`, or `host/*` (all of
    it); an upstream port is written `host__port` as in proxy paths. Empty: releases only."""
    cleaned: list[str] = []
    for number, rule in enumerate(rules, start=1):
        rule = (rule or "").strip().lower()
        if not rule:
            continue
        if not RULE_RE.match(rule) or ".." in rule:
            raise ValidationError(
                {"repository_rules": f"Rule {number} must look like quay.io/acme/api or quay.io/acme/*."}
            )
        host, _, path = rule.replace("__", ":", 1).partition("/")
        cleaned.append(f"{ocispec.canonical_host(host)}/{path}")
    app.repository_rules = sorted(set(cleaned))
    app.save(update_fields=["repository_rules"])
    audit(actor=actor, action="app.repository_rules", target=app.slug, rules=app.repository_rules)
    return app


# os/arch or os/arch/variant as OCI image indexes name them: linux/amd64, linux/arm64/v8.
PLATFORM_RE = re.compile(r"^[a-z0-9_]+/[a-z0-9_]+(?:/[a-z0-9_.]+)?$")
PLATFORMS_MAX = 32


def app_set_airgap_platforms(*, actor: Actor, app: App, platforms: list[str]) -> App:
    """The platforms an air-gap bundle keeps of each multi-arch image (empty: every platform);
    each `os/arch` or `os/arch/variant`."""
    cleaned: list[str] = []
    for number, platform in enumerate(platforms, start=1):
        platform = (platform or "").strip().lower()
        if not platform:
            continue
        if not PLATFORM_RE.match(platform):
            raise ValidationError(
                {
                    "airgap_platforms": [
                        f"Platform {number} “{platform[:50]}” must look like os/arch or os/arch/variant "
                        "(linux/amd64, linux/arm64/v8)."
                    ]
                }
            )
        if platform not in cleaned:
            cleaned.append(platform)
    if len(cleaned) > PLATFORMS_MAX:
        raise ValidationError({"airgap_platforms": [f"At most {PLATFORMS_MAX} platforms."]})
    if cleaned != app.airgap_platforms:
        app.airgap_platforms = cleaned
        app.save(update_fields=["airgap_platforms"])
        audit(actor=actor, action="app.airgap_platforms", target=app.slug, platforms=cleaned)
    return app
