"""Create an API token without a browser; prints only the token on stdout."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone

from accounts import services
from accounts.access import Actor
from accounts.models import Membership, Role, TokenAccess, TokenKind


class Command(BaseCommand):
    help = "createtoken --email E --team T [--service-account NAME [--read-only]] [--name N] [--expires-in-days D]"

    def add_arguments(self, parser):
        parser.add_argument(
            "--email", required=True, help="The user the token acts as, or who creates the service account"
        )
        parser.add_argument("--team", required=True, help="Team name or slug")
        parser.add_argument("--service-account", metavar="NAME", help="Create a team service account with this name")
        parser.add_argument("--read-only", action="store_true", help="Service account may only read")
        parser.add_argument("--name", default="", help="Name of a user token (default: cli)")
        parser.add_argument(
            "--expires-in-days", type=int, metavar="DAYS", help="Refuse the token after this many days (default: never)"
        )

    def handle(self, *args, email, team, service_account, read_only, name, expires_in_days, **options):
        if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
            raise CommandError("--expires-in-days: give a number of days from 1 to 3650.")
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        membership = (
            Membership.objects.select_related("team", "user")
            .filter(user__email=email.strip().lower())
            .filter(Q(team__slug=team) | Q(team__name__iexact=team))
            .first()
        )
        if membership is None:
            raise CommandError(f"No member {email} in a team named {team!r}.")
        actor = Actor(team=membership.team, role=membership.role, user=membership.user)
        if read_only and not service_account:
            raise CommandError("--read-only applies to --service-account; a user token has its user's role.")
        try:
            if service_account:
                if membership.role != Role.ADMIN:
                    raise CommandError(
                        f"{email} is not an admin of {membership.team.name}; only admins create service accounts."
                    )
                access = TokenAccess.READ_ONLY if read_only else TokenAccess.READ_WRITE
                _, secret = services.token_create(
                    actor=actor, kind=TokenKind.SERVICE, name=service_account, access=access, expires_at=expires_at
                )
            else:
                _, secret = services.token_create(
                    actor=actor, kind=TokenKind.USER, name=name or "cli", expires_at=expires_at
                )
        except ValidationError as e:
            raise CommandError(" ".join(e.messages)) from None
        self.stdout.write(secret)
