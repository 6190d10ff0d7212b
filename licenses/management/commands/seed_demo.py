"""A demo team so a newcomer can click through right after `make run`: an admin, an app, and
a first release of it (a settings file and a small Deployment) promoted to `stable`."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from accounts import services
from accounts.access import Actor
from accounts.models import Role, Team, User
from licenses.models import App

# The demo release: public images, so the worker can resolve them without any credential.
DEMO_SETTINGS = """\
# The app's settings: the images it uses and where they come from.
images:
- source: public          # anonymous pulls; a name without a host is Docker Hub
  name: nginx
  tag: "1.27"
- source: public
  name: redis
  tag: "7.2"
"""
DEMO_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo-web
  labels: {app: demo-web}
spec:
  replicas: 1
  selector:
    matchLabels: {app: demo-web}
  template:
    metadata:
      labels: {app: demo-web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
      - name: cache
        image: redis:7.2
"""

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-portal-2026"
DEMO_TEAM = "Demo Vendor"


class Command(BaseCommand):
    help = "Create (once) a demo team with an admin, an app and its first release, and print the login."

    def handle(self, *args, **options):
        user = User.objects.filter(email=DEMO_EMAIL).first()
        if user is None:
            user, team = services.user_signup(
                email=DEMO_EMAIL, password=DEMO_PASSWORD, team_name=DEMO_TEAM, name="Demo"
            )
        team = Team.objects.get(memberships__user=user, memberships__role=Role.ADMIN, name=DEMO_TEAM)
        actor = Actor(team=team, role=Role.ADMIN, user=user)
        app = App.objects.filter(slug="demo-app", team=team).first()
        if app is None and not App.objects.filter(slug="demo-app").exists():
            from licenses.services import app_create

            app = app_create(actor=actor, name="Demo App", slug="demo-app")
        if app is not None and not app.releases.exists():
            from licenses.releases import release_create

            files = {"app.yaml": DEMO_SETTINGS, "manifests/web.yaml": DEMO_DEPLOYMENT}
            release_create(
                actor=actor,
                app=app,
                files=files,
                version="1.0.0",
                notes="The demo's first release.",
                promote_to="stable",
            )
        self.stdout.write(f"Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD} (team “{DEMO_TEAM}”)")
