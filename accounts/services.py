"""Sign-up, teams, invites, memberships and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts import lockout
from accounts.access import SERVICE_ACCESS_ROLE, Actor, Perm
from accounts.models import ApiToken, Invite, Membership, PasswordReset, Role, Team, TokenAccess, TokenKind, User
from portal.requestcontext import client_address

TOKEN_PREFIXES = {TokenKind.USER: "vpu_", TokenKind.SERVICE: "vps_"}
DISPLAY_PREFIX_LENGTH = 12
LAST_USED_RESOLUTION = timedelta(minutes=1)
PASSWORD_RESET_LIFETIME = timedelta(hours=24)


def hash_secret(value: str) -> str:
    """Tokens and invite links carry 256 random bits, so a plain SHA-256 is a safe lookup key."""
    return hashlib.sha256(value.encode()).hexdigest()


def _clean_email(email: str, *, field: str = "email") -> str:
    email = (email or "").strip().lower()
    if not email:
        raise ValidationError({field: "Enter an email address."})
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({field: "Enter a valid email address, like name@example.com."}) from None
    return email


def _clean_team_name(name: str, *, field: str = "team_name") -> tuple[str, str]:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError({field: "Enter a team name."})
    if len(name) > 100:
        raise ValidationError({field: "A team name has at most 100 characters."})
    slug = slugify(name)
    if not slug:
        raise ValidationError({field: "A team name needs at least one letter or digit."})
    if Team.objects.filter(slug=slug).exists():
        raise ValidationError({field: f"A team named “{name}” already exists; ask its admin for an invite."})
    return name, slug


def require_admin(actor: Actor, team_id: int, what: str) -> None:
    """Pages and API check roles before they call; this keeps any other caller to the same rule."""
    if team_id != actor.team.pk:
        raise PermissionDenied("That belongs to another team.")
    if not actor.can(Perm.ADMIN):
        raise PermissionDenied(f"Only a team admin may {what}.")


def _check_password(password: str, user: User, *, field: str = "password") -> None:
    if not password:
        raise ValidationError({field: "Enter a password."})
    try:
        password_validation.validate_password(password, user)
    except ValidationError as e:
        raise ValidationError({field: e.messages}) from None


@transaction.atomic
def team_create(*, name: str, admin: User) -> Team:
    """Create a team with `admin` as its first admin."""
    name, slug = _clean_team_name(name, field="name")
    try:
        with transaction.atomic():
            team = Team.objects.create(name=name, slug=slug)
    except IntegrityError:
        raise ValidationError({"name": f"A team named “{name}” already exists."}) from None
    Membership.objects.create(user=admin, team=team, role=Role.ADMIN)
    audit(actor=Actor(team=team, role=Role.ADMIN, user=admin), action="team.create", target=team.slug, name=team.name)
    return team


def signup_errors(*, email: str, password: str, team_name: str, name: str = "") -> dict[str, list[str]]:
    """Every reason a sign-up would be refused, per field, so a form can show them all at once."""
    errors: dict[str, list[str]] = {}
    user = User(email="", name=(name or "").strip()[:150])
    try:
        user.email = _clean_email(email)
        if User.objects.filter(email=user.email).exists():
            raise ValidationError({"email": "An account with this email already exists; log in instead."})
    except ValidationError as e:
        errors.update(e.message_dict)
    try:
        _check_password(password, user)
    except ValidationError as e:
        errors.update(e.message_dict)
    try:
        _clean_team_name(team_name)
    except ValidationError as e:
        errors.update(e.message_dict)
    return errors


@transaction.atomic
def user_signup(*, email: str, password: str, team_name: str, name: str = "") -> tuple[User, Team]:
    """A new vendor: their user, their team, and admin membership of it; all or nothing."""
    errors = signup_errors(email=email, password=password, team_name=team_name, name=name)
    if errors:
        raise ValidationError(errors)
    user = User(email=_clean_email(email), name=(name or "").strip()[:150])
    user.set_password(password)
    user.save()
    try:
        team = team_create(name=team_name, admin=user)
    except ValidationError as e:
        raise ValidationError({"team_name": e.message_dict["name"]}) from None
    return user, team


def user_create(*, email: str, password: str, name: str = "") -> User:
    user = User(email=_clean_email(email), name=name)
    if User.objects.filter(email=user.email).exists():
        raise ValidationError({"email": "An account with this email already exists."})
    _check_password(password, user)
    user.set_password(password)
    user.save()
    return user


def memberships_of(user: User):
    return Membership.objects.filter(user=user).select_related("team").order_by("team__name")


def actor_for_user(user: User, team_id: int | None) -> Actor | None:
    """The user's actor in the given team, or in their first team when that one is not theirs."""
    memberships = memberships_of(user)
    membership = None
    if team_id is not None:
        membership = memberships.filter(team_id=team_id).first()
    membership = membership or memberships.first()
    if membership is None:
        return None
    return Actor(team=membership.team, role=membership.role, user=user)


