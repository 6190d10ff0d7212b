"""`portal airgap build|show` and `portal channel create --airgap|edit`, against the live portal.

No builder runs here (delivery/airgap/build.py is a Celery task): `--wait` is tested with
bundles whose state the test sets while the CLI polls, as the worker would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from delivery.models import AirgapBundle, BundleStatus, Download
from licenses.models import Channel
from tests.airgap import stored
from tests.releasefiles import IMAGES, create_release

pytestmark = pytest.mark.django_db(transaction=True)


def _build_and_wait(portal, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "portal_cli.main", "airgap", "build", "--app", "acme-api", "--release", "1",
         "--wait", "--wait-timeout", "30", *args],
        env=portal.env(portal.token, None, None),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _queued_bundle(process: subprocess.Popen) -> AirgapBundle:
    """The bundle the CLI asked for, once it exists and while the CLI still waits for it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        bundle = AirgapBundle.objects.first()
        if bundle is not None:
            time.sleep(1)  # the CLI has polled at least once and seen `queued`
            assert process.poll() is None, process.communicate()
            return bundle
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"no bundle was asked for: {process.communicate()}")


def _set(bundle: AirgapBundle, pause: float = 1.5, **fields) -> None:
    AirgapBundle.objects.filter(pk=bundle.pk).update(**fields)
    time.sleep(pause)  # long enough for a poll (every 2 s at most) to see it


def test_build_queues_the_bundle_and_prints_its_status(portal, actor, app):
    stored.ready_release(actor, app)
    result = portal("airgap", "build", "--app", "acme-api", "--release", "1")
    assert (result.returncode, result.stdout) == (0, "queued\n"), result.stderr
    assert AirgapBundle.objects.get().requested_by == "admin@acme.test"


def test_build_wait_prints_progress_lines_then_the_ready_bundle(portal, actor, app, tmp_path):
    """The download is the whole URL on the host the team's customers use (here the portal's)."""
    release = stored.ready_release(actor, app)
    process = _build_and_wait(portal)
    bundle = _queued_bundle(process)
    _set(bundle, status=BundleStatus.BUILDING, images_total=2, images_done=1, bytes_total=4 * 2**20, bytes_done=2**20)
    stored.store_ready_bundle(release, tmp_path)
    out, err = process.communicate(timeout=30)
    bundle.refresh_from_db()
    assert process.returncode == 0, err
    lines = err.splitlines()
    assert lines[0] == "queued: images 0/0 (0 %)"
    assert "building: images 1/2, 1.0 MB of 4.0 MB (25 %)" in lines
    assert f"sha256        {bundle.sha256}" in out
    assert f"download      {portal.url}/customer/v1/airgap/1.tar" in out and "status        ready" in out


def test_build_wait_exits_1_with_the_error_when_the_build_fails(portal, actor, app):
    stored.ready_release(actor, app)
    process = _build_and_wait(portal)
    bundle = _queued_bundle(process)
    _set(bundle, pause=0, status=BundleStatus.FAILED, error="quay.io/acme/api:1.0: upstream answered 401")
    out, err = process.communicate(timeout=30)
    assert process.returncode == 1, (out, err)
    assert err.splitlines()[-1] == (
        "error: the air-gap bundle of release 1 failed: quay.io/acme/api:1.0: upstream answered 401"
    )


def test_build_of_a_release_not_ready_names_the_release(portal, actor, app):
    create_release(actor, app, {"app.yaml": IMAGES})
    result = portal("airgap", "build", "--app", "acme-api", "--release", "1")
    assert result.returncode == 1
    assert result.stderr.startswith("error: release: Release 1 is still resolving its images")


def test_show_prints_the_bundle_and_its_downloads_and_json_on_request(portal, actor, app, customer_license, tmp_path):
    release = stored.ready_release(actor, app)
    bundle = stored.store_ready_bundle(release, tmp_path)
    Download.objects.create(license=customer_license.license, kind="airgap", release=release, range="bytes=0-",
                            status=206, bytes=bundle.size)  # fmt: skip
    result = portal("airgap", "show", "--app", "acme-api", "--release", "1")
    assert result.returncode == 0, result.stderr
    assert f"sha256        {bundle.sha256}" in result.stdout
    assert f"blobs         {bundle.blob_count}" in result.stdout and "platforms     all" in result.stdout
    assert "CUSTOMER" in result.stdout and "Globex" in result.stdout and "bytes=0-" in result.stdout
    as_json = portal("airgap", "show", "--app", "acme-api", "--release", "1", "--output", "json")
    data = json.loads(as_json.stdout)
    assert (data["status"], data["size"], data["downloads"][0]["status"]) == ("ready", bundle.size, 206)


def test_show_says_what_is_missing(portal, actor, app):
    stored.ready_release(actor, app)
    none = portal("airgap", "show", "--app", "acme-api", "--release", "1")
    assert none.returncode == 1
    assert "no air-gap bundle yet" in none.stderr and "portal airgap build --app acme-api --release 1" in none.stderr
    missing = portal("airgap", "show", "--app", "acme-api", "--release", "7")
    assert missing.stderr == (
        "error: no release 7 in app acme-api (or no such app in your team); see: portal release ls --app acme-api\n"
    )
    bad = portal("airgap", "show", "--app", "../tokens", "--release", "1")
    assert bad.returncode == 1 and "no app" in bad.stderr


# --- channels ----------------------------------------------------------------------------------------


def test_channel_create_airgap_and_edit_toggle_the_flag(portal, app):
    created = portal("channel", "create", "--app", "acme-api", "offline", "--airgap")
    assert (created.returncode, created.stdout) == (0, "offline\n"), created.stderr
    assert Channel.objects.get(app=app, name="offline").airgap
    off = portal("channel", "edit", "--app", "acme-api", "offline", "--no-airgap")
    assert (off.returncode, off.stdout) == (0, "Channel offline of acme-api is not an air-gap channel.\n"), off.stderr
    assert not Channel.objects.get(app=app, name="offline").airgap
    on = portal("channel", "edit", "--app", "acme-api", "stable", "--airgap", "-o", "json")
    assert json.loads(on.stdout)["airgap"] is True
    listed = portal("channel", "ls", "--app", "acme-api")
    assert listed.stdout.splitlines()[0].split()[4:6] == ["AIR", "GAP"]
    assert [row.split()[4] for row in listed.stdout.splitlines()[1:]] == ["yes", "no", "no", "no"]


def test_channel_edit_needs_a_change_and_an_existing_channel(portal, app):
    nothing = portal("channel", "edit", "--app", "acme-api", "stable")
    assert nothing.returncode == 2 and "give --airgap or --no-airgap" in nothing.stderr
    missing = portal("channel", "edit", "--app", "acme-api", "nightly", "--airgap")
    assert missing.returncode == 1
    assert missing.stderr == "error: no channel nightly in app acme-api; see: portal channel ls --app acme-api\n"
