"""`portal registry add|ls|rm|test` against the live portal, real Distribution, moto and a real worker.

Secrets always travel on stdin (`input=`), as a vendor's shell would pipe them.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from accounts.models import AuditEvent
from licenses.models import App
from registries import services
from registries.models import ExternalRegistry
from registries.steps import STEPS

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "s3cret-Pa55word-for-the-cli"
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ECR_ENDPOINT = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def _stored_secret(name: str) -> dict:
    return services.registry_secret(ExternalRegistry.objects.get(name=name))


def _add_other(portal, registry, *extra: str, password: str | None = None):
    return portal(
        "registry", "add", "other", "--endpoint", registry.endpoint, "--username", registry.username,
        "--password-stdin", *extra, input=(password if password is not None else registry.password) + "\n",
    )  # fmt: skip


# --- add against a real registry ---------------------------------------------------------


@pytest.mark.slow
def test_add_other_verifies_the_password_from_stdin_and_saves(portal, basic_registry):
    result = _add_other(portal, basic_registry, "--name", "local")
    assert (result.returncode, result.stdout, result.stderr) == (0, "local\n", "")
    row = ExternalRegistry.objects.get(name="local")
    assert (row.provider, row.endpoint, row.username) == ("other", basic_registry.endpoint, basic_registry.username)
    assert _stored_secret("local") == {"password": basic_registry.password}, "exactly one newline stripped"
    assert basic_registry.password not in row.secret


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--password-stdin", "--token-stdin"])
def test_add_dockerhub_against_a_mirror_with_password_or_token(portal, basic_registry, flag):
    result = portal(
        "registry", "add", "dockerhub", "--endpoint", basic_registry.endpoint, "--username", basic_registry.username,
        flag, "-o", "json", input=basic_registry.password + "\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["name"] == "dockerhub" and created["provider"] == "dockerhub"
    assert created["has_secret"] is True and created["all_apps"] is True
    assert basic_registry.password not in result.stdout
    assert _stored_secret("dockerhub") == {"password": basic_registry.password}


@pytest.mark.slow
def test_a_wrong_password_is_refused_naming_the_field_and_nothing_is_saved(portal, basic_registry):
    result = _add_other(portal, basic_registry, password="wrong-password")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: password: {basic_registry.netloc} rejected the credentials for the registry (unauthorized). "
        "Fix it, or save with “skip validation”.\n"
    )
    assert "wrong-password" not in result.stderr
    assert not ExternalRegistry.objects.exists()


@pytest.mark.slow
def test_a_registry_added_without_a_name_is_named_after_its_endpoint(portal, basic_registry):
    first = _add_other(portal, basic_registry)
    again = portal(
        "registry", "add", "other", "--endpoint", f"localhost:{basic_registry.port}", "--username",
        basic_registry.username, "--password-stdin", "--skip-validation", input=basic_registry.password + "\n",
    )  # fmt: skip
    assert (first.returncode, first.stdout, first.stderr) == (0, f"local-{basic_registry.port}\n", "")
    assert (again.returncode, again.stdout) == (0, f"local-{basic_registry.port}-2\n"), again.stderr


@pytest.mark.slow
def test_skip_validation_saves_a_wrong_password(portal, basic_registry):
    result = _add_other(portal, basic_registry, "--skip-validation", password="wrong-password")
    assert (result.returncode, result.stderr) == (0, "")
    assert _stored_secret(result.stdout.strip()) == {"password": "wrong-password"}


@pytest.mark.slow
def test_list_never_shows_the_password(portal, basic_registry):
    assert _add_other(portal, basic_registry, "--name", "local").returncode == 0
    table = portal("registry", "ls")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split() == ["NAME", "PROVIDER", "ENDPOINT", "USERNAME", "APPS", "HEALTH", "CHECKED", "LAST", "IMAGE",
                              "TEST"]  # fmt: skip
    assert row.split() == [
        "local",
        "other",
        basic_registry.endpoint,
        basic_registry.username,
        "all",
        "Not",  # the health as the pages say it
        "tested",
        "never",
        "-",
    ]
    assert row.index(basic_registry.endpoint) == header.index("ENDPOINT"), "columns are aligned"

    listed = portal("registry", "ls", "-o", "json")
    [registry] = json.loads(listed.stdout)
    assert registry["name"] == "local" and registry["has_secret"] is True
    assert not {"password", "token", "secret", "secret_access_key", "service_account_key"} & set(registry)
    for output in (table.stdout, table.stderr, listed.stdout, listed.stderr):
        assert basic_registry.password not in output


@pytest.mark.slow
def test_debug_output_carries_no_password(portal, basic_registry, cli_token):
    result = _add_other(portal, basic_registry, "--debug")
    assert result.returncode == 0, result.stderr
    assert "> POST " in result.stderr and "< 201 Created" in result.stderr
    assert '"password": "[redacted]"' in result.stderr
    assert basic_registry.password not in result.stdout + result.stderr
    assert cli_token not in result.stdout + result.stderr


# --- add: input handling (no upstream contact) ---------------------------------------------


def test_a_password_option_on_the_command_line_does_not_exist(portal):
    result = portal(
        "registry", "add", "other", "--endpoint", "registry.example.com", "--username", "me", "--password", SECRET
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert "No such option '--password'. Did you mean '--password-stdin'?" in result.stderr
    assert SECRET not in result.stderr
    assert not ExternalRegistry.objects.exists()


@pytest.mark.parametrize("stdin", ["", "\n"])
def test_empty_stdin_is_a_clear_error(portal, stdin):
    result = portal(
        "registry", "add", "other", "--endpoint", "registry.example.com", "--username", "me", "--password-stdin",
        input=stdin,
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("error: --password-stdin: stdin is empty; pipe the password in")
    assert result.stderr.count("\n") == 1
    assert not ExternalRegistry.objects.exists()


def test_only_one_trailing_newline_is_stripped(portal):
    kept = portal(
        "registry", "add", "other", "--endpoint", "registry.example.com", "--username", "me", "--password-stdin",
        "--skip-validation", input="pass word \n",
    )  # fmt: skip
    assert kept.returncode == 0, kept.stderr
    assert _stored_secret("registry-example-com") == {"password": "pass word "}

    refused = portal(
        "registry", "add", "other", "--endpoint", "other.example.com", "--username", "me", "--password-stdin",
        "--skip-validation", input="password\n\n",
    )  # fmt: skip
    assert refused.returncode == 1
    assert refused.stderr == "error: password: Must not contain control or invisible characters.\n"


def test_a_secret_source_is_required_and_only_one(portal):
    base = ("registry", "add", "other", "--endpoint", "registry.example.com", "--username", "me")
    none = portal(*base, input=SECRET)
    both = portal(*base, "--password-stdin", "--token-stdin", input=SECRET)
    for result in (none, both):
        assert result.returncode == 2
        assert "give one of --password-stdin or --token-stdin" in result.stderr
    assert portal("registry", "add", "ghcr", "--username", "me", input=SECRET).returncode == 2
    assert portal("registry", "add", "ecr", "--endpoint", ECR_ENDPOINT, "--access-key-id", AWS_KEY_ID).returncode == 2
    assert not ExternalRegistry.objects.exists()


def test_the_password_is_never_in_the_process_arguments(portal):
    """What `ps` shows while the CLI runs: the command line, without the secret."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "portal_cli.main", "registry", "add", "other", "--endpoint", "registry.example.com",
         "--username", "me", "--password-stdin", "--skip-validation"],
        env=portal.env(portal.token, None, None),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    time.sleep(0.5)  # the CLI is now waiting for the password on stdin
    seen = cmdline.read_bytes().replace(b"\0", b" ").decode()
    out, err = proc.communicate(SECRET + "\n", timeout=60)
    assert proc.returncode == 0, err
    assert "--password-stdin" in seen and SECRET not in seen
    assert SECRET not in out + err
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert SECRET not in ps


