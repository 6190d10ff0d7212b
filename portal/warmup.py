"""What a process would otherwise do on its first request, done when it starts.

Measured (bench/first_load.py): a fresh process spent ~430 ms of its first page importing the
URLconf (every view module, DRF, the API schema generator, psycopg via postgres fields) and
~90 ms compiling templates; `/images/` then took ~750 ms and `/licenses/new/` ~670 ms."""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

TEMPLATE_SUFFIXES = (".html", ".txt")


def warm_up_registry() -> None:
    """A registry process's share (PORTAL_WEB_ROLE=registry), and the first step of warm_up:
    the URLconf's views, and the registry token key."""
    from django.urls import get_resolver

    from portal import registry_tokens

    get_resolver().url_patterns  # noqa: B018 (the import is the point)
    try:
        registry_tokens.signing_key()
    except OSError as e:  # the first token request tries again, and says why
        logger.warning(
            "the registry signing key file could not be read at start-up (%s)", e.strerror or type(e).__name__
        )


def warm_up() -> None:
    """Import every view (by loading the URLconf), compile every template into the cache and
    load the registry token key (~36 ms; the private registry listing's first call needs it)."""
    from django.template import TemplateSyntaxError, engines

    warm_up_registry()
    for engine in engines.all():
        for directory in getattr(engine, "template_dirs", ()):
            root = Path(directory)
            for path in root.rglob("*"):
                if path.suffix not in TEMPLATE_SUFFIXES:
                    continue
                try:
                    engine.get_template(path.relative_to(root).as_posix())
                except TemplateSyntaxError:
                    logger.exception("template %s does not compile", path)
