"""The air-gap API: a release's bundle (GET its state, POST to build), a license's downloads,
a channel's `airgap` flag and an app's `airgap_platforms`."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from delivery.models import AirgapBundle, BundleStatus, Download
from licenses.models import App, Channel
from tests.releasefiles import IMAGES, create_release

pytestmark = pytest.mark.django_db


def _url(release) -> str:
    return f"/api/v1/apps/{release.app.slug}/releases/{release.sequence}/airgap/"


def test_get_shows_a_ready_bundle_with_its_digest_path_and_downloads(admin_api, customer_license, bundle):
    Download.objects.create(license=customer_license.license, kind="airgap", release=bundle.release, sequence=1,
                            range="bytes=5-", status=206, bytes=123)  # fmt: skip
    Download.objects.create(license=customer_license.license, kind="install-kit", release=bundle.release, status=200)
    body = admin_api.get(_url(bundle.release)).json()
    assert {k: body[k] for k in ("sequence", "status", "size", "sha256", "blob_count", "error", "requested_by")} == {
        "sequence": 1, "status": "ready", "size": bundle.size, "sha256": bundle.sha256,
        "blob_count": bundle.blob_count, "error": "", "requested_by": "admin@acme.test",
    }  # fmt: skip
    assert body["download_path"] == "/customer/v1/airgap/1.tar"
    assert body["download_url"] == "http://testserver/customer/v1/airgap/1.tar"
    assert body["progress"] == {"images_done": 1, "images_total": 1, "bytes_done": 0, "bytes_total": 0,
                                "bytes_reused": 0, "percent": 100}  # fmt: skip
    assert body["finished_at"] and body["requested_at"]
    (row,) = body["downloads"]  # air-gap downloads only
    assert (row["customer"], row["range"], row["status"], row["bytes"]) == ("Globex", "bytes=5-", 206, 123)


def test_get_of_a_release_without_a_bundle_is_404_saying_how_to_build(viewer_api, release):
    response = viewer_api.get(_url(release))
    assert response.status_code == 404
    assert "no air-gap bundle yet" in response.json()["message"]
    assert "portal airgap build --app acme-api --release 1" in response.json()["message"]


def test_post_queues_a_build_answering_202_and_a_second_post_returns_it_as_it_is(developer_api, release):
    first = developer_api.post(_url(release))
    assert first.status_code == 202, first.content
    assert (first.json()["status"], first.json()["requested_by"]) == ("queued", "dev@acme.test")
    second = developer_api.post(_url(release))
    assert second.status_code == 202 and second.json()["requested_at"] == first.json()["requested_at"]
    assert AirgapBundle.objects.count() == 1
    assert AuditEvent.objects.filter(action="airgap.build").count() == 1


def test_post_on_a_ready_bundle_builds_it_again(admin_api, bundle):
    response = admin_api.post(_url(bundle.release))
    assert response.json()["status"] == "queued"
    bundle.refresh_from_db()
    assert bundle.status == BundleStatus.QUEUED and bundle.finished_at is None


def test_post_on_a_release_not_ready_is_400_naming_release(admin_api, actor, app):
    resolving = create_release(actor, app, {"app.yaml": IMAGES})
    response = admin_api.post(_url(resolving))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and list(body["errors"]) == ["release"]
    assert body["message"].startswith("release: Release 1 is still resolving its images")


def test_viewers_cannot_build_and_other_teams_get_404(viewer_api, outsider_api, release):
    response = viewer_api.post(_url(release))
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert outsider_api.get(_url(release)).status_code == 404
    assert outsider_api.post(_url(release)).status_code == 404
    assert viewer_api.get("/api/v1/apps/acme-api/releases/9/airgap/").status_code == 404
    assert not AirgapBundle.objects.exists()


def test_a_licenses_downloads_are_paginated_newest_first(admin_api, outsider_api, customer_license, release):
    for n in range(3):
        Download.objects.create(license=customer_license.license, kind="airgap", release=release, status=200, bytes=n)
    url = f"/api/v1/licenses/{customer_license.license.pk}/downloads/"
    page = admin_api.get(url, {"page_size": 2}).json()
    assert page["count"] == 3 and [r["bytes"] for r in page["results"]] == [2, 1]
    assert page["results"][0]["kind"] == "airgap" and page["results"][0]["license"] == customer_license.license.pk
    assert page["next"]
    assert outsider_api.get(url).status_code == 404
    assert admin_api.get("/api/v1/licenses/999999/downloads/").status_code == 404


# --- channels and the app ----------------------------------------------------------------------------


def test_channels_carry_the_airgap_flag_on_create_and_patch(admin_api, viewer_api, app):
    created = admin_api.post("/api/v1/apps/acme-api/channels/", {"name": "offline", "airgap": True}, format="json")
    assert created.status_code == 201 and created.json()["airgap"] is True
    assert admin_api.get("/api/v1/apps/acme-api/channels/stable/").json()["airgap"] is False
    patched = admin_api.patch("/api/v1/apps/acme-api/channels/stable/", {"airgap": True}, format="json")
    assert patched.status_code == 200 and patched.json()["airgap"] is True
    assert Channel.objects.get(app=app, name="stable").airgap
    bad = admin_api.patch("/api/v1/apps/acme-api/channels/stable/", {"airgap": "maybe"}, format="json")
    assert bad.status_code == 400 and list(bad.json()["errors"]) == ["airgap"]
    denied = viewer_api.patch("/api/v1/apps/acme-api/channels/stable/", {"airgap": False}, format="json")
    assert denied.status_code == 403
    assert AuditEvent.objects.filter(action="channel.update", target="acme-api/stable").count() == 1


def test_an_apps_airgap_platforms_are_read_and_set_each_validated(admin_api, app):
    assert admin_api.get("/api/v1/apps/acme-api/").json()["airgap_platforms"] == []
    ok = admin_api.patch("/api/v1/apps/acme-api/", {"airgap_platforms": ["linux/amd64", "linux/arm/v7"]}, format="json")
    assert ok.status_code == 200 and ok.json()["airgap_platforms"] == ["linux/amd64", "linux/arm/v7"]
    bad = admin_api.patch("/api/v1/apps/acme-api/", {"airgap_platforms": ["linux/amd64", "x86"]}, format="json")
    assert bad.status_code == 400
    assert bad.json()["message"].startswith("airgap_platforms: Platform 2 “x86” must look like os/arch")
    assert App.objects.get(pk=app.pk).airgap_platforms == ["linux/amd64", "linux/arm/v7"]
