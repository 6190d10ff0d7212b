"""Create a team and its first admin without a browser (automation bootstrap)."""

from __future__ import annotations

import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import services
from accounts.models import User


class Command(BaseCommand):
    help = 'Create a team with an admin: createteam "Acme" --admin-email E --admin-password-stdin'

    def add_arguments(self, parser):
        parser.add_argument("name", help="Team name")
        parser.add_argument("--admin-email", required=True)
        parser.add_argument(
            "--admin-password-stdin",
            action="store_true",
            help="Read the admin's password from standard input (needed for a new user).",
        )

    def handle(self, *args, name: str, admin_email: str, admin_password_stdin: bool, **options):
        email = admin_email.strip().lower()
        password = sys.stdin.readline().rstrip("\n") if admin_password_stdin else ""
        try:
            with transaction.atomic():
                user = User.objects.filter(email=email).first()
                if user is None:
                    if not password:
                        raise CommandError(f"{email} has no account yet: pass --admin-password-stdin with a password.")
                    user = services.user_create(email=email, password=password)
                team = services.team_create(name=name, admin=user)
        except ValidationError as e:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in e.message_dict.items())) from None
        self.stdout.write(f"Created team “{team.name}” (slug {team.slug}) with admin {user.email}.")