def test_a_password_typed_on_a_terminal_is_not_echoed(portal):
    """On a terminal, --password-stdin prompts with echo off (the pty is the CLI's controlling terminal)."""
    controller, terminal = pty.openpty()

    def own_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    args = ["registry", "add", "other", "--endpoint", "registry.example.com", "-u", "me", "--password-stdin"]
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "portal_cli.main", *args, "--skip-validation"],
            env=portal.env(portal.token, None, None),
            stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=own_terminal,
        )  # fmt: skip
        os.close(terminal)
        deadline = time.monotonic() + 20
        assert select.select([controller], [], [], 20)[0], "no prompt"
        assert os.read(controller, 100).startswith(b"Password:")
        while termios.tcgetattr(controller)[3] & termios.ECHO:  # wait until getpass turned echo off
            assert time.monotonic() < deadline, "echo was never turned off"
            time.sleep(0.05)
        os.write(controller, SECRET.encode() + b"\n")
        out, err = proc.communicate(timeout=60)
        echoed = b""
        while select.select([controller], [], [], 0.2)[0]:
            try:
                echoed += os.read(controller, 4096)
            except OSError:
                break
    finally:
        os.close(controller)
    assert proc.returncode == 0, err
    assert SECRET.encode() not in out + err + echoed
    assert _stored_secret("registry-example-com") == {"password": SECRET}


