"""`portal license create|ls|show|revoke|unrevoke|file|verify` against the live portal."""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import UTC, date, datetime, timedelta

import pytest

from licenses import licensefile, services
from licenses.models import App, License

pytestmark = pytest.mark.django_db(transaction=True)


def _create(portal, *args: str) -> str:
    result = portal("license", "create", "--app", "acme-api", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# --- create ------------------------------------------------------------------------------


def test_create_prints_just_the_license_id(portal, app):
    result = portal("license", "create", "--app", "acme-api", "--customer", "Initech")
    assert (result.returncode, result.stderr) == (0, "")
    license_id = result.stdout.strip()
    assert result.stdout == license_id + "\n"
    license = services.license_find(license_id)
    assert (license.app, license.customer_name, license.type, license.expires_at) == (app, "Initech", "paid", None)


def test_create_with_every_option_and_json_output(portal, app):
    day = (date.today() + timedelta(days=400)).isoformat()
    result = portal(
        "license", "create", "--app", "acme-api", "--customer", "Initech", "--email", "ops@initech.test",
        "--type", "trial", "--expires", day, "-o", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["license_id"] and created["app"] == "acme-api"
    assert (created["customer_email"], created["type"], created["status"]) == ("ops@initech.test", "trial", "active")
    assert created["expires_at"] == f"{day}T23:59:59Z", "a date means through that day, as on the pages"


def test_expires_in_counts_from_now(portal, app):
    license_id = _create(portal, "--customer", "Initech", "--expires-in", "30d")
    expires = services.license_find(license_id).expires_at
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=2)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--expires", "2099-01-01", "--expires-in", "3d"], "give --expires or --expires-in, not both"),
        (["--expires-in", "3 months"], "--expires-in: give a duration like 30d, 12w, 1y or 48h"),
        (["--expires", "soon"], "--expires: give a date like 2027-01-31"),
    ],
)
def test_bad_expiry_options_are_usage_errors(portal, app, args, reason):
    result = portal("license", "create", "--app", "acme-api", "--customer", "X", *args)
    assert (result.returncode, result.stdout) == (2, "")
    assert reason in result.stderr
    assert not License.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--customer", " "], "error: customer_name: Enter the customer's name.\n"),
        (["--customer", "X", "--email", "nope"], "error: customer_email: Enter a valid email address, like it@customer.com.\n"),
        (["--customer", "X", "--type", "gold"], "error: type: Choose one of: dev, trial, paid, community.\n"),
        (["--customer", "X", "--expires", "2001-01-01"], "error: expires_at: The expiry must be in the future.\n"),
    ],
)  # fmt: skip
def test_invalid_input_names_the_field_and_stores_nothing(portal, app, args, message):
    result = portal("license", "create", "--app", "acme-api", *args)
    assert (result.returncode, result.stdout, result.stderr) == (1, "", message)
    assert not License.objects.exists()


def test_create_for_an_unknown_or_foreign_app_says_not_found(portal, app, outsider_actor):
    App.objects.create(team=outsider_actor.team, name="Theirs", slug="theirs", created_by=outsider_actor.user)
    for slug in ("nope", "theirs", "../tokens"):
        result = portal("license", "create", "--app", slug, "--customer", "X")
        assert result.returncode == 1
        assert result.stderr == f"error: no app “{slug}” in your team; see: portal app ls\n"
    assert not License.objects.exists()


# --- ls, show ----------------------------------------------------------------------------


def test_ls_never_shows_license_ids(portal, app):
    first = _create(portal, "--customer", "Initech", "--email", "ops@initech.test")
    second = _create(portal, "--customer", "Globex", "--type", "dev")
    table = portal("license", "ls", "--app", "acme-api")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == [
        "ID", "APP", "CUSTOMER", "EMAIL", "TYPE", "CHANNEL", "STATUS", "EXPIRES", "LICENSE", "CREATED",
    ]  # fmt: skip
    assert len(rows) == 2 and rows[0].split()[1:7] == ["acme-api", "Globex", "-", "dev", "stable", "active"]
    assert f"{second[:6]}…" in rows[0] and "never" in rows[0]
    listed = portal("license", "ls", "-o", "json")
    assert [lic["customer_name"] for lic in json.loads(listed.stdout)] == ["Globex", "Initech"]
    for output in (table.stdout, listed.stdout):
        assert first not in output and second not in output
    assert all("license_id" not in lic for lic in json.loads(listed.stdout))


def test_ls_filters_by_status_and_search(portal, app):
    _create(portal, "--customer", "Initech")
    globex = _create(portal, "--customer", "Globex")
    assert portal("license", "revoke", globex, "--yes").returncode == 0

    def customers(*args: str) -> list[str]:
        result = portal("license", "ls", "--app", "acme-api", "-o", "json", *args)
        assert result.returncode == 0, result.stderr
        return [lic["customer_name"] for lic in json.loads(result.stdout)]

    assert customers("--status", "revoked") == ["Globex"]
    assert customers("--status", "active") == ["Initech"]
    assert customers("--status", "expired") == []
    assert customers("--search", "init") == ["Initech"]
    assert customers("--search", globex[:6]) == ["Globex"]
    nothing = portal("license", "ls", "--search", "nobody")
    assert (nothing.returncode, nothing.stdout, nothing.stderr) == (0, "", "No licenses match.\n")
    assert portal("license", "ls", "--status", "dead").returncode == 2


