"""The DRF permission every API view uses: a team actor, and a role allowing the method."""

from __future__ import annotations

from rest_framework import permissions

from accounts.access import Perm


class TeamPermission(permissions.BasePermission):
    """Reads need READ; writes need the view's `write_perm` (WRITE unless it says ADMIN).

    Team isolation itself lives in each view's queryset, filtered by `request.actor.team`.
    """

    message = "Your role in this team does not allow this."

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        actor = getattr(request._request, "actor", None)
        if actor is None:
            self.message = "You are not a member of any team; create one or accept an invite."
            return False
        request.actor = actor
        if request.method in permissions.SAFE_METHODS:
            perm = getattr(view, "read_perm", Perm.READ)
        else:
            perm = getattr(view, "write_perm", Perm.WRITE)
        if not actor.can(perm):
            self.message = "Your role in this team does not allow this."
            return False
        return True
