"""What every command shares: --output/--debug, the configured client, and one-line errors."""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click

from portal_cli.client import DEFAULT_TIMEOUT, PortalClient
from portal_cli.output import FORMATS

DEFAULT_URL = "http://127.0.0.1:8000"
MISSING_TOKEN = "PORTAL_API_TOKEN is not set; create a token on the API tokens page or with manage.py createtoken"

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """A failure shown as `error: <one line>` on stderr; exit 1, or 2 for usage mistakes."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(" ".join(message.split()))
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


@dataclass
class State:
    """Options given at any level (`portal -o json app ls` or `portal app ls -o json`)."""

    output: str | None = None
    debug: bool = False


def _state(ctx: click.Context) -> State:
    return ctx.ensure_object(State)


def _set_output(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        _state(ctx).output = value


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        _state(ctx).debug = True


def common_options(f: F) -> F:
    """`--output` and `--debug`, accepted on the root, on every group and on every command."""
    f = click.option(
        "--output",
        "-o",
        type=click.Choice(FORMATS),
        default=None,
        expose_value=False,
        callback=_set_output,
        help="table (default) or json, the API's objects; also PORTAL_OUTPUT.",
    )(f)
    f = click.option(
        "--debug",
        is_flag=True,
        default=False,
        expose_value=False,
        callback=_set_debug,
        help="Print HTTP requests and responses to stderr, secrets redacted.",
    )(f)
    return f


def output_format() -> str:
    state = _state(click.get_current_context())
    fmt = state.output or os.environ.get("PORTAL_OUTPUT", "").strip().lower() or "table"
    if fmt not in FORMATS:
        raise CliError(f"PORTAL_OUTPUT must be one of {', '.join(FORMATS)}, not “{fmt}”", exit_code=2)
    return fmt


def portal_url() -> str:
    url = os.environ.get("PORTAL_URL", "").strip() or DEFAULT_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise CliError(f"PORTAL_URL must look like https://portal.example.com, not “{url}”", exit_code=2)
    if parts.scheme == "http" and not _is_local(parts.hostname):
        click.echo(f"warning: PORTAL_URL uses plain http to {parts.hostname}; your token travels unencrypted", err=True)
    return url.rstrip("/")


def _is_local(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _timeout() -> float:
    raw = os.environ.get("PORTAL_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise CliError(f"PORTAL_TIMEOUT must be a positive number of seconds, not “{raw}”", exit_code=2)
    return value


def _token() -> str:
    token = os.environ.get("PORTAL_API_TOKEN", "").strip()
    if not token:
        raise CliError(MISSING_TOKEN)
    if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        raise CliError("PORTAL_API_TOKEN contains spaces or characters a token never has; paste it exactly")
    return token


def client(*, anonymous: bool = False) -> PortalClient:
    """The API client for this invocation, from PORTAL_URL, PORTAL_API_TOKEN and PORTAL_TIMEOUT;
    `anonymous` sends no token, for public endpoints a customer without one may call."""
    ctx = click.get_current_context()
    debug = _state(ctx).debug
    api = PortalClient(
        portal_url(),
        "" if anonymous else _token(),
        timeout=_timeout(),
        debug=(lambda line: click.echo(line, err=True)) if debug else None,
    )
    ctx.call_on_close(api.close)
    return api


def stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def refuse_without_confirmation(yes: bool, what: str, *, doing: str = "deleting") -> None:
    """Before any request: a destructive command that cannot ask (no terminal) needs --yes."""
    if not yes and not stdin_is_terminal():
        raise CliError(f"not {doing} {what} without confirmation: stdin is not a terminal; pass --yes", exit_code=2)


def confirm_or_stop(yes: bool, question: str, *, refused: str) -> None:
    """Ask on the terminal (unless --yes); a "no" ends the command with `refused`."""
    if not yes and not click.confirm(question, default=False, err=True):
        raise CliError(refused)
