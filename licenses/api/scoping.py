"""What the app-scoped API views share: the app named in the URL, in the caller's team."""

from __future__ import annotations

from django.shortcuts import get_object_or_404

from licenses.models import App
from portal.api import TeamScopedMixin


class AppScopedMixin(TeamScopedMixin):
    """The app named in the URL, looked up in the caller's team (another team's is a 404)."""

    team_field = "app__team"

    def app(self) -> App:
        if not hasattr(self, "_app"):
            self._app = get_object_or_404(App, slug=self.kwargs["app_slug"], team=self.request.actor.team)
        return self._app

    def get_queryset(self):
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):
            return queryset
        return queryset.filter(app=self.app())
