"""`portal app create|ls|rm` against the live portal."""

from __future__ import annotations

import json

import pytest

from licenses.models import App

pytestmark = pytest.mark.django_db(transaction=True)


def test_create_list_and_remove_an_app(portal):
    created = portal("app", "create", "Widget Pro")
    assert (created.returncode, created.stdout, created.stderr) == (0, "widget-pro\n", "")

    table = portal("app", "ls")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split("  ")[0] == "SLUG" and "NAME" in header and "CREATED BY" in header
    assert row.startswith("widget-pro") and "admin@acme.test" in row
    assert row.index("Widget Pro") == header.index("NAME"), "columns are aligned"

    listed = portal("app", "ls", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    [app] = json.loads(listed.stdout)
    assert app["slug"] == "widget-pro" and app["name"] == "Widget Pro" and app["created_by"] == "admin@acme.test"
    assert set(app) == {"slug", "name", "repository_rules", "airgap_platforms", "created_at", "created_by"}

    removed = portal("app", "rm", "widget-pro", "--yes")
    assert (removed.returncode, removed.stderr) == (0, ""), removed.stderr
    assert not App.objects.filter(slug="widget-pro").exists()
    assert json.loads(portal("app", "ls", "-o", "json").stdout) == []


def test_create_with_a_slug_and_json_output_prints_the_app(portal):
    result = portal("app", "create", "Widget", "--slug", "widget-2", "--output", "json")
    assert result.returncode == 0, result.stderr
    app = json.loads(result.stdout)
    assert app["slug"] == "widget-2" and app["name"] == "Widget"


def test_empty_list_says_what_to_do_on_stderr(portal):
    result = portal("app", "ls")
    assert (result.returncode, result.stdout) == (0, "")
    assert "portal app create" in result.stderr


def test_remove_without_a_terminal_and_without_yes_is_refused(portal):
    portal("app", "create", "Keep Me")
    result = portal("app", "rm", "keep-me")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "error: not deleting app “keep-me” without confirmation: stdin is not a terminal; pass --yes\n"
    )
    assert App.objects.filter(slug="keep-me").exists()


def test_remove_on_a_terminal_asks_first(portal):
    portal("app", "create", "Widget")

    declined = portal.on_a_terminal(["app", "rm", "widget"], "n")
    assert declined.returncode == 1
    assert "Delete app “Widget” (widget)" in declined.stderr
    assert declined.stderr.endswith("error: app “widget” was not deleted\n")
    assert App.objects.filter(slug="widget").exists()

    confirmed = portal.on_a_terminal(["app", "rm", "widget"], "y")
    assert confirmed.returncode == 0, confirmed.stderr
    assert confirmed.stdout == "Deleted app widget.\n"
    assert not App.objects.filter(slug="widget").exists()


def test_duplicate_slug_names_the_field(portal):
    assert portal("app", "create", "Widget").returncode == 0
    result = portal("app", "create", "Another", "--slug", "widget")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "error: slug: The slug “widget” is taken; choose another.\n"
    assert App.objects.filter(slug="widget").count() == 1


@pytest.mark.parametrize(
    ("slug", "reason"),
    [
        ("Bad_Slug", "slug: Use lowercase letters a–z, digits and hyphens"),
        ("admin", "slug: “admin” is reserved; choose another slug."),
    ],
)
def test_invalid_slug_is_refused_with_the_reason(portal, slug, reason):
    result = portal("app", "create", "Widget", "--slug", slug)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {reason}")
    assert result.stderr.count("\n") == 1
    assert not App.objects.exists()


def test_remove_of_an_unknown_or_foreign_app_says_not_found(portal, outsider_actor):
    App.objects.create(team=outsider_actor.team, name="Theirs", slug="theirs", created_by=outsider_actor.user)
    for slug in ("nope", "theirs"):
        result = portal("app", "rm", slug, "--yes")
        assert result.returncode == 1
        assert result.stderr == f"error: no app “{slug}” in your team; see: portal app ls\n"
    assert App.objects.filter(slug="theirs").exists()


def test_a_slug_cannot_reach_another_endpoint(portal):
    token_id = json.loads(portal("token", "ls", "-o", "json").stdout)[0]["id"]
    result = portal("app", "rm", f"../tokens/{token_id}", "--yes")
    assert result.returncode == 1
    assert portal("whoami").returncode == 0, "the token in use was not revoked"


def test_list_follows_every_page(portal, actor):
    App.objects.bulk_create(
        App(team=actor.team, name=f"App {i:04d}", slug=f"app-{i:04d}", created_by=actor.user) for i in range(503)
    )
    result = portal("app", "ls", "-o", "json")
    assert result.returncode == 0, result.stderr
    slugs = [app["slug"] for app in json.loads(result.stdout)]
    assert slugs == [f"app-{i:04d}" for i in range(503)]
    assert len(portal("app", "ls").stdout.splitlines()) == 504


def test_read_only_service_account_cannot_create_an_app(portal, read_only_service_token):
    result = portal("app", "create", "Widget", token=read_only_service_token)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "error: Your role in this team does not allow this.\n"
    assert not App.objects.exists()
    assert portal("app", "ls", token=read_only_service_token).returncode == 0, "reading is allowed"