@pytest.mark.parametrize(
    ("args", "endpoint", "username", "secret"),
    [
        (["ghcr", "--username", "octo", "--token-stdin"], "ghcr.io", "octo", {"password": SECRET}),
        (["quay", "--username", "acme+robot", "--token-stdin"], "quay.io", "acme+robot", {"password": SECRET}),
        (["dockerhub", "-u", "acme", "--token-stdin"], "index.docker.io", "acme", {"password": SECRET}),
        (
            ["gar", "--endpoint", "europe-docker.pkg.dev", "--token-stdin"],
            "europe-docker.pkg.dev",
            "oauth2accesstoken",
            {"password": SECRET},
        ),
    ],
)
def test_each_provider_stores_what_it_needs(portal, args, endpoint, username, secret):
    result = portal("registry", "add", *args, "--skip-validation", "-o", "json", input=SECRET + "\n")
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert (created["endpoint"], created["username"]) == (endpoint, username)
    assert _stored_secret(created["name"]) == secret
    assert SECRET not in result.stdout


def test_apps_limit_a_registry_and_an_unknown_app_is_named(portal, actor):
    for slug in ("api", "web"):
        App.objects.create(team=actor.team, name=slug, slug=slug, created_by=actor.user)
    base = ("registry", "add", "other", "--endpoint", "registry.example.com", "-u", "me", "--password-stdin")
    added = portal(*base, "--app", "api", "--app", "web", "--skip-validation", input=SECRET)
    assert added.returncode == 0, added.stderr
    row = portal("registry", "ls").stdout.splitlines()[1]
    assert "api, web" in row

    unknown = portal(*base, "--name", "two", "--app", "nope", "--skip-validation", input=SECRET)
    assert (unknown.returncode, unknown.stderr) == (1, "error: apps: No app “nope” in your team.\n")
    duplicate = portal(*base, "--skip-validation", input=SECRET)
    assert duplicate.returncode == 1
    # The derived name would take a suffix; the endpoint itself is what may not repeat.
    assert duplicate.stderr == "error: endpoint: Your team already has a registry for registry.example.com.\n"
    assert ExternalRegistry.objects.count() == 1


