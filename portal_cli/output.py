"""How results are printed: JSON as the API sent it, or aligned tables for people."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click

FORMATS = ("table", "json")
EMPTY = "-"
# Control characters (C0, DEL, C1) in server data must not reach the terminal as escapes.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Column:
    """One table column: its header and how to get a cell from an API object."""

    header: str
    key: str | Callable[[dict[str, Any]], Any]

    def cell(self, row: dict[str, Any]) -> str:
        value = self.key(row) if callable(self.key) else row.get(self.key)
        return text(value)


def text(value: Any) -> str:
    """A value as one safe line of text."""
    if value is None or value == "":
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(text(v) for v in value) or EMPTY
    return _CONTROL.sub("?", str(value))


def when(value: str | None) -> str:
    """An API timestamp in local time, to the minute."""
    if not value:
        return EMPTY
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return text(value)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def table(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    """Rows under a header, each column as wide as its widest cell."""
    grid = [[c.header for c in columns]] + [[c.cell(row) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in grid)


def record(obj: dict[str, Any], fields: Sequence[Column]) -> str:
    """One object as aligned `label  value` lines."""
    width = max(len(f.header) for f in fields)
    return "\n".join(f"{f.header.ljust(width)}  {f.cell(obj)}".rstrip() for f in fields)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def emit_json(data: Any) -> None:
    click.echo(to_json(data))


def emit_list(fmt: str, rows: list[dict[str, Any]], columns: Sequence[Column], *, empty: str) -> None:
    """A list: JSON array, or a table; an empty table prints `empty` on stderr so stdout stays clean."""
    if fmt == "json":
        emit_json(rows)
    elif rows:
        click.echo(table(rows, columns))
    else:
        click.echo(empty, err=True)


def emit_record(fmt: str, obj: dict[str, Any], fields: Sequence[Column]) -> None:
    if fmt == "json":
        emit_json(obj)
    else:
        click.echo(record(obj, fields))


def emit_value(fmt: str, obj: Any, value: str) -> None:
    """The API object as JSON, or just one value (a slug, a token) for scripts and people."""
    if fmt == "json":
        emit_json(obj)
    else:
        click.echo(text(value))
