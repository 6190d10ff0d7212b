"""Who is acting, for which team, and what their role lets them do."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from accounts.models import ApiToken, Role, Team, TokenAccess, User


class Perm(enum.Enum):
    READ = "read"  # see anything in the team
    WRITE = "write"  # manage registries, apps, licenses
    ADMIN = "admin"  # manage members, invites and service accounts


ROLE_PERMS: dict[str, frozenset[Perm]] = {
    Role.ADMIN: frozenset({Perm.READ, Perm.WRITE, Perm.ADMIN}),
    Role.DEVELOPER: frozenset({Perm.READ, Perm.WRITE}),
    Role.READ_ONLY: frozenset({Perm.READ}),
}

# A service account never administers the team: read/write acts as a developer.
SERVICE_ACCESS_ROLE = {TokenAccess.READ_WRITE: Role.DEVELOPER, TokenAccess.READ_ONLY: Role.READ_ONLY}


@dataclass(frozen=True)
class Actor:
    """Who acts for a team: a member (user), a token (a member's, or a service account's), or
    the portal itself (`system`: a scheduled job such as the daily registry check)."""

    team: Team
    role: str
    user: User | None = None
    token: ApiToken | None = None
    system: str = ""

    @classmethod
    def for_system(cls, team: Team, name: str) -> Actor:
        """The portal acting for `team` on its own, named `name` in audit trails. It holds no
        role, so a service that checks a permission refuses it; it is no member to ask."""
        return cls(team=team, role="", system=name)

    def can(self, perm: Perm) -> bool:
        return perm in ROLE_PERMS.get(self.role, frozenset())

    @property
    def label(self) -> str:
        """How this actor appears in audit trails."""
        if self.system:
            return self.system
        if self.token is not None and self.user is None:
            return f"service account {self.token.name}"
        return self.user.email if self.user else "unknown"
