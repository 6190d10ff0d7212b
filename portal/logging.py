"""A log filter that blanks credentials wherever a message or its arguments carry them."""

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


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    """Installed on the root handler, so every logger's output passes through it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True
