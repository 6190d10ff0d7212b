"""Secrets reach the CLI through stdin, a hidden prompt or a file, never argv (`ps`, shell history)."""

from __future__ import annotations

import sys
from typing import BinaryIO

import click

from portal_cli.context import CliError, stdin_is_terminal

# The portal refuses longer secrets; reading stops here so a wrong file cannot fill memory.
MAX_SECRET_BYTES = 64 * 1024


def strip_one_newline(value: str) -> str:
    """`echo "$PW" | portal …` adds one newline; anything else (spaces, more newlines) belongs to the secret."""
    if value.endswith("\r\n"):
        return value[:-2]
    return value[:-1] if value.endswith("\n") else value


def read_stdin_secret(option: str, *, what: str) -> str:
    """The secret piped to stdin (one trailing newline stripped), or typed at a hidden prompt on a terminal."""
    if stdin_is_terminal():
        value = click.prompt(what[:1].upper() + what[1:], hide_input=True, err=True, default="", show_default=False)
    else:
        value = strip_one_newline(_decode(_read_limited(sys.stdin.buffer, option), option, f"the {what} on stdin"))
    if not value:
        raise CliError(
            f"{option}: stdin is empty; pipe the {what} in, e.g. printf '%s' \"$SECRET\" | portal …", exit_code=2
        )
    return value


def read_secret_file(path: str, option: str, *, what: str) -> str:
    """A secret file's whole text (`-` reads stdin); it is sent as is."""
    if path == "-":
        if stdin_is_terminal():
            raise CliError(f"{option} -: pipe the {what} to stdin, or give the file's path", exit_code=2)
        data = _read_limited(sys.stdin.buffer, option)
    else:
        try:
            with open(path, "rb") as f:
                data = _read_limited(f, option)
        except OSError as e:
            raise CliError(f"{option}: cannot read {path}: {e.strerror or type(e).__name__}", exit_code=2) from None
    value = _decode(data, option, f"the {what} in {'stdin' if path == '-' else path}")
    if not value.strip():
        raise CliError(f"{option}: {'stdin' if path == '-' else path} is empty; give the {what}", exit_code=2)
    return value


def _read_limited(stream: BinaryIO, option: str) -> bytes:
    data = stream.read(MAX_SECRET_BYTES + 1)
    if len(data) > MAX_SECRET_BYTES:
        raise CliError(f"{option}: longer than {MAX_SECRET_BYTES // 1024} KiB; is it the right input?", exit_code=2)
    return data


def _decode(data: bytes, option: str, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CliError(f"{option}: {where} is not UTF-8 text", exit_code=2) from None
