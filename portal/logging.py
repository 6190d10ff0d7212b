"""A log filter that blanks credentials wherever a log line carries them: the message, its
arguments, and the traceback or stack the formatter would append."""

from __future__ import annotations

import logging
import re

_PATTERNS = [
    # Authorization: Basic xxx / Bearer xxx
    (re.compile(r"(?i)\b(authorization['\"]?\s*[:=]\s*['\"]?)(basic|bearer)\s+[^\s'\",}]+"), r"\1\2 [redacted]"),
    # password=..., token: ..., secret ...
    (
        re.compile(
            r"(?i)\b((?:password|passwd|secret|token|access_key|private_key)['\"]?\s*[:=]\s*['\"]?)[^\s'\",}&]+"
        ),
        r"\1[redacted]",
    ),
    # scheme://user:pass@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), r"\1[redacted]@"),
]

_traceback_formatter = logging.Formatter()


def uvicorn_access_log_wanted() -> bool:
    """False under `uvicorn --no-access-log` (the Procfile's): uvicorn has then left its
    "uvicorn.access" logger without handlers and not propagating before Django configures
    logging, and LOGGING must not turn it back on. Each access line (formatted, redacted,
    written) cost the token service ~0.2 ms of CPU per request (bench/tokens.py)."""
    access = logging.getLogger("uvicorn.access")
    return bool(access.handlers) or access.propagate


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    """Installed on the root handler, which every logger writes through (settings.LOGGING routes
    Django's, uvicorn's and celery's loggers there too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            return self._redact(record)
        except ImportError:
            # At interpreter exit (an unclosed aiohttp session's __del__ logging) re can no longer
            # import its helpers: drop the line rather than print it unredacted.
            return False

    def _redact(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        # A formatter appends the traceback (exc_text, formatted once and cached on the record)
        # after this filter has run: format it here, redacted, so every handler uses this text.
        if record.exc_info and not record.exc_text:
            record.exc_text = _traceback_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
