from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from accounts.models import ApiToken, Membership, Role, Team, User
from tests import factories

pytestmark = pytest.mark.django_db


def _run(*args, stdin: str = "") -> str:
    out = io.StringIO()
    import sys

    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        call_command(*args, stdout=out)
    finally:
        sys.stdin = old
    return out.getvalue()


def test_createteam_creates_team_and_admin_from_stdin_password():
    _run(
        "createteam", "Acme", "--admin-email", "Ops@Acme.test", "--admin-password-stdin", stdin="a-Long-test-passw0rd\n"
    )
    user = User.objects.get(email="ops@acme.test")
    assert user.check_password("a-Long-test-passw0rd")
    assert Membership.objects.get(user=user, team__name="Acme").role == Role.ADMIN


def test_createteam_refuses_a_weak_password_and_stores_nothing():
    with pytest.raises(CommandError, match="password"):
        _run("createteam", "Acme", "--admin-email", "ops@acme.test", "--admin-password-stdin", stdin="123\n")
    assert not User.objects.exists() and not Team.objects.exists()


def test_createteam_refuses_a_taken_team_name(team):
    with pytest.raises(CommandError, match="already exists"):
        _run("createteam", "ACME", "--admin-email", "admin@acme.test")


def test_createtoken_prints_only_a_working_token(admin, team):
    out = _run("createtoken", "--email", "admin@acme.test", "--team", "Acme")
    secret = out.strip()
    assert out == secret + "\n" and secret.startswith("vpu_")
    assert factories.bearer_client(secret).get("/api/v1/team/").json()["role"] == "admin"


def test_createtoken_makes_a_read_only_service_account(admin, team):
    secret = _run(
        "createtoken", "--email", "admin@acme.test", "--team", "acme", "--service-account", "ci", "--read-only"
    ).strip()
    token = ApiToken.objects.get(prefix=secret[:12])
    assert (token.kind, token.access, token.user) == ("service", "read-only", None)
    assert factories.bearer_client(secret).post("/api/v1/apps/", {"name": "x"}, format="json").status_code == 403


def test_createtoken_explains_what_is_wrong(developer, team):
    with pytest.raises(CommandError, match="No member"):
        _run("createtoken", "--email", "nobody@acme.test", "--team", "Acme")
    with pytest.raises(CommandError, match="only admins"):
        _run("createtoken", "--email", "dev@acme.test", "--team", "Acme", "--service-account", "ci")
    assert not ApiToken.objects.exists()


def test_seed_demo_is_idempotent_and_prints_the_login():
    first = _run("seed_demo")
    _run("seed_demo")
    assert "demo@example.com" in first
    assert Team.objects.filter(name="Demo Vendor").count() == 1


def test_createtoken_can_make_a_token_that_expires(admin, team):
    from datetime import timedelta

    from django.utils import timezone

    secret = _run("createtoken", "--email", "admin@acme.test", "--team", "Acme", "--expires-in-days", "30").strip()
    expires_at = ApiToken.objects.get(prefix=secret[:12]).expires_at
    assert abs(expires_at - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)
    with pytest.raises(CommandError, match="--expires-in-days: give a number of days from 1 to 3650"):
        _run("createtoken", "--email", "admin@acme.test", "--team", "Acme", "--expires-in-days", "0")
