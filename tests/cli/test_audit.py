"""`portal audit ls`: the admin reads the team's audit trail, filtered; others are refused."""

from __future__ import annotations

import json

import pytest

from accounts.models import TokenKind
from accounts.services import token_create
from licenses import services as licenses

pytestmark = pytest.mark.django_db(transaction=True)


def test_audit_ls_lists_the_teams_events_filtered_by_action_prefix(portal, actor):
    licenses.app_create(actor=actor, name="Billing")
    token_create(actor=actor, kind=TokenKind.USER, name="laptop")
    rows = json.loads(portal("audit", "ls", "--action", "app.", "-o", "json").stdout)
    assert [(r["actor"], r["action"], r["target"]) for r in rows] == [("admin@acme.test", "app.create", "billing")]
    table = portal("audit", "ls", "--since", "2000-01-01")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["WHEN", "WHO", "ACTION", "TARGET", "DETAILS", "FROM"]
    assert any("token.create" in line and "laptop" in line for line in lines)
    assert lines.index(next(x for x in lines if "token.create" in x and "laptop" in x)) < lines.index(
        next(x for x in lines if "app.create" in x)
    )


def test_audit_ls_names_a_bad_date_and_refuses_non_admins(portal, read_only_service_token):
    bad = portal("audit", "ls", "--since", "yesterday")
    assert bad.returncode == 1 and "since" in bad.stderr
    refused = portal("audit", "ls", token=read_only_service_token)
    assert refused.returncode == 1 and "does not allow" in refused.stderr
