"""`portal release create|ls|show|lint|promote`, `portal channel ls|create`, `portal app rules`
and a license's channel, against the live portal.

No resolver runs here (it is a Celery task of registries/); `--wait` is tested with a release
of no images (ready at once) and with releases whose status the test sets while the CLI polls,
as the resolver would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from licenses import releases, services
from licenses.models import License, Release, ReleaseFinding, ReleaseStatus
from tests.releasefiles import DEPLOYMENT

pytestmark = pytest.mark.django_db(transaction=True)

DIGEST = "sha256:" + "c" * 64
# One image, so that the tests below can say what happens to it.
SETTINGS = """\
images:
- source: public
  name: redis
  tag: "7.2"
additionalNamespaces: [monitoring]
"""


def write(folder: Path, files: dict[str, str]) -> str:
    for path, content in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    return str(folder)


@pytest.fixture
def release_dir(tmp_path) -> str:
    return write(
        tmp_path / "release",
        {
            "app.yaml": SETTINGS,
            "manifests/api.yml": DEPLOYMENT,
            "README.md": "not YAML: left out",
            ".hidden.yaml": "left: out",
            ".git/config.yaml": "left: out",
        },
    )


@pytest.fixture
def empty_release_dir(tmp_path) -> str:
    return write(tmp_path / "empty", {"app.yaml": "images: []\n"})


# --- create ------------------------------------------------------------------------------------


def test_create_uploads_the_folders_yaml_and_prints_the_sequence(portal, app, release_dir):
    result = portal(
        "release", "create", "--app", "acme-api", "--yaml-dir", release_dir,
        "--version", "1.4.2", "--notes", "Faster.", "--promote", "beta",
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (0, "1\n"), result.stderr
    release = Release.objects.get(app=app)
    assert (release.sequence, release.version, release.notes) == (1, "1.4.2", "Faster.")
    assert sorted(release.files.values_list("path", flat=True)) == ["app.yaml", "manifests/api.yml"]
    assert release.promotions.get().channel.name == "beta"
    second = portal("release", "create", "--app", "acme-api", "--yaml-dir", release_dir, "-o", "json")
    assert second.returncode == 0, second.stderr
    data = json.loads(second.stdout)
    assert (data["sequence"], data["status"], data["channels"]) == (2, "resolving", [])


def test_create_with_lint_errors_prints_every_finding_and_stores_nothing(portal, app, tmp_path):
    folder = write(
        tmp_path / "bad",
        {"app.yaml": "images:\n- source: quay-prod\n  name: acme/api\n  tag: '1'\n", "broken.yaml": "a: [1\n"},
    )
    result = portal("release", "create", "--app", "acme-api", "--yaml-dir", folder)
    assert (result.returncode, result.stdout) == (1, "")
    lines = result.stderr.splitlines()
    assert any(line.startswith("ERROR yaml-syntax broken.yaml:") for line in lines), lines
    assert any(line.startswith("ERROR unknown-source app.yaml:2 ") for line in lines), lines
    assert lines[-1] == "error: the release has 2 lint errors; nothing was stored"
    assert not Release.objects.exists()


def test_create_names_the_problem_before_sending_anything(portal, app, tmp_path):
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "notes.txt").write_text("hi")
    result = portal("release", "create", "--app", "acme-api", "--yaml-dir", str(tmp_path / "nothing"))
    assert (result.returncode, result.stderr) == (1, f"error: no .yaml or .yml files in {tmp_path / 'nothing'}\n")
    missing = portal("release", "create", "--app", "acme-api", "--yaml-dir", str(tmp_path / "gone"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    unknown = portal("release", "create", "--app", "nope", "--yaml-dir", write(tmp_path / "ok", {"a.yaml": "a: 1"}))
    assert (unknown.returncode, unknown.stderr) == (1, "error: no app “nope” in your team; see: portal app ls\n")
    channel = portal("release", "create", "--app", "acme-api", "--yaml-dir", str(tmp_path / "ok"), "--promote", "gold")
    assert channel.returncode == 1
    assert channel.stderr.startswith("error: channel: No channel “gold” in acme-api; choose one of: stable, beta")
    assert not Release.objects.exists()


def test_a_read_only_token_lints_but_cannot_create(portal, app, release_dir, read_only_service_token):
    result = portal("release", "create", "--app", "acme-api", "--yaml-dir", release_dir, token=read_only_service_token)
    assert (result.returncode, result.stderr) == (1, "error: Your role in this team does not allow this.\n")
    lint = portal("release", "lint", "--app", "acme-api", "--yaml-dir", release_dir, token=read_only_service_token)
    assert lint.returncode == 0, lint.stderr
    assert not Release.objects.exists()


# --- create --wait ---------------------------------------------------------------------------------


def test_wait_returns_at_once_for_a_release_without_images(portal, app, empty_release_dir):
    started = time.monotonic()
    result = portal("release", "create", "--app", "acme-api", "--yaml-dir", empty_release_dir, "--wait")
    assert (result.returncode, result.stdout) == (0, "1\n"), result.stderr
    assert time.monotonic() - started < 10
    assert Release.objects.get().status == ReleaseStatus.READY


def _create_and_wait(portal, release_dir: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "portal_cli.main", "release", "create", "--app", "acme-api"]
        + ["--yaml-dir", release_dir, "--wait", "--wait-timeout", "30"],
        env=portal.env(portal.token, None, None),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _resolving_release(process: subprocess.Popen) -> Release:
    """The release the CLI created, once it exists and while the CLI still waits for it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        release = Release.objects.filter(app__slug="acme-api").first()
        if release is not None:
            time.sleep(1)  # the CLI has polled at least once and seen `resolving`
            assert process.poll() is None, process.communicate()
            return release
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"no release was created: {process.communicate()}")


