"""Uploading a release folder through the real file input, in a real browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from licenses import releases
from licenses.models import Release, ReleaseStatus
from tests import factories

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SETTINGS = 'images:\n- source: public\n  name: redis\n  tag: "7.2"\n- source: public\n  name: nginx\n  tag: "1.27"\n'
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: %s}
spec:
  template:
    spec:
      containers:
      - name: main
        image: %s
"""


def _folder(root, files: dict[str, str]):
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def test_upload_a_folder_with_subfolders_see_lint_errors_then_the_release_resolve(page, screenshot, app, tmp_path):
    # Two files share a base name in different subfolders: only the paths the page's script
    # sends keep them apart. The README is not YAML and is not uploaded.
    good = _folder(
        tmp_path / "my-release",
        {
            "app.yaml": SETTINGS,
            "web/deploy.yaml": DEPLOYMENT % ("web", "nginx:1.27"),
            "cache/deploy.yaml": DEPLOYMENT % ("cache", "redis:7.2"),
            "README.md": "# not part of the release\n",
        },
    )
    bad = _folder(tmp_path / "bad-release", {"app.yaml": "images:\n- source: nowhere\n  name: x\n  tag: '1'\n"})

    page.goto("/login/")
    page.get_by_label("Email").fill("admin@acme.test")
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Dashboard").wait_for()  # a login lands on the dashboard
    page.goto(f"/apps/{app.slug}/")
    page.locator("#releases").get_by_role("link", name="Releases").click()
    expect(page.get_by_role("heading", name="No releases yet")).to_be_visible()
    page.get_by_role("link", name="Upload the first release").click()

    page.get_by_label("Folder").set_input_files(bad)
    page.get_by_role("button", name="Create release").click()
    findings = page.locator("#lint-findings")
    findings.wait_for()
    assert re.search(r"ERROR unknown-source app\.yaml:2 images\[1\] source “nowhere”", findings.inner_text())
    expect(page.get_by_text("1 lint error stops this release")).to_be_visible()
    screenshot("30-release-lint-errors")
    assert not Release.objects.exists()

    page.get_by_label("Folder").set_input_files(good)
    expect(page.get_by_text("3 YAML files of 4 in the folder.")).to_be_visible()
    page.get_by_label("Version").fill("1.0.0")
    page.get_by_label("Promote to").select_option("stable")
    page.get_by_role("button", name="Create release").click()
    page.wait_for_url(re.compile(rf"/apps/{app.slug}/releases/1/$"))

    release = Release.objects.get()
    assert sorted(release.files.values_list("path", flat=True)) == ["app.yaml", "cache/deploy.yaml", "web/deploy.yaml"]
    expect(page.get_by_text("Release 1 created from 3 files and promoted to stable.")).to_be_visible()
    expect(page.get_by_text("Resolving images: 0 of 2 resolved.")).to_be_visible()
    assert releases.channel_current(releases.channel_get(app, "stable")) == release
    screenshot("31-release-resolving")

    # The worker's outcome, written as it would; the polling fragment notices and the page reloads.
    release.images.update(resolved_digest="sha256:" + "d" * 64, visibility="public", size=1_048_576)
    Release.objects.filter(pk=release.pk).update(status=ReleaseStatus.READY)
    page.get_by_text("All 2 images resolved").wait_for(timeout=8_000)
    expect(page.locator("#images").get_by_text("1.0\xa0MB").first).to_be_visible()
    page.locator("#files").get_by_text("web/deploy.yaml").click()  # files are collapsed until opened
    expect(page.locator("#files").get_by_text("name: web")).to_be_visible()
    screenshot("32-release-ready")
