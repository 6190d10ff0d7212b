"""Re-encrypt every encrypted column (portal.encrypted_fields) under the newest key of PORTAL_ENCRYPTION_KEYS."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from portal import crypto, keys


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted column (registry secrets and tokens, license IDs) under the first key "
        "of PORTAL_ENCRYPTION_KEYS, row by row (no downtime; safe to stop and run again). "
        "--dry-run only counts rows per column and key id."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Report how many rows use which key; change nothing."
        )
        parser.add_argument("--batch-size", type=int, default=100, help="Rows fetched per batch (default 100).")

    def handle(self, *args, dry_run: bool, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            ring = crypto.keyring()
        except ImproperlyConfigured as e:
            raise CommandError(str(e)) from None
        self.stdout.write(f"Key ring: {', '.join(ring.keys)} (new ciphertexts use {ring.primary}).")
        if dry_run:
            self._report(ring)
            return
        to_rotate = keys.encryption_keys_rows_to_rotate(ring)
        for model, rows in to_rotate.items():
            self.stdout.write(f"{model}: {rows} rows have ciphertexts under another key.")
        total = sum(to_rotate.values())
        self.stdout.write(f"{total} rows have credentials under another key.")

        def progress(result: keys.RotationResult) -> None:
            self.stdout.write(f"  {result.rotated}/{total} rows re-encrypted")

        result = keys.encryption_keys_rotate(batch_size=batch_size, progress=progress)
        self.stdout.write(
            f"Re-encrypted {result.rotated} rows under key {result.primary}; {result.remaining} rows left under other keys."
        )
        for label, left in result.remaining_fields.items():
            self.stdout.write(f"  {label}: {result.rotated_fields[label]} re-encrypted, {left} left under other keys")
        if result.failures:
            shown = result.failures[:20]
            lines = [f"{f.model} {f.pk} ({f.field}): {f.reason}" for f in shown]
            more = len(result.failures) - len(shown)
            if more:
                lines.append(f"… and {more} more")
            raise CommandError(
                f"{len(result.failures)} rows could not be decrypted and were left as they are:\n  "
                + "\n  ".join(lines)
                + "\nAdd the missing key to PORTAL_ENCRYPTION_KEYS (after the new one) and run this again."
            )
        if result.remaining:
            raise CommandError(
                f"{result.remaining} rows were written under an older key while this ran (a process still using "
                "the old key ring?). Deploy the new PORTAL_ENCRYPTION_KEYS everywhere and run this again."
            )
        self.stdout.write(f"Done: no stored credential uses a key other than {result.primary}.")

    def _report(self, ring: crypto.KeyRing) -> None:
        for label, counts in keys.encryption_key_usage().items():
            listed = ", ".join(f"{key_id}={n}" for key_id, n in sorted(counts.items())) or "none"
            self.stdout.write(f"{label} rows per key id: {listed}")
        missing = keys.encryption_keys_missing(ring)
        if missing:
            named = ", ".join(f"{key_id} ({', '.join(labels)})" for key_id, labels in missing.items())
            self.stdout.write(f"Key ids not in PORTAL_ENCRYPTION_KEYS (those rows cannot be read): {named}")
        to_rotate = keys.encryption_keys_rows_to_rotate(ring)
        per_model = ", ".join(f"{model}: {rows}" for model, rows in to_rotate.items())
        self.stdout.write(f"Would re-encrypt {sum(to_rotate.values())} rows under key {ring.primary} ({per_model}).")
