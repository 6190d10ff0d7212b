"""The Celery app: worker and beat load tasks from every installed Django app."""

from __future__ import annotations

import logging.config
import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def use_the_portal_logging(**kwargs) -> None:
    """Worker and beat log through settings.LOGGING (its redaction filter), like the web process.
    With a receiver here celery sets up no handler of its own; it would give the task loggers
    ("celery.task.*") one that writes to stderr unfiltered. Levels come from LOG_LEVEL, not --loglevel."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