def test_ecr_with_skip_validation_then_listed(portal):
    result = portal(
        "registry", "add", "ecr", "--endpoint", ECR_ENDPOINT, "--access-key-id", AWS_KEY_ID,
        "--secret-access-key-stdin", "--skip-validation", input=AWS_SECRET + "\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    name = result.stdout.strip()
    [registry] = json.loads(portal("registry", "ls", "-o", "json").stdout)
    assert (registry["name"], registry["provider"], registry["endpoint"]) == (name, "ecr", ECR_ENDPOINT)
    assert (registry["username"], registry["region"]) == (AWS_KEY_ID, "us-east-1")
    assert _stored_secret(name) == {"secret_access_key": AWS_SECRET}
    assert AWS_SECRET not in portal("registry", "ls").stdout


@pytest.mark.slow
def test_ecr_secret_rejected_by_aws_is_named_and_nothing_saved(portal, ecr_iam_keys):
    """moto checks the keys like AWS; verification mints a token first, so the bad secret stops it there."""
    key_id, secret = ecr_iam_keys
    wrong = secret[:-4] + "XXXX"
    result = portal(
        "registry", "add", "ecr", "--endpoint", ECR_ENDPOINT, "--access-key-id", key_id,
        "--secret-access-key-stdin", input=wrong + "\n",
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("error: secret_access_key: AWS rejected the access key")
    assert "(unauthorized)" in result.stderr and wrong not in result.stderr
    assert not ExternalRegistry.objects.exists()


@pytest.mark.slow
def test_gcr_with_a_key_file(portal, service_account_key, tmp_path):
    key = service_account_key()
    path = tmp_path / "key.json"
    path.write_text(key.text)
    result = portal(
        "registry", "add", "gcr", "--endpoint", "gcr.io", "--service-account-key-file", str(path),
        "--skip-validation", "--debug",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "gcr\n"
    assert key.secret_marker not in result.stdout + result.stderr
    assert '"service_account_key": "[redacted]"' in result.stderr
    [registry] = json.loads(portal("registry", "ls", "-o", "json").stdout)
    assert (registry["provider"], registry["username"]) == ("gcr", key.client_email)
    assert json.loads(_stored_secret("gcr")["service_account_key"]) == key.info


def test_gcr_key_file_problems_are_clear(portal, tmp_path):
    base = ("registry", "add", "gcr", "--endpoint", "gcr.io", "--skip-validation", "--service-account-key-file")
    missing = portal(*base, str(tmp_path / "nope.json"))
    assert missing.returncode == 2
    assert (
        missing.stderr
        == f"error: --service-account-key-file: cannot read {tmp_path / 'nope.json'}: No such file or directory\n"
    )
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    invalid = portal(*base, str(bad))
    assert invalid.returncode == 1 and invalid.stderr.startswith("error: service_account_key: ")
    assert not ExternalRegistry.objects.exists()


# --- rm ------------------------------------------------------------------------------------


def _add_example(portal, endpoint: str = "registry.example.com", name: str | None = None) -> str:
    extra = ("--name", name) if name else ()
    result = portal(
        "registry", "add", "other", "--endpoint", endpoint, "-u", "me", "--password-stdin", "--skip-validation",
        *extra, input=SECRET,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_remove_by_name_or_endpoint(portal):
    _add_example(portal, "registry.example.com", "one")
    _add_example(portal, "http://127.0.0.1:5999", "two")

    by_name = portal("registry", "rm", "one", "--yes")
    assert (by_name.returncode, by_name.stdout, by_name.stderr) == (0, "Deleted registry one.\n", "")
    by_endpoint = portal("registry", "rm", "127.0.0.1:5999", "--yes", "-o", "json")
    assert by_endpoint.returncode == 0, by_endpoint.stderr
    assert json.loads(by_endpoint.stdout)["name"] == "two"
    assert not ExternalRegistry.objects.exists()
    assert portal("registry", "ls").stderr.startswith("No registries yet; add one with: portal registry add")


def test_remove_without_a_terminal_and_without_yes_is_refused(portal):
    _add_example(portal, name="keep")
    result = portal("registry", "rm", "keep")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "error: not deleting registry “keep” without confirmation: stdin is not a terminal; pass --yes\n"
    )
    assert ExternalRegistry.objects.filter(name="keep").exists()


def test_remove_on_a_terminal_asks_first(portal):
    _add_example(portal, name="keep")
    declined = portal.on_a_terminal(["registry", "rm", "keep"], "n")
    assert declined.returncode == 1
    assert "Delete registry “keep” (registry.example.com)" in declined.stderr
    assert declined.stderr.endswith("error: registry “keep” was not deleted\n")
    assert ExternalRegistry.objects.filter(name="keep").exists()

    confirmed = portal.on_a_terminal(["registry", "rm", "keep"], "y")
    assert (confirmed.returncode, confirmed.stdout) == (0, "Deleted registry keep.\n"), confirmed.stderr
    assert not ExternalRegistry.objects.exists()


def test_remove_or_test_of_an_unknown_or_foreign_registry_says_not_found(portal, outsider_actor):
    services.registry_create(
        actor=outsider_actor, provider="other", endpoint="theirs.example.com", name="theirs", username="x",
        password=SECRET, skip_validation=True,
    )  # fmt: skip
    for ref in ("nope", "theirs", "theirs.example.com"):
        for args in (("rm", ref, "--yes"), ("test", ref, "--image", "acme/api:1.0.0")):
            result = portal("registry", *args)
            assert result.returncode == 1
            assert result.stderr == f"error: no registry “{ref}” in your team; see: portal registry ls\n"
    assert ExternalRegistry.objects.filter(name="theirs").exists()


# --- edit ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_edit_replaces_a_wrong_password_and_the_next_test_passes(portal, basic_registry, celery_worker_process):
    added = _add_other(portal, basic_registry, "--name", "local", "--skip-validation", password="wrong-password")
    assert added.returncode == 0, added.stderr
    before = portal("registry", "test", "local", "--image", "acme/api:1.0.0", "--timeout", "30")
    assert before.returncode == 1 and before.stderr.startswith("error: unauthorized:")

    refused = portal("registry", "edit", "local", "--password-stdin", input="still-wrong\n")
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == (
        f"error: password: {basic_registry.netloc} rejected the credentials for the registry (unauthorized). "
        "Fix it, or save with “skip validation”.\n"
    )
    assert _stored_secret("local") == {"password": "wrong-password"}, "a refused secret is not stored"

    edited = portal("registry", "edit", "local", "--password-stdin", input=basic_registry.password + "\n")
    assert (edited.returncode, edited.stderr) == (0, "")
    assert edited.stdout == (
        "Updated registry local.\nHealth: untested since the credentials changed; "
        "test it with: portal registry test local --image IMAGE\n"
    )
    assert _stored_secret("local") == {"password": basic_registry.password}
    event = AuditEvent.objects.filter(action="registry.update", target="local").get()
    assert event.detail["secret_changed"] is True
    assert basic_registry.password not in json.dumps(event.detail)

    after = portal("registry", "test", "local", "--image", "acme/api:1.0.0", "--timeout", "30")
    assert after.returncode == 0, after.stderr + after.stdout
    assert "result      succeeded" in after.stdout.splitlines()
    for output in (edited.stdout, edited.stderr, after.stdout, after.stderr, refused.stderr):
        assert basic_registry.password not in output and "still-wrong" not in output


def test_edit_changes_the_apps_and_back_to_all(portal, actor):
    for slug in ("api", "web"):
        App.objects.create(team=actor.team, name=slug, slug=slug, created_by=actor.user)
    _add_example(portal, name="one")

    limited = portal("registry", "edit", "one", "--apps", "api,web", "-o", "json")
    assert limited.returncode == 0, limited.stderr
    body = json.loads(limited.stdout)
    assert (body["all_apps"], sorted(body["apps"])) == (False, ["api", "web"])
    row = ExternalRegistry.objects.get(name="one")
    assert sorted(row.apps.values_list("slug", flat=True)) == ["api", "web"]
    assert _stored_secret("one") == {"password": SECRET}, "no secret given: the stored one stays"

    everything = portal("registry", "edit", "one", "--all-apps")
    assert (everything.returncode, everything.stdout) == (0, "Updated registry one.\n"), everything.stderr
    row.refresh_from_db()
    assert row.all_apps and not row.apps.exists()

    unknown = portal("registry", "edit", "one", "--apps", "api,nope")
    assert (unknown.returncode, unknown.stderr) == (1, "error: apps: No app “nope” in your team.\n")
    assert ExternalRegistry.objects.get(name="one").all_apps, "nothing half-stored"


def test_edit_with_a_bad_value_names_the_field_and_changes_nothing(portal):
    _add_example(portal, name="one")
    bad = portal("registry", "edit", "one", "--endpoint", "not a host")
    assert (bad.returncode, bad.stdout) == (1, "")
    assert bad.stderr == "error: endpoint: Use host[:port][/path-prefix], e.g. registry.example.com/team.\n"
    assert ExternalRegistry.objects.get(name="one").endpoint == "registry.example.com"


def test_moving_to_another_host_asks_for_the_secret_again(portal):
    _add_example(portal, name="one")
    moved = portal("registry", "edit", "one", "--endpoint", "elsewhere.example.com", "--skip-validation")
    assert (moved.returncode, moved.stdout) == (1, "")
    assert moved.stderr == (
        "error: password: the endpoint elsewhere.example.com is on another host (or plain HTTP), so the stored "
        "secret is not sent there; give it again with --password-stdin\n"
    )
    assert ExternalRegistry.objects.get(name="one").endpoint == "registry.example.com"

    with_secret = portal(
        "registry", "edit", "one", "--endpoint", "elsewhere.example.com", "--password-stdin", "--skip-validation",
        input="new-secret",
    )  # fmt: skip
    assert with_secret.returncode == 0, with_secret.stderr
    assert ExternalRegistry.objects.get(name="one").endpoint == "elsewhere.example.com"
    assert _stored_secret("one") == {"password": "new-secret"}


def test_edit_needs_a_change_and_at_most_one_secret(portal):
    _add_example(portal, name="one")
    nothing = portal("registry", "edit", "one")
    two = portal("registry", "edit", "one", "--password-stdin", "--token-stdin", input=SECRET)
    both_apps = portal("registry", "edit", "one", "--apps", "api", "--all-apps")
    assert [r.returncode for r in (nothing, two, both_apps)] == [2, 2, 2]
    assert "nothing to change" in nothing.stderr
    assert "give one new secret, not --password-stdin and --token-stdin" in two.stderr
    assert "give --apps or --all-apps, not both" in both_apps.stderr
    assert portal("registry", "edit", "one", "--password", SECRET).returncode == 2, "no secret option on argv"


def test_the_new_password_is_never_in_the_process_arguments(portal):
    _add_example(portal, name="one")
    proc = subprocess.Popen(
        [sys.executable, "-m", "portal_cli.main", "registry", "edit", "one", "--password-stdin", "--skip-validation"],
        env=portal.env(portal.token, None, None),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(0.5)  # the CLI is now waiting for the password on stdin
    seen = Path(f"/proc/{proc.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    out, err = proc.communicate("new-" + SECRET + "\n", timeout=60)
    assert proc.returncode == 0 and out.startswith("Updated registry one.\nHealth: untested since"), err
    assert "--password-stdin" in seen and SECRET not in seen
    assert _stored_secret("one") == {"password": "new-" + SECRET}


# --- test, with a real Celery worker -------------------------------------------------------


@pytest.mark.slow
def test_registry_test_prints_the_steps_and_the_digest(portal, basic_registry, celery_worker_process):
    assert _add_other(portal, basic_registry, "--name", "local").returncode == 0

    result = portal("registry", "test", "local", "--image", "acme/api:1.0.0", "--timeout", "30")
    assert result.returncode == 0, result.stderr + result.stdout
    digest = basic_registry.images["api"].digest
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["STEP", "OUTCOME", "LATENCY", "DETAIL"]
    # The steps carry the pages' labels (registries.steps.STEPS), one list for both.
    width = lines[0].index("OUTCOME")
    steps = {line[:width].strip(): line[width:].split() for line in lines[1:5]}
    assert list(steps) == [label for _, label in STEPS]
    assert [s[0] for s in steps.values()] == ["ok"] * 4
    assert steps["Log in"][-1] == "basic" and steps["Fetch the manifest"][-1] == digest
    assert f"digest      {digest}" in lines
    assert "result      succeeded" in lines
    assert basic_registry.password not in result.stdout + result.stderr

    multi = portal("registry", "test", basic_registry.endpoint, "--image", "acme/multi:1.0.0", "-o", "json")
    assert multi.returncode == 0, multi.stderr
    test = json.loads(multi.stdout)
    assert test["done"] is True and test["status"] == "succeeded" and test["registry"] == "local"
    assert test["result"]["digest"] == basic_registry.images["multi"].digest
    assert sorted(test["result"]["platforms"]) == ["linux/amd64", "linux/arm64"]
    assert test["url"].rstrip("/").endswith(f"/api/v1/registry-tests/{test['id']}")


@pytest.mark.slow
def test_registry_test_with_a_wrong_password_exits_1_with_the_reason(portal, basic_registry, celery_worker_process):
    assert (
        _add_other(portal, basic_registry, "--name", "bad", "--skip-validation", password="wrong-password").returncode
        == 0
    )

    result = portal("registry", "test", "bad", "--image", "acme/api:1.0.0", "--timeout", "30")
    assert result.returncode == 1
    assert result.stderr == f"error: unauthorized: {basic_registry.netloc} rejected the credentials for the registry\n"
    assert re.search(r"^Log in +failed", result.stdout, re.M) and "result    failed" in result.stdout
    assert "wrong-password" not in result.stdout + result.stderr

    missing = portal("registry", "test", "bad", "--image", "acme/nothing-here:1.0.0", "-o", "json")
    assert missing.returncode == 1 and json.loads(missing.stdout)["category"] == "unauthorized"
    assert ExternalRegistry.objects.get(name="bad").health == "unhealthy"


def test_registry_test_without_a_worker_times_out_with_a_hint(portal, private_queue):
    """The registry test waits in a queue of this test's own that no worker serves (deleted after)."""
    _add_example(portal, name="lonely")
    result = portal("registry", "test", "lonely", "--image", "acme/api:1.0.0", "--timeout", "1")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(
        "error: the test did not finish within 1 s (still queued); is a Celery worker running? "
        "The result will appear at http"
    )


def test_registry_test_rejects_a_bad_image_and_extra_fields_are_not_sent(portal):
    _add_example(portal, name="one")
    result = portal("registry", "test", "one", "--image", "UPPER CASE")
    assert result.returncode == 1
    assert result.stderr.startswith("error: image: Not an image reference")
    assert portal("registry", "test", "one").returncode == 2, "--image is required"


@pytest.mark.slow
def test_ls_and_show_give_credential_health_and_the_image_finding_apart(portal, basic_registry, celery_worker_process):
    assert _add_other(portal, basic_registry, "--name", "local").returncode == 0
    missing = portal("registry", "test", "local", "--image", "acme/api:9.9.9", "--timeout", "30")
    assert missing.returncode == 1
    assert missing.stderr == "error: manifest_unknown: acme/api:9.9.9 not found\n"
    assert "result    failed (about the image; the credentials worked)" in missing.stdout.splitlines()

    listing = portal("registry", "ls").stdout.splitlines()
    assert "LAST IMAGE TEST" in listing[0]
    assert "Healthy" in listing[1] and "acme/api:9.9.9: image finding, acme/api:9.9.9 not found" in listing[1]

    shown = portal("registry", "show", "local")
    assert shown.returncode == 0, shown.stderr
    facts = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in shown.stdout.splitlines())
    assert facts["health"] == "Healthy" and facts["health reason"] == "-"
    assert facts["last image test"] == "acme/api:9.9.9: image finding, acme/api:9.9.9 not found"
    assert json.loads(portal("registry", "show", "local", "-o", "json").stdout)["last_image_result"]["image_finding"]

    edited = portal("registry", "edit", "local", "--username", "someone-else", "--skip-validation")
    assert edited.returncode == 0, edited.stderr
    after = portal("registry", "show", "local")
    assert re.search(r"^health +Untested since the credentials changed$", after.stdout, re.M)
    assert after.stderr == "Test it with: portal registry test local --image IMAGE\n"
    unknown = portal("registry", "show", "nope")
    assert (unknown.returncode, unknown.stderr) == (
        1,
        "error: no registry “nope” in your team; see: portal registry ls\n",
    )
