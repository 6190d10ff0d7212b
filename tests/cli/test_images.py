"""`portal image ls|rm` against the live portal (no registry runs: the list comes from notifications).

The end-to-end run with a real push and delete is in tests/private/test_images.py.
"""

from __future__ import annotations

import json

import pytest

from licenses.models import App
from registries.models import PrivateImage, PrivateTag

pytestmark = pytest.mark.django_db(transaction=True)

DIGEST = "sha256:" + "d" * 64


@pytest.fixture
def pushed(team):
    app = App.objects.create(team=team, name="Widget", slug="widget")
    image = PrivateImage.objects.create(app=app, repository="widget/api")
    PrivateTag.objects.create(image=image, tag="1.0.0", digest=DIGEST, pushed_by="admin@acme.test",
                              media_type="application/vnd.oci.image.index.v1+json", size=491)  # fmt: skip
    return app


def test_ls_prints_a_table_and_warns_that_the_registry_did_not_answer(portal, pushed, settings):
    result = portal("image", "ls", "--app", "widget")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.startswith("IMAGE") and "DIGEST" in header and "PUSHED BY" in header
    assert row.startswith(f"{settings.REGISTRY_HOST}/widget/api:1.0.0")
    assert DIGEST[:19] in row and DIGEST not in row and "OCI index" in row and "admin@acme.test" in row
    assert result.stderr.startswith("warning: Not refreshed from the private registry (the private registry is not")


def test_ls_json_is_the_api_object(portal, pushed):
    body = json.loads(portal("image", "ls", "--app", "widget", "--output", "json").stdout)
    assert body["app"] == "widget"
    [repository] = body["repositories"]
    assert repository["name"] == "api" and repository["tags"][0]["digest"] == DIGEST


def test_ls_of_an_unknown_app_and_rm_without_confirmation_fail_clearly(portal, pushed):
    missing = portal("image", "ls", "--app", "nope")
    assert (missing.returncode, missing.stderr) == (1, "error: no app “nope” in your team; see: portal app ls\n")
    refused = portal("image", "rm", "api:1.0.0", "--app", "widget")
    assert refused.returncode == 2 and "pass --yes" in refused.stderr
    bad = portal("image", "rm", "api", "--app", "widget", "--yes")
    assert bad.returncode == 2 and "IMAGE:TAG or IMAGE@DIGEST" in bad.stderr
    unreachable = portal("image", "rm", "api:1.0.0", "--app", "widget", "--yes")
    assert unreachable.returncode == 1 and "Nothing was deleted" in unreachable.stderr
    assert PrivateTag.objects.filter(tag="1.0.0").exists()