def test_wait_polls_until_the_release_is_ready(portal, app, release_dir):
    process = _create_and_wait(portal, release_dir)
    release = _resolving_release(process)
    release.images.update(resolved_digest=DIGEST, visibility="public", platforms=["linux/amd64"], size=1234)
    Release.objects.filter(pk=release.pk).update(status=ReleaseStatus.READY)
    out, err = process.communicate(timeout=30)
    assert (process.returncode, out) == (0, "1\n"), err


def test_wait_exits_1_with_the_errors_when_resolving_fails(portal, app, release_dir):
    process = _create_and_wait(portal, release_dir)
    release = _resolving_release(process)
    ReleaseFinding.objects.create(
        release=release,
        level="error",
        rule="image-not-found",
        file="app.yaml",
        line=2,
        message="index.docker.io/library/redis:7.2 was not found",
        image=release.images.get(),
    )
    Release.objects.filter(pk=release.pk).update(status=ReleaseStatus.FAILED)
    out, err = process.communicate(timeout=30)
    assert (process.returncode, out) == (1, "1\n"), err
    lines = err.splitlines()
    assert "ERROR image-not-found app.yaml:2 index.docker.io/library/redis:7.2 was not found" in lines
    assert lines[-1] == "error: release 1 failed: its images could not all be resolved"


# --- ls, show --------------------------------------------------------------------------------------