def test_empty_list_says_what_to_do_and_an_unknown_app_is_an_error(portal, app):
    empty = portal("license", "ls", "--app", "acme-api")
    assert (empty.returncode, empty.stdout) == (0, "")
    assert "portal license create --app SLUG --customer NAME" in empty.stderr
    missing = portal("license", "ls", "--app", "nope")
    assert (missing.returncode, missing.stderr) == (1, "error: no app “nope” in your team; see: portal app ls\n")


def test_show_by_id_or_by_license_id(portal, app):
    license_id = _create(portal, "--customer", "Initech")
    pk = services.license_find(license_id).pk
    by_id = portal("license", "show", str(pk))
    assert by_id.returncode == 0, by_id.stderr
    lines = dict(re.match(r"^(.+?)\s{2,}(.*)$", line).groups() for line in by_id.stdout.splitlines())
    assert (lines["id"], lines["license ID"], lines["app"]) == (str(pk), license_id, "acme-api")
    assert (lines["customer"], lines["status"], lines["expires"]) == ("Initech", "active", "never")
    by_license_id = portal("license", "show", license_id, "-o", "json")
    assert by_license_id.returncode == 0, by_license_id.stderr
    shown = json.loads(by_license_id.stdout)
    assert (shown["id"], shown["license_id"]) == (pk, license_id)


def test_a_license_of_another_team_is_not_found(portal, app, outsider_actor):
    theirs = App.objects.create(team=outsider_actor.team, name="Theirs", slug="theirs", created_by=outsider_actor.user)
    license, license_id = services.license_create(actor=outsider_actor, app=theirs, customer_name="Victim")
    for ref in (str(license.pk), license_id):
        for command in (["show", ref], ["revoke", ref, "--yes"], ["unrevoke", ref], ["file", ref]):
            result = portal("license", *command)
            assert result.returncode == 1, command
            assert "in your team; see: portal license ls" in result.stderr
            assert license_id not in result.stdout + result.stderr
    license.refresh_from_db()
    assert license.revoked_at is None


# --- revoke, unrevoke ----------------------------------------------------------------------


def test_revoke_without_a_terminal_and_without_yes_is_refused(portal, app):
    license_id = _create(portal, "--customer", "Initech")
    result = portal("license", "revoke", license_id)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: not revoking license {license_id[:6]}… without confirmation: stdin is not a terminal; pass --yes\n"
    )
    assert services.license_find(license_id).revoked_at is None


def test_revoke_and_unrevoke(portal, app):
    license_id = _create(portal, "--customer", "Initech")
    pk = services.license_find(license_id).pk
    revoked = portal("license", "revoke", license_id, "--yes")
    assert (revoked.returncode, revoked.stderr) == (0, "")
    assert revoked.stdout == f"Revoked license {pk} (Initech, app acme-api); its pulls stop within seconds.\n"
    assert services.license_find(license_id).status == "revoked"
    again = portal("license", "revoke", str(pk), "--yes")
    assert again.stdout == f"license {pk} (Initech, app acme-api) was already revoked.\n"

    restored = portal("license", "unrevoke", str(pk), "-o", "json")
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["status"] == "active"
    assert services.license_find(license_id).revoked_at is None


def test_revoke_on_a_terminal_asks_first(portal, app):
    license_id = _create(portal, "--customer", "Initech")
    pk = services.license_find(license_id).pk

    declined = portal.on_a_terminal(["license", "revoke", str(pk)], "n")
    assert declined.returncode == 1
    assert "Revoke the license of “Initech” for app acme-api?" in declined.stderr
    assert declined.stderr.endswith(f"error: license {pk} (Initech, app acme-api) was not revoked\n")
    assert services.license_find(license_id).revoked_at is None

    confirmed = portal.on_a_terminal(["license", "revoke", str(pk)], "y")
    assert confirmed.returncode == 0, confirmed.stderr
    assert services.license_find(license_id).revoked_at is not None


def test_unrevoking_an_expired_license_warns(portal, app):
    license_id = _create(portal, "--customer", "Initech")
    License.objects.filter(lookup_hash=services.license_lookup_hash(license_id)).update(
        expires_at=datetime.now(UTC) - timedelta(days=1), revoked_at=datetime.now(UTC)
    )
    result = portal("license", "unrevoke", license_id)
    assert result.returncode == 0, result.stderr
    assert "status: expired" in result.stdout
    assert "warning: it expired on" in result.stderr


# --- file, verify ------------------------------------------------------------------------


