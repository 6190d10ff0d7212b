"""Users, teams, memberships with roles, invites and API tokens."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        return self.create_user(email, password, is_staff=True, is_superuser=True, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    def __str__(self) -> str:
        return self.email


class Team(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    DEVELOPER = "developer", "Developer"
    READ_ONLY = "read-only", "Read-only"


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "team"], name="one_membership_per_team")]
        ordering = ["user__email"]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


class Invite(models.Model):
    """A link that lets whoever holds it join the team with a role; only its hash is stored."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invites")
    role = models.CharField(max_length=20, choices=Role.choices)
    email = models.EmailField(blank=True, help_text="Optional: only this address may accept.")
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"invite to {self.team} as {self.role}"

    @property
    def is_usable(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()


class PasswordReset(models.Model):
    """A one-time link an admin issues so a member can set a new password; only its hash is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="password_resets")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"password reset for {self.user}"

    @property
    def is_usable(self) -> bool:
        return self.used_at is None and self.expires_at > timezone.now()


class TokenKind(models.TextChoices):
    USER = "user", "User token"
    SERVICE = "service", "Service account"


class TokenAccess(models.TextChoices):
    READ_ONLY = "read-only", "Read-only"
    READ_WRITE = "read-write", "Read/write"


class ApiToken(models.Model):
    """A bearer token for the API and the private registry. Only a hash is stored.

    A user token acts as its user with that user's current role in the team; a service
    account token acts for the team with its own fixed access.
    """

    kind = models.CharField(max_length=10, choices=TokenKind.choices)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_tokens")
    user = models.ForeignKey(User, on_delete=models.CASCADE, null=True, blank=True, related_name="api_tokens")
    name = models.CharField(max_length=100)
    access = models.CharField(max_length=10, choices=TokenAccess.choices, default=TokenAccess.READ_WRITE)
    prefix = models.CharField(max_length=16, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Refused from then on; empty: never expires.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(kind="user", user__isnull=False) | models.Q(kind="service", user__isnull=True)),
                name="user_token_has_user_service_token_has_none",
            ),
            models.UniqueConstraint(
                fields=["team", "name"],
                condition=models.Q(kind="service", revoked_at__isnull=True),
                name="unique_active_service_account_name",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        """Usable now: neither revoked nor expired."""
        return self.revoked_at is None and not self.is_expired


class AuditEvent(models.Model):
    """Who changed what in a team; never holds a secret."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="audit_events")
    actor = models.CharField(max_length=254)
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=255)
    detail = models.JSONField(default=dict, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)  # where the request came from
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.target}"


class DomainKind(models.TextChoices):
    PROXY = "proxy", "Proxy"  # /v2/ pulls through the proxy, the token service, customer downloads
    REGISTRY = "registry", "Registry"  # the private registry's host


class DomainStatus(models.TextChoices):
    PENDING = "pending", "pending"  # added; its TXT record not seen yet
    VERIFIED = "verified", "verified"  # the TXT record was seen; the portal answers on it
    LOST = "lost", "lost"  # verified once, its record gone at a re-check: no longer used


class CustomDomain(models.Model):
    """A host name of the team's own (proxy.vendor.com) that customers use instead of the
    portal's. Proven by a TXT record `_portal-challenge.<domain>` holding `challenge`; only a
    verified domain is answered on, and one per kind may be the team's default."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="custom_domains")
    domain = models.CharField(max_length=253, unique=True)  # lowercase, IDNA (xn--) form, no port
    kind = models.CharField(max_length=16, choices=DomainKind.choices)
    status = models.CharField(max_length=16, choices=DomainStatus.choices, default=DomainStatus.PENDING)
    challenge = models.CharField(max_length=64)
    is_default = models.BooleanField(default=False)
    check_error = models.CharField(max_length=300, blank=True)  # why the last check failed
    checked_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team", "kind", "domain"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "kind"], condition=models.Q(is_default=True), name="one_default_domain_per_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.domain} ({self.kind}, {self.status})"

    @property
    def challenge_name(self) -> str:
        return f"_portal-challenge.{self.domain}"
