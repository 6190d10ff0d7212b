"""The portal's settings plus the failing views of tests/realparts/canary_app.py (log redaction tests)."""

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "tests.realparts.canary_app"
