"""Apps (what a vendor ships) and, later, the customer licenses to them."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.models import Team


class App(models.Model):
    """A product a vendor ships; its slug is part of every image path, so it never changes."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="apps")
    name = models.CharField(max_length=100)
    slug = models.CharField(max_length=63, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