def test_ls_and_show(portal, actor, app, release_dir):
    assert portal("release", "ls", "--app", "acme-api").stderr.startswith("No releases yet")
    portal("release", "create", "--app", "acme-api", "--yaml-dir", release_dir, "--version", "1.0")
    release = Release.objects.get()
    release.images.update(
        resolved_digest=DIGEST, visibility="public", platforms=["linux/amd64", "linux/arm64"], size=41_500_000
    )
    releases.release_promote(actor=actor, release=release, channel="stable")

    table = portal("release", "ls", "--app", "acme-api")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split()[:4] == ["SEQ", "VERSION", "STATUS", "CHANNELS"]
    assert row.split()[:4] == ["1", "1.0", "resolving", "stable"]

    shown = portal("release", "show", "--app", "acme-api", "1", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["status"] == "resolving"
    [image] = data["images"]
    assert {k: image[k] for k in ("source", "name", "tag", "digest", "visibility", "platforms", "size")} == {
        "source": "public", "name": "redis", "tag": "7.2", "digest": DIGEST, "visibility": "public",
        "platforms": ["linux/amd64", "linux/arm64"], "size": 41_500_000,
    }  # fmt: skip
    assert image["findings"] == [] and isinstance(data["findings"], list)

    people = portal("release", "show", "--app", "acme-api", "1")
    assert people.returncode == 0, people.stderr
    assert "status      resolving" in people.stdout
    image_row = next(line for line in people.stdout.splitlines() if line.startswith("public"))
    assert image_row.split()[:3] == ["public", "redis", "7.2"] and "39.6 MB" in image_row
    assert "linux/amd64, linux/arm64" in image_row


def test_show_names_a_missing_release_or_app(portal, app):
    missing = portal("release", "show", "--app", "acme-api", "9")
    assert (missing.returncode, missing.stderr) == (
        1,
        "error: no release 9 in app acme-api; see: portal release ls --app acme-api\n",
    )
    other = portal("release", "show", "--app", "globex", "1")
    assert other.stderr == "error: no app “globex” in your team; see: portal app ls\n"
    assert portal("release", "show", "--app", "acme-api", "0").returncode == 2


# --- lint ------------------------------------------------------------------------------------------


def test_lint_prints_one_finding_per_line_and_exits_1_on_errors(portal, app, tmp_path):
    warned = write(tmp_path / "warned", {"app.yaml": "images: []\n", "api.yaml": DEPLOYMENT})
    result = portal("release", "lint", "--app", "acme-api", "--yaml-dir", warned)
    assert result.returncode == 0, result.stderr
    # Warnings (redis:7.2 is not in images:, once that rule exists) do not fail the lint.
    assert all(line.startswith(("WARNING ", "INFO ")) for line in result.stdout.splitlines()), result.stdout
    assert result.stdout or result.stderr == "No findings.\n"

    broken = write(tmp_path / "broken", {"app.yaml": "images: []\n", "x.yaml": "a: [1\n"})
    result = portal("release", "lint", "--app", "acme-api", "--yaml-dir", broken)
    assert result.returncode == 1
    assert result.stdout.startswith("ERROR yaml-syntax x.yaml:")
    assert result.stderr == "error: 1 lint error: the portal would refuse this release\n"
    as_json = portal("release", "lint", "--app", "acme-api", "--yaml-dir", broken, "-o", "json")
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["ok"] is False
    assert not Release.objects.exists()


# --- promote, channels -------------------------------------------------------------------------------


def test_promote_and_channel_ls(portal, actor, app, empty_release_dir):
    portal("release", "create", "--app", "acme-api", "--yaml-dir", empty_release_dir, "--version", "1.0")
    result = portal("release", "promote", "--app", "acme-api", "1", "--channel", "stable")
    assert (result.returncode, result.stdout) == (0, "Promoted release 1 of acme-api to stable.\n"), result.stderr
    services.license_create(actor=actor, app=app, customer_name="Globex")

    table = portal("channel", "ls", "--app", "acme-api")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "CURRENT", "VERSION", "LICENSES"]
    assert [row.split()[:4] for row in rows] == [
        ["stable", "1", "1.0", "1"],
        ["beta", "-", "-", "0"],
        ["unstable", "-", "-", "0"],
    ]
    as_json = json.loads(portal("channel", "ls", "--app", "acme-api", "-o", "json").stdout)
    assert as_json[0] == {**as_json[0], "name": "stable", "current_release": 1, "license_count": 1}


