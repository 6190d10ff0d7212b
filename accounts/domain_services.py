"""Custom domains, the write side: add, verify over DNS, make default, remove, and the daily
re-check. People need the team's admin role; every change is audited and followed by
`domains.forget()`, so this process answers on (or stops answering on) a domain at once.

The read side (which team a host belongs to, the host a customer is shown) is
accounts/domains.py.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import domains
from accounts.access import Actor
from accounts.models import CustomDomain, DomainKind, DomainStatus
from accounts.services import audit, require_admin
from portal.dns import DnsError, txt_values

logger = logging.getLogger(__name__)

RECHECK_ACTOR = "daily domain check"  # who the re-check acts as, in the audit trail
_CHECK_ERROR_LENGTH = CustomDomain._meta.get_field("check_error").max_length


@dataclass(frozen=True)
class DnsRecord:
    """One record the vendor creates at their DNS provider."""

    type: str  # CNAME and TXT; A or AAAA when the portal's own host is an address
    name: str
    value: str


@dataclass(frozen=True)
class RecheckResult:
    checked: int
    lost: list[str]  # domains whose record was gone
    failed: list[str]  # domains whose lookup failed (kept verified)


# Host names -------------------------------------------------------------------------


def own_host(kind: str) -> str:
    """The portal's own host for `kind`, which a custom domain of that kind points to: the
    proxy's is PORTAL_URL's, the registry's REGISTRY_HOST's (both without a port)."""
    if kind == DomainKind.REGISTRY:
        host = domains.bare_host(settings.REGISTRY_HOST)
    else:
        host = (urlsplit(settings.PORTAL_URL).hostname or "").lower()
    return host.strip("[]")


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _label_problem(label: str) -> str:
    if not label:
        return "has an empty label (two dots in a row, or a leading dot)"
    if len(label) > 63:
        return f"has a label longer than 63 characters ({label[:20]}…)"
    if label.startswith("-") or label.endswith("-"):
        return f"has a label that starts or ends with a hyphen ({label})"
    if not all(c.isascii() and (c.isalnum() or c == "-") for c in label):
        return f"has a character a host name cannot hold in “{label}” (letters, digits and hyphens only)"
    return ""


def clean_domain(value: str) -> str:
    """A host name as stored: IDNA A-labels (xn--), lowercase, no trailing dot. ValidationError
    on `domain` saying what is wrong: a URL, a port, a wildcard, an address, a single label."""
    raw = (value or "").strip()
    example = "like proxy.vendor.com"
    if not raw:
        raise ValidationError({"domain": f"Enter a host name, {example}."})
    if "://" in raw or "/" in raw or "?" in raw or "#" in raw or "@" in raw:
        raise ValidationError({"domain": f"Enter the host name alone, without https:// or a path, {example}."})
    if "*" in raw:
        raise ValidationError({"domain": f"A wildcard cannot be verified; enter one host name, {example}."})
    if _is_address(raw) or raw.startswith("["):
        raise ValidationError({"domain": f"Enter a host name, not an IP address, {example}."})
    if ":" in raw:
        raise ValidationError(
            {"domain": "Enter the host name without a port: customers reach it on your front proxy's standard port."}
        )
    host = raw[:-1] if raw.endswith(".") else raw
    too_long = ValidationError({"domain": "A host name has at most 253 characters."})
    if len(host) > 253:
        raise too_long
    try:
        host = idna.encode(host, uts46=True).decode("ascii").lower()
    except idna.IDNAError as e:
        problem = next((p for p in map(_label_problem, host.lower().split(".")) if p), "")
        problem = problem or f"cannot be written as an international domain name ({e})"
        raise ValidationError({"domain": f"“{raw}” is not a valid host name: it {problem}."}) from None
    labels = host.split(".")
    problem = next((p for p in map(_label_problem, labels) if p), "")
    if problem:
        raise ValidationError({"domain": f"“{raw}” is not a valid host name: it {problem}."})
    if len(labels) < 2:
        raise ValidationError({"domain": f"A custom domain has at least two labels, {example}."})
    if len(host) > 253:  # the A-label form of an international name is longer
        raise too_long
    if labels[-1].isdigit():
        raise ValidationError({"domain": f"“{raw}” ends in a number; enter a host name, {example}."})
    if host in {own_host(DomainKind.PROXY), own_host(DomainKind.REGISTRY)}:
        raise ValidationError({"domain": f"{host} is this portal's own host; enter a domain of yours, {example}."})
    return host


def lookup_name(value: str) -> str:
    """A domain as the API and CLI may name it (any case, a trailing dot, Unicode) in the form it
    is stored in; a value that is no host name stays as given and so finds nothing."""
    name = value.strip().rstrip(".").lower()
    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError:
        return name


def domain_records(domain: CustomDomain) -> list[DnsRecord]:
    """The two records that make `domain` work: its address (a CNAME to the portal's own host
    for its kind) and the TXT record that proves the team controls it."""
    target = own_host(domain.kind)
    if _is_address(target):  # a CNAME cannot point at an address; the portal runs on a bare IP
        kind = "AAAA" if ":" in target else "A"
        address = DnsRecord(kind, domain.domain, target)
    else:
        address = DnsRecord("CNAME", domain.domain, target)
    return [address, DnsRecord("TXT", domain.challenge_name, domain.challenge)]


# Checks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Check:
    found: bool | None  # None: the lookup itself failed, so nothing is known about the record
    error: str


def _check(domain: CustomDomain) -> _Check:
    name = domain.challenge_name
    try:
        values = txt_values(name)
    except DnsError as e:
        return _Check(None, str(e)[:_CHECK_ERROR_LENGTH])
    if domain.challenge in values:
        return _Check(True, "")
    if not values:
        return _Check(False, f"no TXT record at {name}")
    shown = ", ".join(f"“{v[:60]}”" for v in values[:5])
    return _Check(False, f"found other values at {name}: {shown}"[:_CHECK_ERROR_LENGTH])


# Services ---------------------------------------------------------------------------


@transaction.atomic
def domain_add(*, actor: Actor, domain: str, kind: str) -> CustomDomain:
    """A pending domain with a fresh challenge; its records are `domain_records(...)`."""
    require_admin(actor, actor.team.pk, "add custom domains")
    errors: dict[str, list[str]] = {}
    if kind not in DomainKind.values:
        errors["kind"] = [f"Choose one of: {', '.join(DomainKind.values)}."]
    try:
        host = clean_domain(domain)
    except ValidationError as e:
        errors.update(e.message_dict)
    else:
        if CustomDomain.objects.filter(domain=host).exists():
            errors["domain"] = [f"{host} is already in use; a domain can be added once, by one team."]
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            row = CustomDomain.objects.create(
                team=actor.team,
                domain=host,
                kind=kind,
                challenge=secrets.token_urlsafe(32),
                created_by=actor.user,
            )
    except IntegrityError:  # added by someone else in between
        raise ValidationError(
            {"domain": f"{host} is already in use; a domain can be added once, by one team."}
        ) from None
    audit(actor=actor, action="domain.add", target=host, kind=kind)
    domains.forget()
    return row


def domain_verify(*, actor: Actor, domain: CustomDomain) -> CustomDomain:
    """Look the TXT record up now. Found: verified. Not there: a pending domain stays pending,
    a verified one is lost. A failed lookup changes no status (a name server being down says
    nothing about the record) and is kept in check_error like the other outcomes."""
    require_admin(actor, domain.team_id, "verify custom domains")
    # The lookup may take seconds, so it runs before the transaction: on SQLite a transaction
    # holds the database's one write lock from its start.
    check = _check(domain)
    with transaction.atomic():
        return _record_verify(actor, domain, check)


def _locked(domain: CustomDomain) -> CustomDomain:
    """The row as it is now, locked for this transaction; refused if it was removed meanwhile."""
    row = CustomDomain.objects.select_for_update().filter(pk=domain.pk).first()
    if row is None:
        raise ValidationError({"domain": f"{domain.domain} was removed meanwhile."})
    return row


def _record_verify(actor: Actor, domain: CustomDomain, check: _Check) -> CustomDomain:
    domain = _locked(domain)
    now = timezone.now()
    was = domain.status
    if check.found:
        domain.status = DomainStatus.VERIFIED
        if was != DomainStatus.VERIFIED:
            domain.verified_at = now
    elif check.found is False and was == DomainStatus.VERIFIED:
        domain.status = DomainStatus.LOST
    domain.check_error = check.error
    domain.checked_at = now
    domain.save(update_fields=["status", "verified_at", "check_error", "checked_at"])
    audit(
        actor=actor,
        action="domain.verify",
        target=domain.domain,
        status=domain.status,
        was=was,
        **({"error": check.error} if check.error else {}),
    )
    domains.forget()
    return domain


@transaction.atomic
def domain_set_default(*, actor: Actor, domain: CustomDomain) -> CustomDomain:
    """Customers are shown this domain for its kind from now on; the kind's previous default
    (if any) is no longer one. Only a verified domain: the portal answers on nothing else."""
    require_admin(actor, domain.team_id, "choose the default domain")
    domain = _locked(domain)
    if domain.status != DomainStatus.VERIFIED:
        raise ValidationError(
            {
                "domain": f"{domain.domain} is {domain.status}; only a verified domain can be the default. Verify it first."
            }
        )
    if domain.is_default:
        return domain
    previous = CustomDomain.objects.filter(team_id=domain.team_id, kind=domain.kind, is_default=True)
    was = list(previous.values_list("domain", flat=True))
    previous.update(is_default=False)
    domain.is_default = True
    try:
        with transaction.atomic():
            domain.save(update_fields=["is_default"])
    except IntegrityError:  # another default chosen at the same moment
        raise ValidationError(
            {"domain": "Another default was chosen at the same time; reload and try again."}
        ) from None
    audit(actor=actor, action="domain.default", target=domain.domain, kind=domain.kind, was=was[0] if was else "")
    domains.forget()
    return domain


@transaction.atomic
def domain_remove(*, actor: Actor, domain: CustomDomain) -> None:
    """The portal stops answering on the domain; customers are shown the portal's own host
    again if it was the default."""
    require_admin(actor, domain.team_id, "remove custom domains")
    deleted, _ = CustomDomain.objects.filter(pk=domain.pk).delete()
    if deleted:
        audit(
            actor=actor,
            action="domain.remove",
            target=domain.domain,
            kind=domain.kind,
            status=domain.status,
            was_default=domain.is_default,
        )
    domains.forget()


def domains_recheck() -> RecheckResult:
    """The daily job: every verified domain's TXT record looked up again. Gone (or changed):
    lost, audited as the "daily domain check". A failed lookup leaves the domain verified (the
    records may be fine; the name server is not) and records why in check_error.

    Outcomes are written with a filtered update, so a vendor's remove or verify meanwhile wins."""
    lost: list[str] = []
    failed: list[str] = []
    rows = list(CustomDomain.objects.filter(status=DomainStatus.VERIFIED).select_related("team"))
    for domain in rows:
        check = _check(domain)
        now = timezone.now()
        current = CustomDomain.objects.filter(pk=domain.pk, status=DomainStatus.VERIFIED)
        if check.found is False:
            if current.update(status=DomainStatus.LOST, check_error=check.error, checked_at=now):
                lost.append(domain.domain)
                audit(
                    actor=Actor.for_system(domain.team, RECHECK_ACTOR),
                    action="domain.lost",
                    target=domain.domain,
                    kind=domain.kind,
                    error=check.error,
                )
                logger.warning("custom domain %s lost: %s", domain.domain, check.error)
        else:
            current.update(check_error=check.error, checked_at=now)
            if check.found is None:
                failed.append(domain.domain)
                logger.warning("custom domain %s not re-checked: %s", domain.domain, check.error)
    domains.forget()
    return RecheckResult(checked=len(rows), lost=lost, failed=failed)