# Invites ---------------------------------------------------------------------------


@transaction.atomic
def invite_create(*, actor: Actor, role: str, email: str = "") -> tuple[Invite, str]:
    """A single-use invite link; the returned secret is shown once and never stored."""
    require_admin(actor, actor.team.pk, "invite people")
    if role not in Role.values:
        raise ValidationError({"role": f"Choose one of: {', '.join(Role.values)}."})
    if email:
        email = _clean_email(email)
        if Membership.objects.filter(team=actor.team, user__email=email).exists():
            raise ValidationError({"email": f"{email} is already a member of {actor.team.name}."})
    secret = secrets.token_urlsafe(32)
    invite = Invite.objects.create(
        team=actor.team,
        role=role,
        email=email,
        token_hash=hash_secret(secret),
        created_by=actor.user,
        expires_at=timezone.now() + timedelta(days=settings.INVITE_TTL_DAYS),
    )
    audit(actor=actor, action="invite.create", target=email or "anyone with the link", role=role, invite=invite.pk)
    return invite, secret


def invite_lookup(secret: str) -> Invite | None:
    if not secret:
        return None
    return Invite.objects.select_related("team").filter(token_hash=hash_secret(secret)).first()


@transaction.atomic
def invite_accept(*, secret: str, user: User) -> Membership:
    invite = Invite.objects.select_for_update().filter(token_hash=hash_secret(secret or "")).first()
    if invite is None or not invite.is_usable:
        raise ValidationError("This invite link is invalid, expired or already used. Ask for a new one.")
    if invite.email and invite.email != user.email:
        raise ValidationError(f"This invite is for {invite.email}; log in with that address to accept it.")
    membership, created = Membership.objects.get_or_create(user=user, team=invite.team, defaults={"role": invite.role})
    if not created:
        raise ValidationError(f"You are already a member of {invite.team.name}.")
    invite.accepted_by = user
    invite.accepted_at = timezone.now()
    invite.save(update_fields=["accepted_by", "accepted_at"])
    # The one who accepts acts; they are a member from this moment.
    audit(
        actor=Actor(team=invite.team, role=membership.role, user=user),
        action="invite.accept",
        target=user.email,
        role=membership.role,
        invite=invite.pk,
    )
    return membership


