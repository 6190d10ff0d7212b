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


# Task outcomes in the metrics (portal_celery_tasks_total). portal.metrics is imported in the
# handler, not here: this module loads before Django's settings, and prometheus-client must
# see PROMETHEUS_MULTIPROC_DIR (which the settings set) when it is first imported.
@signals.task_success.connect
def count_task_success(sender=None, **kwargs) -> None:
    from portal import metrics

    metrics.task_outcome(sender.name, "success")


@signals.task_failure.connect
def count_task_failure(sender=None, **kwargs) -> None:
    from portal import metrics

    metrics.task_outcome(sender.name, "failure")


@signals.task_retry.connect
def count_task_retry(sender=None, **kwargs) -> None:
    from portal import metrics

    metrics.task_outcome(sender.name, "retry")
