"""The Images page: the team's external registries (and later each app's private registry)."""

from __future__ import annotations

from django.shortcuts import render

from accounts.access import Perm
from accounts.decorators import team_view


@team_view(Perm.READ)
def image_list(request):
    return render(request, "registries/image_list.html", {"registries": []})
