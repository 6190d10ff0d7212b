"""Enqueue Celery work without ever hanging a request when the broker is down."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)


class QueueUnavailable(Exception):
    """The broker could not take the message; the caller answers 503."""


def enqueue(task: Task, *args: Any) -> str:
    """Send a task with ids only as arguments; returns the Celery task id."""
    try:
        result = task.apply_async(
            args=args,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
        )
    except (OperationalError, OSError) as e:
        logger.warning("could not enqueue %s: %s", task.name, type(e).__name__)
        raise QueueUnavailable("The task queue is unavailable; try again in a moment.") from e
    return result.id
