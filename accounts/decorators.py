"""The one guard every team page uses: logged in, in a team, with a role allowing the action."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect

from accounts.access import Perm


def team_view(perm: Perm = Perm.READ, *, write: Perm | None = None):
    """`perm` guards every method; `write` (default WRITE) guards POST."""
    write = write or Perm.WRITE

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            actor = request.actor
            if actor is None:
                messages.info(request, "You are not in a team yet: create one, or open an invite link.")
                return redirect("accounts:team-create")
            needed = write if request.method == "POST" else perm
            if not actor.can(needed) or not actor.can(perm):
                raise PermissionDenied("Your role in this team does not allow this.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
