"""The app slug grammar: it appears in image paths, so it is a lowercase DNS label."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")

# Path segments the portal and registries use themselves, or that would confuse a reader.
RESERVED_SLUGS = frozenset(
    {
        "_catalog", "account", "accounts", "admin", "api", "app", "apps", "auth", "docs", "healthz",
        "images", "invite", "invites", "library", "licenses", "login", "logout", "metrics", "new", "portal",
        "proxy", "registry", "schema", "settings", "signup", "static", "status", "team", "teams",
        "token", "tokens", "v1", "v2", "www",
    }
)  # fmt: skip


def validate_app_slug(slug: str) -> None:
    if not slug:
        raise ValidationError("Enter a slug.", code="required")
    if len(slug) > 63:
        raise ValidationError("A slug has at most 63 characters.", code="max_length")
    if not SLUG_RE.match(slug):
        raise ValidationError(
            "Use lowercase letters a–z, digits and hyphens, starting and ending with a letter or digit.",
            code="invalid",
        )
    if slug in RESERVED_SLUGS:
        raise ValidationError(f"“{slug}” is reserved; choose another slug.", code="reserved")