def test_promote_names_a_bad_channel_or_release(portal, app, empty_release_dir):
    portal("release", "create", "--app", "acme-api", "--yaml-dir", empty_release_dir)
    bad = portal("release", "promote", "--app", "acme-api", "1", "--channel", "gold")
    assert bad.returncode == 1 and bad.stderr.startswith("error: channel: No channel “gold” in acme-api")
    missing = portal("release", "promote", "--app", "acme-api", "7", "--channel", "stable")
    assert missing.stderr == "error: no release 7 in app acme-api; see: portal release ls --app acme-api\n"
    assert not Release.objects.get().promotions.exists()


def test_channel_create(portal, app):
    result = portal("channel", "create", "--app", "acme-api", "lts-2026")
    assert (result.returncode, result.stdout) == (0, "lts-2026\n"), result.stderr
    again = portal("channel", "create", "--app", "acme-api", "lts-2026")
    assert again.returncode == 1 and again.stderr == "error: name: acme-api already has a channel “lts-2026”.\n"


# --- a license's channel ----------------------------------------------------------------------------------


def test_license_create_on_a_channel_and_show_it(portal, app):
    created = portal("license", "create", "--app", "acme-api", "--customer", "Initech", "--channel", "beta")
    assert created.returncode == 0, created.stderr
    license = License.objects.get()
    assert license.channel.name == "beta"
    shown = portal("license", "show", str(license.pk))
    assert "channel     beta" in shown.stdout
    listed = portal("license", "ls", "--app", "acme-api")
    header, row = listed.stdout.splitlines()
    assert row[header.index("CHANNEL") :].startswith("beta")
    bad = portal("license", "create", "--app", "acme-api", "--customer", "X", "--channel", "gold")
    assert bad.returncode == 1 and bad.stderr.startswith("error: channel: No channel “gold” in acme-api")
    assert License.objects.count() == 1


# --- app rules ---------------------------------------------------------------------------------------------


def test_app_rules_set_ls_and_clear(portal, app):
    empty = portal("app", "rules", "ls", "acme-api")
    assert (empty.returncode, empty.stdout) == (0, "")
    assert "pull only the images of releases promoted to their channel" in empty.stderr

    result = portal("app", "rules", "set", "acme-api", "Quay.io/acme/*", "127.0.0.1__5000/a/b")
    assert (result.returncode, result.stdout) == (0, "127.0.0.1:5000/a/b\nquay.io/acme/*\n"), result.stderr
    assert portal("app", "rules", "ls", "acme-api").stdout == "127.0.0.1:5000/a/b\nquay.io/acme/*\n"
    as_json = json.loads(portal("app", "rules", "ls", "acme-api", "-o", "json").stdout)
    assert as_json == {"repository_rules": ["127.0.0.1:5000/a/b", "quay.io/acme/*"]}

    bad = portal("app", "rules", "set", "acme-api", "quay.io/ok", "../etc")
    assert bad.returncode == 1
    assert bad.stderr == "error: repository_rules: Rule 2 must look like quay.io/acme/api or quay.io/acme/*.\n"
    app.refresh_from_db()
    assert app.repository_rules == ["127.0.0.1:5000/a/b", "quay.io/acme/*"]

    cleared = portal("app", "rules", "set", "acme-api")
    assert cleared.returncode == 0 and cleared.stdout == ""
    app.refresh_from_db()
    assert app.repository_rules == []
    unknown = portal("app", "rules", "ls", "globex")
    assert unknown.stderr == "error: no app “globex” in your team; see: portal app ls\n"


def test_sizes_read_the_same_in_the_cli_as_on_the_release_page():
    from django.template.defaultfilters import filesizeformat

    from portal_cli.commands.releases import size_text

    for size in (0, 999, 66_520, 3 * 1024 * 1024 + 1, 5 * 1024**3):
        assert size_text(size) == filesizeformat(size).replace("\xa0", " "), size
