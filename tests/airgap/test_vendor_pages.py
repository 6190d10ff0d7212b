"""The vendor's air-gap pages: the release page's bundle card (status, progress, Build, the
downloads), the channels' air-gap flag, the app's air-gap platforms and the license page's
download log and download command."""

from __future__ import annotations

import base64

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from accounts.models import AuditEvent
from delivery.models import AirgapBundle, BundleStatus, Download
from licenses.models import App, Channel, ReleaseStatus
from tests.airgap import stored
from tests.releasefiles import IMAGES, create_release

pytestmark = pytest.mark.django_db


def _release_url(release) -> str:
    return reverse("licenses:release-detail", args=[release.app.slug, release.sequence])


def _build_url(release) -> str:
    return reverse("delivery:airgap-build", args=[release.app.slug, release.sequence])


def _status_url(release) -> str:
    return reverse("delivery:airgap-status", args=[release.app.slug, release.sequence])


def _customer_get(customer_license, path: str, **headers):
    auth = base64.b64encode(f"{customer_license.license_id}:{customer_license.license_id}".encode()).decode()
    response = Client(REMOTE_ADDR="192.0.2.44").get(path, HTTP_AUTHORIZATION=f"Basic {auth}", **headers)
    if response.streaming:
        b"".join(response.streaming_content)  # read to the end: the log row gets the bytes sent
    return response


# --- the release page's card --------------------------------------------------------------------


def test_a_release_without_a_bundle_offers_writers_the_build_button_and_viewers_none(
    admin_client, viewer_client, release
):
    page = admin_client.get(_release_url(release)).content.decode()
    assert 'id="airgap"' in page and "No bundle yet." in page
    assert f'action="{_build_url(release)}"' in page and "Build bundle</button>" in page
    viewer_page = viewer_client.get(_release_url(release)).content.decode()
    assert "No bundle yet." in viewer_page and _build_url(release) not in viewer_page


def test_a_ready_bundle_shows_its_size_digests_sha256_path_and_downloads(admin_client, customer_license, bundle):
    _customer_get(customer_license, "/customer/v1/airgap/latest.tar", HTTP_RANGE="bytes=0-99")
    page = admin_client.get(_release_url(bundle.release)).content.decode()
    assert f"({bundle.size} bytes)" in page
    assert f"{bundle.blob_count} blobs, each stored once" in page
    assert f'<code class="digest" id="airgap-sha256">{bundle.sha256}</code>' in page
    assert '<code id="airgap-path">/customer/v1/airgap/1.tar</code>' in page
    assert "curl -fL -C - -u" in page
    assert "Build again</button>" in page
    assert "Globex" in page and "<code>bytes=0-99</code>" in page and ">206<" in page and "100\xa0bytes" in page


def test_a_failed_bundle_shows_its_error_and_build_again(admin_client, bundle):
    AirgapBundle.objects.filter(pk=bundle.pk).update(
        status=BundleStatus.FAILED, error="quay.io/acme/api:1.0 (sha256:ab…): upstream answered 401"
    )
    page = admin_client.get(_release_url(bundle.release)).content.decode()
    assert escape("quay.io/acme/api:1.0 (sha256:ab…): upstream answered 401") in page
    assert "The build failed" in page and "Build again</button>" in page


def test_a_building_bundle_shows_progress_and_polls_without_a_button(admin_client, bundle):
    AirgapBundle.objects.filter(pk=bundle.pk).update(
        status=BundleStatus.BUILDING, images_total=3, images_done=1, bytes_total=4 * 2**20, bytes_done=2**20
    )
    page = admin_client.get(_release_url(bundle.release)).content.decode()
    assert "Building: images 1 of 3; 1.0\xa0MB of 4.0\xa0MB fetched." in page
    assert f'hx-get="{_status_url(bundle.release)}" hx-trigger="every 2s"' in page
    assert "Build again" not in page and "Build bundle" not in page


