from __future__ import annotations

from accounts.access import Perm
from accounts.services import memberships_of


def current_team(request) -> dict:
    actor = getattr(request, "actor", None)
    if actor is None:
        return {"actor": None}
    return {
        "actor": actor,
        "can_write": actor.can(Perm.WRITE),
        "can_admin": actor.can(Perm.ADMIN),
        "my_memberships": memberships_of(request.user) if request.user.is_authenticated else [],
    }
