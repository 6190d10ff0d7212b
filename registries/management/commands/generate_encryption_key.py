"""Print a new `id:base64key` entry for PORTAL_ENCRYPTION_KEYS."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from portal import crypto


class Command(BaseCommand):
    help = "Print a new id:base64key entry for PORTAL_ENCRYPTION_KEYS (only the entry goes to stdout)."

    def add_arguments(self, parser):
        parser.add_argument("--id", dest="key_id", default="", help="Key id (A-Z a-z 0-9 _ -); random when left out.")

    def handle(self, *args, key_id: str, **options):
        if key_id and not crypto.KEY_ID_RE.match(key_id):
            raise CommandError("--id may use only A-Z a-z 0-9 _ - (at most 32 characters).")
        self.stdout.write(crypto.generate_key(key_id or None))
        self.stderr.write(
            "Put it first in PORTAL_ENCRYPTION_KEYS, keep the old keys after it, deploy, then run "
            "`manage.py rotate_encryption_keys`; remove an old key only when --dry-run shows no row uses it."
        )