def test_the_status_partial_answers_htmx_until_the_build_ends_then_refreshes(admin_client, bundle):
    url = _status_url(bundle.release)
    AirgapBundle.objects.filter(pk=bundle.pk).update(status=BundleStatus.QUEUED)
    partial = admin_client.get(url, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200 and b"Queued: waiting for a worker" in partial.content
    assert b"<html" not in partial.content
    AirgapBundle.objects.filter(pk=bundle.pk).update(status=BundleStatus.READY)
    done = admin_client.get(url, HTTP_HX_REQUEST="true")
    assert done["HX-Refresh"] == "true"
    assert admin_client.get(url)["Location"] == _release_url(bundle.release) + "#airgap"


def test_build_queues_the_bundle_audits_and_says_so(admin_client, release):
    response = admin_client.post(_build_url(release), follow=True)
    bundle = AirgapBundle.objects.get(release=release)
    assert bundle.status == BundleStatus.QUEUED and bundle.requested_by == "admin@acme.test"
    assert "The air-gap bundle of release 1 is queued to be built." in response.content.decode()
    assert AuditEvent.objects.filter(action="airgap.build", target="acme-api#1").exists()
    assert "Queued: waiting for a worker" in response.content.decode()


def test_build_of_a_release_still_resolving_shows_why_not(admin_client, actor, app):
    resolving = create_release(actor, app, {"app.yaml": IMAGES})
    assert resolving.status == ReleaseStatus.RESOLVING
    page = admin_client.post(_build_url(resolving), follow=True).content.decode()
    assert "Not built: Release 1 is still resolving its images" in page
    assert not AirgapBundle.objects.exists()
    assert "The bundle can be built once the release's images are resolved" in page


def test_viewers_cannot_build_and_outsiders_get_404(viewer_client, outsider_client, release):
    assert viewer_client.post(_build_url(release)).status_code == 403
    assert outsider_client.post(_build_url(release)).status_code == 404
    assert outsider_client.get(_status_url(release), HTTP_HX_REQUEST="true").status_code == 404
    assert not AirgapBundle.objects.exists()


# --- channels ---------------------------------------------------------------------------------------


def test_a_channel_is_created_as_air_gap_and_unmarked_again_audited(admin_client, app):
    url = reverse("licenses:channel-list", args=[app.slug])
    admin_client.post(url, {"name": "offline", "airgap": "on"})
    channel = Channel.objects.get(app=app, name="offline")
    assert channel.airgap
    assert AuditEvent.objects.get(action="channel.create", target="acme-api/offline").detail == {"airgap": True}
    page = admin_client.get(url).content.decode()
    assert 'id="airgap-offline"' in page and "Unmark air gap" in page

    edit = reverse("licenses:channel-edit", args=[app.slug, "offline"])
    response = admin_client.post(edit, {"airgap": ""}, follow=True)
    assert "is no longer an air-gap channel" in response.content.decode()
    channel.refresh_from_db()
    assert not channel.airgap
    admin_client.post(reverse("licenses:channel-edit", args=[app.slug, "stable"]), {"airgap": "on"})
    assert Channel.objects.get(app=app, name="stable").airgap
    events = AuditEvent.objects.filter(action="channel.update").order_by("pk").values_list("target", "detail")
    assert list(events) == [("acme-api/offline", {"airgap": False}), ("acme-api/stable", {"airgap": True})]


def test_viewers_see_the_flag_without_the_button_and_cannot_change_it(viewer_client, app):
    Channel.objects.filter(app=app, name="stable").update(airgap=True)
    page = viewer_client.get(reverse("licenses:channel-list", args=[app.slug])).content.decode()
    assert 'id="airgap-stable"' in page and "Unmark air gap" not in page
    assert viewer_client.post(reverse("licenses:channel-edit", args=[app.slug, "stable"]), {}).status_code == 403
    assert Channel.objects.get(app=app, name="stable").airgap


def test_promoting_to_an_air_gap_channel_queues_the_bundle(
    admin_client, actor, app, django_capture_on_commit_callbacks
):
    Channel.objects.filter(app=app, name="beta").update(airgap=True)
    release = stored.ready_release(actor, app, promote_to="")
    assert not AirgapBundle.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("licenses:release-promote", args=[app.slug, 1]), {"channel": "beta"})
    assert AirgapBundle.objects.get(release=release).requested_by == "air-gap channel"


# --- the app's platforms ------------------------------------------------------------------------------


def test_air_gap_platforms_are_saved_cleaned_and_audited(admin_client, app):
    url = reverse("licenses:app-airgap-platforms", args=[app.slug])
    response = admin_client.post(url, {"airgap_platforms": "linux/amd64, Linux/ARM64/v8 linux/amd64"}, follow=True)
    app.refresh_from_db()
    assert app.airgap_platforms == ["linux/amd64", "linux/arm64/v8"]
    assert "keep: linux/amd64, linux/arm64/v8." in response.content.decode()
    assert AuditEvent.objects.get(action="app.airgap_platforms").detail == {"platforms": app.airgap_platforms}


def test_a_malformed_platform_is_refused_naming_it(admin_client, app):
    url = reverse("licenses:app-airgap-platforms", args=[app.slug])
    response = admin_client.post(url, {"airgap_platforms": "linux/amd64 amd64"})
    assert response.status_code == 200
    assert escape("Platform 2 “amd64” must look like os/arch or os/arch/variant") in response.content.decode()
    assert App.objects.get(pk=app.pk).airgap_platforms == []
    assert not AuditEvent.objects.filter(action="app.airgap_platforms").exists()


def test_viewers_cannot_set_platforms(viewer_client, app):
    url = reverse("licenses:app-airgap-platforms", args=[app.slug])
    assert viewer_client.post(url, {"airgap_platforms": "linux/amd64"}).status_code == 403
    assert "Save platforms" not in viewer_client.get(reverse("licenses:app-detail", args=[app.slug])).content.decode()


# --- the license page ----------------------------------------------------------------------------------


def test_the_license_page_lists_its_downloads_with_a_count(admin_client, customer_license, bundle, settings):
    settings.REGISTRY_HOST = "registry.example.test"
    _customer_get(customer_license, "/customer/v1/airgap/latest.tar", HTTP_USER_AGENT="curl/7.88.1")
    _customer_get(customer_license, "/customer/v1/airgap/9.tar")
    page = admin_client.get(reverse("delivery:license-detail", args=[customer_license.license.pk])).content.decode()
    assert 'id="downloads"' in page and "2 downloads in all." in page
    assert "Air-gap bundle</td>" in page and "#9" in page and ">404<" in page and "curl/7.88.1" in page


def test_the_license_page_shows_the_download_command_only_on_an_air_gap_channel(
    admin_client, customer_license, settings
):
    settings.REGISTRY_HOST = "registry.example.test"
    url = reverse("delivery:license-detail", args=[customer_license.license.pk])
    assert "/customer/v1/airgap/latest.tar" not in admin_client.get(url).content.decode()
    Channel.objects.filter(pk=customer_license.license.channel_id).update(airgap=True)
    page = admin_client.get(url).content.decode()
    assert (
        'curl -fL -C - -u "$LICENSE_ID:$LICENSE_ID" -o acme-api-airgap.tar http://testserver/customer/v1/airgap/latest.tar'
        in page.replace("&quot;", '"')
    )
    assert Download.objects.count() == 0
