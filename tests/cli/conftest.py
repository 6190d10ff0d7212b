"""The real `portal` CLI, run as a subprocess against the portal served by `live_server`.

Nothing is mocked: the CLI speaks HTTP to Django's threaded test server, which uses the
test database, so tokens made here with the services are the ones the CLI presents. The
CLI acts as the shared cast's admin of Acme (`actor`, tests/conftest.py).
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from dataclasses import dataclass

import pytest

from accounts.access import Actor
from accounts.models import TokenAccess, TokenKind
from accounts.services import token_create


@dataclass
class Portal:
    """Runs `python -m portal_cli.main ARGS` with PORTAL_URL and PORTAL_API_TOKEN set."""

    url: str
    token: str | None

    def env(self, token: str | None, url: str | None, extra: dict[str, str] | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
        env["PORTAL_URL"] = url if url is not None else self.url
        if token:
            env["PORTAL_API_TOKEN"] = token
        env.update(extra or {})
        return env

    def __call__(
        self,
        *args: str,
        token: str | None = "default",
        url: str | None = None,
        env: dict[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "portal_cli.main", *args],
            env=self.env(self.token if token == "default" else token, url, env),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def on_a_terminal(self, args: list[str], answer: str) -> subprocess.CompletedProcess[str]:
        """Runs `portal ARGS` with a pseudo-terminal as stdin and types `answer`."""
        controller, terminal = pty.openpty()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "portal_cli.main", *args],
                env=self.env(self.token, None, None),
                stdin=terminal,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            os.close(terminal)
            os.write(controller, answer.encode() + b"\n")
            out, err = proc.communicate(timeout=60)
        finally:
            os.close(controller)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture
def cli_token(actor: Actor) -> str:
    _, secret = token_create(actor=actor, kind=TokenKind.USER, name="cli tests")
    return secret


@pytest.fixture
def read_only_service_token(actor: Actor) -> str:
    _, secret = token_create(actor=actor, kind=TokenKind.SERVICE, name="ci", access=TokenAccess.READ_ONLY)
    return secret


@pytest.fixture
def portal(live_server, cli_token: str) -> Portal:
    return Portal(url=live_server.url, token=cli_token)
