"""Write the CNCF Distribution config for the portal's private registry."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import yaml
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal import registry_tokens

STORAGE_PREFIX = "REGISTRY_STORAGE_"


def storage_config(var_dir: Path) -> dict:
    """Filesystem under var/registry by default; any Distribution storage driver from the
    environment: REGISTRY_STORAGE_DRIVER=s3 with REGISTRY_STORAGE_S3_BUCKET=…, _REGION=…, etc."""
    driver = os.environ.get("REGISTRY_STORAGE_DRIVER", "filesystem").strip().lower()
    if driver == "filesystem":
        options = {"rootdirectory": os.environ.get("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", str(var_dir / "data"))}
    else:
        prefix = f"{STORAGE_PREFIX}{driver.upper()}_"
        options = {k[len(prefix) :].lower(): v for k, v in os.environ.items() if k.startswith(prefix)}
        if not options:
            raise CommandError(f"REGISTRY_STORAGE_DRIVER={driver} needs {prefix}* settings (e.g. {prefix}BUCKET)")
    return {driver: options, "delete": {"enabled": True}}


def build_config(*, addr: str, var_dir: Path, portal_url: str, notify_secret: str) -> dict:
    key = registry_tokens.signing_key()
    bundle = Path(settings.REGISTRY_TOKEN_KEY_FILE).with_suffix(".crt")
    assert bundle.exists(), key  # signing_key() creates the certificate beside the key
    return {
        "version": 0.1,
        # At info, Distribution 2.8 logs each notification endpoint with its headers, which hold
        # the shared secret. REGISTRY_LOG_LEVEL=info in its environment shows more when debugging.
        "log": {"level": "warn", "formatter": "text"},
        "storage": storage_config(var_dir),
        "http": {
            "addr": addr,
            "secret": secrets.token_urlsafe(32),
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        },
        "auth": {
            "token": {
                "realm": f"{portal_url}/v2/token",
                "service": settings.REGISTRY_SERVICE,
                "issuer": settings.REGISTRY_TOKEN_ISSUER,
                "rootcertbundle": str(bundle),
            }
        },
        "notifications": {
            "endpoints": [
                {
                    "name": "portal",
                    "url": f"{portal_url}/hooks/registry",
                    "headers": {"Authorization": [f"Bearer {notify_secret}"]},
                    "timeout": "5s",
                    "threshold": 5,
                    "backoff": "2s",
                    "ignoredmediatypes": ["application/octet-stream"],
                }
            ]
        },
        "health": {"storagedriver": {"enabled": True, "interval": "10s", "threshold": 3}},
    }


class Command(BaseCommand):
    help = "Write the private registry's Distribution config (token auth against this portal)."

    def add_arguments(self, parser):
        parser.add_argument("--output", default=None, help="Default: var/registry/config.yml")
        parser.add_argument("--addr", default=os.environ.get("REGISTRY_ADDR", "127.0.0.1:5000"))
        parser.add_argument("--portal-url", default=settings.PORTAL_URL)

    def handle(self, *args, output, addr, portal_url, **options):
        var_dir = Path(settings.VAR_DIR) / "registry"
        var_dir.mkdir(parents=True, exist_ok=True)
        config = build_config(
            addr=addr, var_dir=var_dir, portal_url=portal_url.rstrip("/"), notify_secret=settings.REGISTRY_NOTIFY_SECRET
        )
        path = Path(output) if output else var_dir / "config.yml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(config, f, sort_keys=False)
        self.stdout.write(str(path))
