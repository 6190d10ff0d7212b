"""Sets request.actor for a logged-in user: their role in the team chosen in the session."""

from __future__ import annotations

from accounts.services import actor_for_user

SESSION_TEAM_KEY = "team_id"


class CurrentTeamMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.actor = None
        if request.user.is_authenticated:
            request.actor = actor_for_user(request.user, request.session.get(SESSION_TEAM_KEY))
            if request.actor is not None and request.session.get(SESSION_TEAM_KEY) != request.actor.team.pk:
                request.session[SESSION_TEAM_KEY] = request.actor.team.pk
        return self.get_response(request)
