"""Configuration, failures and --debug: one-line reasons, the right exit codes, no secrets."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from accounts.models import ApiToken

pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_portal_says_so(portal):
    url = f"http://127.0.0.1:{_free_port()}"
    result = portal("app", "ls", url=url)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: cannot reach the portal at {url} (connection refused); is it running? set PORTAL_URL\n"
    )


def test_missing_token_says_where_to_get_one(portal):
    result = portal("app", "ls", token=None)
    assert result.returncode == 1
    assert result.stderr == (
        "error: PORTAL_API_TOKEN is not set; create a token on the API tokens page or with manage.py createtoken\n"
    )


def test_a_url_that_is_not_the_portal(portal, live_server):
    result = portal("app", "ls", url=live_server.url + "/nothing-here")
    assert result.returncode == 1
    assert "is PORTAL_URL the portal?" in result.stderr and result.stderr.count("\n") == 1


def test_bad_configuration_is_a_usage_error(portal):
    assert portal("app", "ls", url="127.0.0.1:8000").returncode == 2
    result = portal("app", "ls", env={"PORTAL_OUTPUT": "xml"})
    assert (result.returncode, result.stderr) == (2, "error: PORTAL_OUTPUT must be one of table, json, not “xml”\n")


def test_usage_errors_exit_2(portal):
    assert portal("app", "create").returncode == 2
    assert portal("app", "ls", "--output", "yaml").returncode == 2
    assert portal("token", "revoke", "abc").returncode == 2


def test_output_is_chosen_by_flag_at_any_level_or_env(portal):
    portal("app", "create", "Widget")
    assert json.loads(portal("-o", "json", "app", "ls").stdout)[0]["slug"] == "widget"
    assert json.loads(portal("app", "-o", "json", "ls").stdout)[0]["slug"] == "widget"
    assert json.loads(portal("app", "ls", env={"PORTAL_OUTPUT": "json"}).stdout)[0]["slug"] == "widget"
    assert portal("app", "ls", "-o", "table", env={"PORTAL_OUTPUT": "json"}).stdout.startswith("SLUG")


def test_debug_shows_the_exchange_without_secrets(portal, cli_token):
    result = portal("--debug", "token", "create", "deploy")
    assert result.returncode == 0, result.stderr
    new = result.stdout.strip()
    assert "> POST " in result.stderr and "< 201 Created" in result.stderr
    assert "authorization: Bearer [redacted]" in result.stderr
    assert '"token": "[redacted]"' in result.stderr
    assert cli_token not in result.stderr and new not in result.stderr
    assert cli_token[4:] not in result.stderr and new[4:] not in result.stderr
    assert ApiToken.objects.filter(name="deploy").exists()


def test_debug_on_a_failure_redacts_too(portal, cli_token):
    result = portal("app", "create", "Widget", "--slug", "Bad", "--debug")
    assert result.returncode == 1
    assert "< 400 Bad Request" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: slug: ")
    assert cli_token not in result.stderr


def test_the_installed_portal_command_and_python_m_both_run():
    script = Path(sys.executable).with_name("portal")
    assert script.exists(), "install the CLI with: pip install -e ."
    for argv in ([str(script), "--version"], [sys.executable, "-m", "portal_cli", "--version"]):
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert (result.returncode, result.stdout) == (0, "portal, version 0.1.0\n")
