"""`portal`: the vendor portal's command line, a thin client of the REST API."""

from __future__ import annotations

__version__ = "0.1.0"
