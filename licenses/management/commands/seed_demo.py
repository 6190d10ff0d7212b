"""A demo team so a newcomer can click through right after `make run`."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from accounts import services
from accounts.access import Actor
from accounts.models import Role, Team, User
from licenses.models import App

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-portal-2026"
DEMO_TEAM = "Demo Vendor"


class Command(BaseCommand):
    help = "Create (once) a demo team with an admin and an app, and print the login."

    def handle(self, *args, **options):
        user = User.objects.filter(email=DEMO_EMAIL).first()
        if user is None:
            user, team = services.user_signup(
                email=DEMO_EMAIL, password=DEMO_PASSWORD, team_name=DEMO_TEAM, name="Demo"
            )
        team = Team.objects.get(memberships__user=user, memberships__role=Role.ADMIN, name=DEMO_TEAM)
        if not App.objects.filter(slug="demo-app").exists():
            from licenses.services import app_create

            app_create(actor=Actor(team=team, role=Role.ADMIN, user=user), name="Demo App", slug="demo-app")
        self.stdout.write(f"Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD} (team “{DEMO_TEAM}”)")