@transaction.atomic
def invite_revoke(*, actor: Actor, invite: Invite) -> None:
    require_admin(actor, invite.team_id, "revoke invites")
    if Invite.objects.filter(pk=invite.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
        audit(actor=actor, action="invite.revoke", target=invite.email or "anyone with the link", invite=invite.pk)


def invites_purge_expired() -> int:
    """Delete invites that can no longer be used and are older than their lifetime."""
    cutoff = timezone.now() - timedelta(days=settings.INVITE_TTL_DAYS)
    deleted, _ = Invite.objects.filter(expires_at__lt=timezone.now(), created_at__lt=cutoff).delete()
    return deleted


# Memberships ------------------------------------------------------------------------


def _other_admins(membership: Membership) -> bool:
    return Membership.objects.filter(team=membership.team, role=Role.ADMIN).exclude(pk=membership.pk).exists()


@transaction.atomic
def membership_set_role(*, actor: Actor, membership: Membership, role: str) -> Membership:
    require_admin(actor, membership.team_id, "change roles")
    if role not in Role.values:
        raise ValidationError({"role": f"Choose one of: {', '.join(Role.values)}."})
    membership = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
    if membership.role == Role.ADMIN and role != Role.ADMIN and not _other_admins(membership):
        raise ValidationError({"role": "A team needs at least one admin; make someone else admin first."})
    was = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    if role != was:
        audit(actor=actor, action="member.role", target=membership.user.email, role=role, was=was)
    return membership


@transaction.atomic
def membership_remove(*, actor: Actor, membership: Membership) -> None:
    """Remove a member; their user tokens for this team stop working at once."""
    require_admin(actor, membership.team_id, "remove members")
    membership = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
    if membership.role == Role.ADMIN and not _other_admins(membership):
        raise ValidationError("A team needs at least one admin; make someone else admin first.")
    revoked = ApiToken.objects.filter(team=membership.team, user=membership.user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    membership.delete()
    audit(
        actor=actor, action="member.remove", target=membership.user.email, role=membership.role, tokens_revoked=revoked
    )


# Passwords --------------------------------------------------------------------------


@transaction.atomic
def user_password_change(*, user: User, current_password: str, new_password: str, new_password_again: str) -> None:
    """Set a new password after checking the current one; every team the user is in gets an
    audit entry, since each team's admins should see who changed their credentials."""
    errors: dict[str, list[str]] = {}
    if not current_password:
        errors["current_password"] = ["Enter your current password."]
    elif not user.check_password(current_password):
        errors["current_password"] = ["That is not your current password."]
    try:
        _check_password(new_password, user, field="new_password")
    except ValidationError as e:
        errors.update(e.message_dict)
    if not errors and new_password == current_password:
        errors["new_password"] = ["Choose a password different from your current one."]
    if "new_password" not in errors and new_password != new_password_again:
        errors["new_password_again"] = ["The two new passwords differ; type the same one twice."]
    if errors:
        raise ValidationError(errors)
    user.set_password(new_password)
    user.save(update_fields=["password"])
    password_changed_audit(user=user, action="user.password_change")


def password_changed_audit(*, user: User, action: str) -> None:
    """An entry in every team the user is in: each team's admins should see credential changes."""
    for membership in Membership.objects.filter(user=user).select_related("team"):
        audit(actor=Actor(team=membership.team, role=membership.role, user=user), action=action, target=user.email)


@transaction.atomic
def password_reset_create(*, actor: Actor, membership: Membership) -> tuple[PasswordReset, str]:
    """A one-time link that lets `membership`'s user set a new password; shown once, valid a day.

    Refused for someone who is also in another team: an admin of one team must not be able
    to take over an account that reaches teams they do not administer."""
    require_admin(actor, membership.team_id, "issue password reset links")
    user = membership.user
    if Membership.objects.filter(user=user).exclude(team_id=membership.team_id).exists():
        raise ValidationError(
            f"{user.email} is also in other teams, so only they can reset their password: "
            "send them to “Forgot your password?” on the log-in page."
        )
    secret = secrets.token_urlsafe(32)
    reset = PasswordReset.objects.create(
        user=user,
        team=membership.team,
        token_hash=hash_secret(secret),
        created_by=actor.user,
        expires_at=timezone.now() + PASSWORD_RESET_LIFETIME,
    )
    audit(actor=actor, action="member.password_reset_link", target=user.email, reset=reset.pk)
    return reset, secret


def password_reset_lookup(secret: str) -> PasswordReset | None:
    """The usable reset a link stands for, or None (unknown, used or expired)."""
    if not secret:
        return None
    reset = PasswordReset.objects.select_related("user", "team").filter(token_hash=hash_secret(secret)).first()
    return reset if reset is not None and reset.is_usable else None


@transaction.atomic
def password_reset_complete(*, secret: str, new_password: str, new_password_again: str) -> User:
    """Set the password a reset link is for, and use the link up (with any other open link)."""
    reset = PasswordReset.objects.select_for_update().filter(token_hash=hash_secret(secret or "")).first()
    if reset is None or not reset.is_usable:
        raise ValidationError("This reset link is invalid, expired or already used. Ask your admin for a new one.")
    user = reset.user
    _check_password(new_password, user, field="new_password")
    if new_password != new_password_again:
        raise ValidationError({"new_password_again": "The two new passwords differ; type the same one twice."})
    user.set_password(new_password)
    user.save(update_fields=["password"])
    PasswordReset.objects.filter(user=user, used_at__isnull=True).update(used_at=timezone.now())
    lockout.forget(user.email)
    membership = Membership.objects.filter(user=user, team=reset.team).first()
    if membership is not None:
        audit(
            actor=Actor(team=reset.team, role=membership.role, user=user),
            action="user.password_reset",
            target=user.email,
            reset=reset.pk,
        )
    return user


# API tokens -------------------------------------------------------------------------


class TokenExpired(Exception):
    """A known, unrevoked token past its expiry: every door tells the caller so, with the date."""

    def __init__(self, token: ApiToken) -> None:
        when = token.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        super().__init__(f"API token expired on {when}; create a new one")
        self.token = token


_TOKEN_AUDIT = {TokenKind.USER: "token", TokenKind.SERVICE: "service_account"}  # audit action prefix


@transaction.atomic
def token_create(
    *,
    actor: Actor,
    kind: str,
    name: str,
    access: str = TokenAccess.READ_WRITE,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """A new token; the plaintext is returned once and only its hash is stored.

    User tokens belong to the acting user; service accounts need an admin (PermissionDenied).
    `expires_at` None: the token works until revoked.
    """
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError({"name": "Enter a name that says what the token is for."})
    if len(name) > 100:
        raise ValidationError({"name": "A token name has at most 100 characters."})
    if kind not in TokenKind.values:
        raise ValidationError({"kind": f"Choose one of: {', '.join(TokenKind.values)}."})
    if access not in TokenAccess.values:
        raise ValidationError({"access": f"Choose one of: {', '.join(TokenAccess.values)}."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "Choose an expiry in the future, or none for a token that never expires."})
    if actor.user is None:
        raise ValidationError("Only a person can create tokens; service accounts cannot.")
    if kind == TokenKind.SERVICE:
        require_admin(actor, actor.team.pk, "create service accounts")
    same_name = (
        ApiToken.objects.filter(team=actor.team, kind=TokenKind.SERVICE, name=name, revoked_at__isnull=True).first()
        if kind == TokenKind.SERVICE
        else None
    )
    if same_name is not None and same_name.is_expired:
        raise ValidationError({"name": f"A service account named “{name}” exists (expired); revoke it first."})
    if same_name is not None:
        raise ValidationError({"name": f"A service account named “{name}” already exists."})
    secret = TOKEN_PREFIXES[kind] + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        kind=kind,
        team=actor.team,
        user=actor.user if kind == TokenKind.USER else None,
        name=name,
        access=access if kind == TokenKind.SERVICE else TokenAccess.READ_WRITE,
        prefix=secret[:DISPLAY_PREFIX_LENGTH],
        token_hash=hash_secret(secret),
        created_by=actor.user,
        expires_at=expires_at,
    )
    audit(
        actor=actor,
        action=f"{_TOKEN_AUDIT[kind]}.create",
        target=token.name,
        prefix=token.prefix,
        access=token.access,
        **({"expires_at": expires_at.isoformat()} if expires_at else {}),
    )
    return token, secret


@transaction.atomic
def token_revoke(*, actor: Actor, token: ApiToken) -> None:
    """Revoke a token: a person revokes their own tokens, an admin the team's service accounts."""
    if token.kind == TokenKind.SERVICE:
        require_admin(actor, token.team_id, "revoke service accounts")
    elif token.team_id != actor.team.pk or actor.user is None or token.user_id != actor.user.pk:
        raise PermissionDenied("Only its owner may revoke a personal token.")
    if ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
        audit(actor=actor, action=f"{_TOKEN_AUDIT[token.kind]}.revoke", target=token.name, prefix=token.prefix)


def token_authenticate(secret: str) -> Actor | None:
    """The actor a bearer token stands for, or None when it is unknown, revoked or orphaned.
    TokenExpired for a token past its expiry, so the caller can say why it is refused."""
    if not secret or not secret.startswith(tuple(TOKEN_PREFIXES.values())):
        return None
    token = (
        ApiToken.objects.select_related("team", "user")
        .filter(token_hash=hash_secret(secret), revoked_at__isnull=True)
        .first()
    )
    if token is None:
        return None
    if token.is_expired:
        raise TokenExpired(token)
    if token.kind == TokenKind.SERVICE:
        actor = Actor(team=token.team, role=SERVICE_ACCESS_ROLE[token.access], token=token)
    else:
        if not token.user.is_active:
            return None
        membership = Membership.objects.filter(user=token.user, team=token.team).first()
        if membership is None:
            return None
        actor = Actor(team=token.team, role=membership.role, user=token.user, token=token)
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return actor


def audit(*, actor: Actor, action: str, target: str, **detail) -> None:
    from accounts.models import AuditEvent

    AuditEvent.objects.create(
        team=actor.team, actor=actor.label, action=action, target=target, detail=detail,
        address=client_address() or None,
    )  # fmt: skip
