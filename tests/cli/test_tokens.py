"""`portal token create|ls|revoke` and `portal whoami`."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import ApiToken

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = re.compile(r"vpu_[A-Za-z0-9_-]{20,}")


def test_token_create_prints_only_the_token(portal):
    result = portal("token", "create", "deploy")
    assert result.returncode == 0, result.stderr
    assert TOKEN.fullmatch(result.stdout.rstrip("\n")) and result.stdout.endswith("\n")
    assert result.stdout.count("\n") == 1
    new = result.stdout.strip()
    who = portal("whoami", "-o", "json", token=new)
    assert who.returncode == 0 and json.loads(who.stdout)["acting_as"] == "admin@acme.test"


def test_token_create_json_is_the_api_object(portal):
    result = portal("token", "create", "deploy", "-o", "json")
    token = json.loads(result.stdout)
    assert token["name"] == "deploy" and token["active"] is True
    assert TOKEN.fullmatch(token["token"]) and token["token"].startswith(token["prefix"])


def test_token_list_and_revoke(portal):
    new = portal("token", "create", "deploy").stdout.strip()
    table = portal("token", "ls")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "PREFIX", "STATUS", "CREATED", "LAST", "USED", "EXPIRES"]
    assert any("deploy" in line and new[:12] + "…" in line and "active" in line for line in lines)
    assert new not in table.stdout

    token_id = ApiToken.objects.get(name="deploy").pk
    revoked = portal("token", "revoke", str(token_id))
    assert (revoked.returncode, revoked.stdout) == (0, f"Revoked token {token_id} (deploy).\n")
    refused = portal("whoami", token=new)
    assert refused.returncode == 1
    assert refused.stderr == "error: Invalid or revoked API token; check PORTAL_API_TOKEN\n"

    tokens = json.loads(portal("token", "ls", "-o", "json").stdout)
    assert {t["name"]: t["active"] for t in tokens} == {"deploy": False, "cli tests": True}


def test_revoking_the_token_in_use_works_and_reports_it(portal, cli_token):
    token_id = ApiToken.objects.get(name="cli tests").pk
    result = portal("token", "revoke", str(token_id), "-o", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["active"] is False
    assert portal("app", "ls").returncode == 1


def test_revoke_of_an_unknown_id(portal):
    result = portal("token", "revoke", "999999")
    assert result.returncode == 1
    assert result.stderr == "error: no token with ID 999999 among yours; see: portal token ls\n"


def test_revoked_token_is_refused_with_a_clear_reason(portal, cli_token):
    ApiToken.objects.filter(name="cli tests").update(revoked_at="2024-01-01T00:00:00Z")
    result = portal("app", "ls")
    assert (result.returncode, result.stdout) == (1, "")
    assert "Invalid or revoked API token" in result.stderr
    assert result.stderr.count("\n") == 1


def test_service_accounts_have_no_personal_tokens(portal, read_only_service_token):
    result = portal("token", "create", "x", token=read_only_service_token)
    assert result.returncode == 1
    assert result.stderr == "error: Service accounts have no personal tokens.\n"


def test_whoami(portal, live_server):
    table = portal("whoami")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines() == [
        "team       Acme (acme)",
        "role       admin",
        "acting as  admin@acme.test",
        f"portal     {live_server.url}",
    ]
    assert json.loads(portal("whoami", "-o", "json").stdout) == {
        "name": "Acme",
        "slug": "acme",
        "role": "admin",
        "acting_as": "admin@acme.test",
    }


def test_token_create_expires_in_sets_the_expiry_and_ls_shows_it(portal):
    before = datetime.now(UTC)
    result = portal("token", "create", "deploy", "--expires-in", "30d", "-o", "json")
    assert result.returncode == 0, result.stderr
    expires = datetime.fromisoformat(json.loads(result.stdout)["expires_at"].replace("Z", "+00:00"))
    assert before + timedelta(days=30) - timedelta(seconds=1) <= expires <= datetime.now(UTC) + timedelta(days=30)
    assert ApiToken.objects.get(name="deploy").expires_at == expires
    table = portal("token", "ls").stdout.splitlines()
    row = next(line for line in table if "deploy" in line)
    assert row.endswith(expires.astimezone().strftime("%Y-%m-%d %H:%M"))
    assert next(line for line in table if "cli tests" in line).endswith("never")


@pytest.mark.parametrize("value", ["30", "soon", "0d", "-3d", "30y"])
def test_token_create_refuses_an_expiry_that_is_no_duration(portal, value):
    result = portal("token", "create", "deploy", "--expires-in", value)
    assert result.returncode == 2
    assert "use a number and a unit: 12h, 30d or 8w" in result.stderr
    assert not ApiToken.objects.filter(name="deploy").exists()


def test_an_expired_token_is_refused_naming_its_expiry(portal, cli_token):
    ApiToken.objects.filter(name="cli tests").update(expires_at="2024-01-01T00:00:00Z")
    result = portal("app", "ls")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "error: API token expired on 2024-01-01 00:00 UTC; create a new one; check PORTAL_API_TOKEN\n"
    )