def test_download_verify_and_catch_a_tampered_file(portal, app, tmp_path):
    license_id = _create(portal, "--customer", "Initech", "--email", "ops@initech.test", "--expires-in", "30d")
    path = tmp_path / "license.yaml"
    saved = portal("license", "file", license_id, "-o", str(path))
    assert saved.returncode == 0, saved.stderr
    assert saved.stdout.startswith("Wrote the license file for license ")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, "it holds a credential"
    content = path.read_text()
    assert f"licenseId: {license_id}" in content

    valid = portal("license", "verify", str(path))
    assert (valid.returncode, valid.stderr) == (0, ""), valid.stderr
    assert valid.stdout.splitlines()[0].split(None, 1) == ["valid", "yes: signed by the portal's key"]
    assert "Initech" in valid.stdout and "acme-api (Acme API)" in valid.stdout
    checked = json.loads(portal("license", "verify", str(path), "-o", "json").stdout)
    assert checked["valid"] is True and checked["license"]["licenseId"] == license_id

    tampered = tmp_path / "tampered.yaml"
    tampered.write_text(content.replace("name: Initech", "name: Initrode"))
    invalid = portal("license", "verify", str(tampered))
    assert (invalid.returncode, invalid.stdout) == (1, "")
    assert invalid.stderr == (
        "error: invalid license file: the signature does not verify: the file was changed after it was signed\n"
    )
    as_json = portal("license", "verify", str(tampered), "--output", "json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == {
        "valid": False,
        "reason": "the signature does not verify: the file was changed after it was signed",
    }


def test_verify_needs_no_token_and_takes_a_key_file(portal, app, tmp_path):
    license_id = _create(portal, "--customer", "Initech")
    printed = portal("license", "file", license_id)
    assert printed.returncode == 0, printed.stderr
    path = tmp_path / "license.yaml"
    path.write_text(printed.stdout)
    pk = services.license_find(license_id).pk
    assert path.read_text().startswith("# License for Initech to Acme API")

    anonymous = portal("license", "verify", str(path), token=None)
    assert anonymous.returncode == 0, anonymous.stderr
    key = tmp_path / "portal.pem"
    key.write_text(licensefile.public_key_pem())
    offline = portal("license", "verify", str(path), "--public-key", str(key), url="http://127.0.0.1:9")
    assert offline.returncode == 0, offline.stderr
    from_stdin = portal("license", "verify", "-", "--public-key", str(key), input=path.read_text())
    assert from_stdin.returncode == 0, from_stdin.stderr

    other = tmp_path / "other.pem"
    other.write_text(
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"
    )
    wrong_key = portal("license", "verify", str(path), "--public-key", str(other))
    assert wrong_key.returncode == 1
    assert "error: invalid license file: the signature does not verify: the file names key sha256:" in wrong_key.stderr

    listed = json.loads(portal("license", "file", str(pk), "--output", "json").stdout)
    assert listed["file_name"] == f"acme-api-{license_id[:6]}.license.yaml"
    assert listed["content"] == printed.stdout


def test_file_refuses_a_format_name_as_the_file(portal, app, tmp_path):
    license_id = _create(portal, "--customer", "Initech")
    result = portal("license", "file", license_id, "-o", "json")
    assert result.returncode == 2
    assert "-o names the file to write; for json output use --output json" in result.stderr


def test_verify_of_a_missing_file_or_garbage_says_why(portal, tmp_path):
    missing = portal("license", "verify", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: cannot read license file ")
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("hello: [")
    result = portal("license", "verify", str(garbage))
    assert result.returncode == 1
    assert result.stderr.startswith("error: invalid license file: not a license file: the YAML does not parse")


# --- roles -------------------------------------------------------------------------------


def test_a_read_only_service_account_reads_but_cannot_create_or_revoke(portal, app, read_only_service_token):
    license_id = _create(portal, "--customer", "Initech")
    refused = portal("license", "create", "--app", "acme-api", "--customer", "X", token=read_only_service_token)
    assert (refused.returncode, refused.stderr) == (1, "error: Your role in this team does not allow this.\n")
    revoke = portal("license", "revoke", license_id, "--yes", token=read_only_service_token)
    assert (revoke.returncode, revoke.stderr) == (1, "error: Your role in this team does not allow this.\n")
    assert License.objects.count() == 1 and services.license_find(license_id).revoked_at is None
    for command in (["ls"], ["show", license_id], ["file", license_id]):
        assert portal("license", *command, token=read_only_service_token).returncode == 0, command


def test_debug_output_does_not_show_the_license_id(portal, app):
    license_id = _create(portal, "--customer", "Initech")
    for command in (["show", license_id, "-o", "json"], ["file", license_id]):
        result = portal("license", *command, "--debug")
        assert result.returncode == 0, result.stderr
        assert "> POST " in result.stderr or "> GET " in result.stderr
        assert license_id not in result.stderr, command
        assert license_id in result.stdout
