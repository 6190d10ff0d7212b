"""GET|HEAD /customer/v1/airgap/…: the customer's bundle download, authorised by the license,
with Range (resume), If-Range, the digest headers, and the license's download log."""

from __future__ import annotations

import base64
import hashlib
import itertools
import logging
import secrets
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from delivery.airgap import download
from delivery.airgap.storage import bundle_store
from delivery.models import AirgapBundle, BundleStatus, Download
from licenses import services as licenses
from licenses.models import License
from portal.objectstore import CHUNK
from tests.airgap import stored

pytestmark = pytest.mark.django_db

LATEST = "/customer/v1/airgap/latest.tar"
_run = secrets.token_hex(2)
_addresses = itertools.count(1)


def _client() -> Client:
    """A client from an address of its own: failed attempts count per address."""
    return Client(REMOTE_ADDR=f"2001:db8:{_run}:a9::{next(_addresses):x}")


def _auth(license_id: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{license_id}:{license_id}".encode()).decode()}


def _get(customer_license, path: str = LATEST, **headers):
    return _client().get(path, **_auth(customer_license.license_id), **headers)


def _head(customer_license, path: str = LATEST, **headers):
    return _client().head(path, **_auth(customer_license.license_id), **headers)


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def _file(bundle: AirgapBundle) -> bytes:
    return b"".join(bundle_store().read(bundle.storage_key))


def _error(response, status: int, code: str, text: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code and text in body["message"], body
    return body


# --- the whole file ---------------------------------------------------------------------------


def test_the_latest_bundle_streams_whole_with_its_length_name_and_digests(customer_license, bundle):
    response = _get(customer_license, HTTP_USER_AGENT="curl/7.88.1")
    assert response.status_code == 200
    data = _body(response)
    assert data == _file(bundle) and len(data) == bundle.size
    assert hashlib.sha256(data).hexdigest() == bundle.sha256
    assert response["Content-Length"] == str(bundle.size)
    assert response["Content-Type"] == "application/x-tar"
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Disposition"] == 'attachment; filename="acme-api-1-airgap.tar"'
    assert response["ETag"] == f'"{bundle.sha256}"'
    assert response["X-Bundle-Sha256"] == bundle.sha256
    assert response["Repr-Digest"] == "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"
    assert "Content-Range" not in response
    row = Download.objects.get()
    assert (row.license_id, row.kind, row.release_id, row.sequence, row.range, row.status, row.bytes) == (
        customer_license.license.pk, "airgap", bundle.release_id, 1, "", 200, bundle.size,
    )  # fmt: skip
    assert row.user_agent == "curl/7.88.1" and row.address.startswith("2001:db8:")


def test_a_release_by_its_sequence_is_served_when_it_was_promoted_to_the_channel(
    actor, app, customer_license, bundle, tmp_path
):
    second = stored.ready_release(actor, app, version="2.0")
    other = stored.store_ready_bundle(second, tmp_path / "second")
    assert _body(_get(customer_license, "/customer/v1/airgap/1.tar")) == _file(bundle)
    assert _body(_get(customer_license)) == _file(other)  # latest: release 2 now
    assert list(Download.objects.order_by("pk").values_list("sequence", flat=True)) == [1, 2]


def test_head_answers_the_headers_without_a_body(customer_license, bundle):
    response = _head(customer_license)
    assert response.status_code == 200
    assert response.content == b""
    assert response["Content-Length"] == str(bundle.size)
    assert response["X-Bundle-Sha256"] == bundle.sha256
    assert Download.objects.get().bytes == 0
    ranged = _head(customer_license, HTTP_RANGE="bytes=10-19")
    assert (ranged.status_code, ranged["Content-Length"], ranged["Content-Range"]) == (
        206, "10", f"bytes 10-19/{bundle.size}",
    )  # fmt: skip


# --- ranges -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header, first, last",
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, None),  # to the end
        ("bytes=-500", -500, None),  # the last 500 bytes
        ("bytes=1000-999999999", 1000, None),  # a last-pos past the end stops at the end
        ("bytes=-999999999", 0, None),  # a suffix longer than the file is the whole file
        ("BYTES = 5-5", 5, 5),
    ],
    ids=["a-b", "a-", "-n", "past-the-end", "long-suffix", "spacing"],
)
def test_one_range_answers_206_with_that_part(customer_license, bundle, header, first, last):
    whole = _file(bundle)
    size = len(whole)
    start = first if first >= 0 else size + first
    end = last if last is not None else size - 1
    response = _get(customer_license, HTTP_RANGE=header)
    assert response.status_code == 206
    assert _body(response) == whole[start : end + 1]
    assert response["Content-Range"] == f"bytes {start}-{end}/{size}"
    assert response["Content-Length"] == str(end + 1 - start)
    assert response["X-Bundle-Sha256"] == bundle.sha256  # of the whole file, not the part
    row = Download.objects.get()
    assert (row.status, row.range, row.bytes) == (206, header, end + 1 - start)


@pytest.mark.parametrize("header", ["bytes=999999999-", "bytes=-0"], ids=["past-the-end", "empty-suffix"])
def test_a_range_that_cannot_be_satisfied_answers_416_with_the_size(customer_license, bundle, header):
    response = _get(customer_license, HTTP_RANGE=header)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{bundle.size}"
    assert Download.objects.get().status == 416


@pytest.mark.parametrize(
    "header",
    ["bytes=0-9,20-29", "bytes=9-0", "items=0-9", "bytes=abc", "bytes=-"],
    ids=["several", "reversed", "other-unit", "garbage", "no-numbers"],
)
def test_several_or_malformed_ranges_answer_the_whole_file(customer_license, bundle, header):
    response = _get(customer_license, HTTP_RANGE=header)
    assert response.status_code == 200
    assert _body(response) == _file(bundle)


def test_if_range_with_the_etag_keeps_the_range_and_another_sends_the_whole_file(customer_license, bundle):
    etag = f'"{bundle.sha256}"'
    same = _get(customer_license, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=etag)
    assert same.status_code == 206 and len(_body(same)) == 10
    changed = _get(customer_license, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"' + "0" * 64 + '"')
    assert changed.status_code == 200 and _body(changed) == _file(bundle)
    weak = _get(customer_license, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE="W/" + etag)
    assert weak.status_code == 200  # a weak validator never matches (RFC 9110 §13.1.5)


def test_if_range_with_the_last_modified_date_keeps_the_range(customer_license, bundle):
    head = _head(customer_license)
    assert _get(customer_license, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=head["Last-Modified"]).status_code == 206
    earlier = "Mon, 01 Jan 2024 00:00:00 GMT"
    assert _get(customer_license, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=earlier).status_code == 200


def test_a_range_spanning_the_storage_read_chunks_is_exact(actor, app, customer_license, tmp_path):
    release = stored.ready_release(actor, app, version="big")
    bundle = stored.store_ready_bundle(release, tmp_path / "big", layer_size=3 * 1024 * 1024)
    whole = _file(bundle)
    assert len(whole) > 3 * CHUNK
    response = _get(customer_license, HTTP_RANGE="bytes=1048000-3146000")
    assert _body(response) == whole[1048000:3146001]


def test_parse_range_reads_each_form_and_refuses_what_the_rfc_calls_invalid():
    assert download.parse_range("bytes=0-0", 10) == download.ByteRange(0, 0)
    assert download.parse_range("bytes=9-", 10) == download.ByteRange(9, 9)
    assert download.parse_range("bytes=10-", 10) is download.UNSATISFIABLE
    assert download.parse_range("bytes=-10", 10) == download.ByteRange(0, 9)
    assert download.parse_range("bytes=", 10) is None
    assert download.parse_range("", 10) is None
    assert download.parse_range("bytes=1-2, 4-5", 10) is None
    assert download.parse_range("bytes=+1-2", 10) is None


# --- refusals -------------------------------------------------------------------------------------


def test_no_credentials_or_an_unknown_license_is_401_with_a_basic_challenge(customer_license, bundle):
    for response in (_client().get(LATEST), _client().get(LATEST, **_auth("not-a-license-id"))):
        _error(response, 401, "not_authenticated", "")
        assert response["WWW-Authenticate"] == 'Basic realm="portal", charset="UTF-8"'
    assert not Download.objects.exists()  # no license to log them under


def test_a_revoked_license_is_401_and_the_attempt_is_logged(actor, customer_license, bundle):
    licenses.license_revoke(actor=actor, license=customer_license.license)
    response = _get(customer_license)
    _error(response, 401, "not_authenticated", "revoked")
    assert response["WWW-Authenticate"].startswith("Basic ")
    row = Download.objects.get()
    assert (row.license_id, row.status, row.kind, row.bytes) == (customer_license.license.pk, 401, "airgap", 0)


def test_an_expired_license_is_401(customer_license, bundle):
    License.objects.filter(pk=customer_license.license.pk).update(expires_at=timezone.now() - timedelta(days=1))
    _error(_get(customer_license), 401, "not_authenticated", "expired")


def test_a_release_of_another_channel_is_404_naming_the_channel(actor, app, customer_license, bundle, tmp_path):
    beta = stored.ready_release(actor, app, promote_to="beta", version="2.0-beta")
    stored.store_ready_bundle(beta, tmp_path / "beta")
    body = _error(_get(customer_license, "/customer/v1/airgap/2.tar"), 404, "not_found", "never promoted")
    assert "“stable”" in body["message"]
    _error(_get(customer_license, "/customer/v1/airgap/99.tar"), 404, "not_found", "Release 99")
    _error(_get(customer_license, f"/customer/v1/airgap/{10**30}.tar"), 404, "not_found", "never promoted")
    assert Download.objects.filter(status=404, release=None).count() == 3


def test_a_channel_without_a_release_is_404(customer_license):
    _error(_get(customer_license), 404, "not_found", "No release of acme-api has been promoted")


def test_a_release_without_a_bundle_is_404_asking_the_vendor(customer_license, release):
    _error(_get(customer_license), 404, "no_bundle", "Release 1 has no air-gap bundle; ask your vendor")
    assert Download.objects.get().release == release


@pytest.mark.parametrize("status", [BundleStatus.QUEUED, BundleStatus.BUILDING])
def test_a_bundle_being_built_is_503_with_retry_after_and_its_progress(customer_license, bundle, status):
    AirgapBundle.objects.filter(pk=bundle.pk).update(status=status, bytes_total=1000, bytes_done=300, bytes_reused=100)
    response = _get(customer_license)
    _error(response, 503, "bundle_not_ready", "(40 %)")
    assert response["Retry-After"] == str(download.RETRY_BUILDING)


def test_a_failed_bundle_is_404_asking_the_vendor_to_build_it_again(customer_license, bundle):
    AirgapBundle.objects.filter(pk=bundle.pk).update(status=BundleStatus.FAILED, error="quay.io/acme/api: 401")
    body = _error(_get(customer_license), 404, "no_bundle", "could not be built; ask your vendor")
    assert "quay.io" not in body["message"]  # the vendor's error stays on the vendor's page


def test_a_bundle_missing_from_storage_is_503_and_logged(customer_license, bundle, caplog):
    bundle_store().delete(bundle.storage_key)
    with caplog.at_level(logging.ERROR, logger="delivery.airgap.download"):
        response = _get(customer_license)
    _error(response, 503, "storage_unavailable", "missing from the portal's storage")
    assert response["Retry-After"] == str(download.RETRY_STORAGE)
    assert bundle.storage_key in caplog.text and "missing" in caplog.text
    assert Download.objects.get().status == 503


def test_a_stored_file_of_another_size_is_503_not_a_wrong_download(customer_license, bundle, tmp_path, caplog):
    short = tmp_path / "short.tar"
    short.write_bytes(_file(bundle)[:-512])
    bundle_store().put_file(bundle.storage_key, short)
    with caplog.at_level(logging.ERROR, logger="delivery.airgap.download"):
        _error(_get(customer_license), 503, "storage_unavailable", "missing")
    assert f"not {bundle.size}" in caplog.text


def test_other_methods_are_refused(customer_license, bundle):
    assert _client().post(LATEST, **_auth(customer_license.license_id)).status_code == 405


# --- the install kit lands in the same log ---------------------------------------------------------


def test_install_kit_downloads_land_in_the_download_log(actor, customer_license, release):
    url = "/customer/v1/install-kit.tar.gz"
    response = _client().get(url, **_auth(customer_license.license_id), HTTP_USER_AGENT="kit-fetcher")
    assert response.status_code == 200
    missing = _client().get(url, {"sequence": "7"}, **_auth(customer_license.license_id))
    assert missing.status_code == 404
    licenses.license_revoke(actor=actor, license=customer_license.license)
    assert _client().get(url, **_auth(customer_license.license_id)).status_code == 401
    rows = list(Download.objects.order_by("pk").values_list("kind", "status", "sequence", "release", "bytes"))
    assert rows == [
        ("install-kit", 200, 1, release.pk, len(response.content)),
        ("install-kit", 404, 7, None, 0),
        ("install-kit", 401, None, None, 0),
    ]
    assert Download.objects.order_by("pk").first().user_agent == "kit-fetcher"


# --- S3 storage (moto's server) -------------------------------------------------------------------


@pytest.mark.slow
def test_with_s3_storage_the_answer_is_a_short_lived_link_and_a_missing_object_is_503(
    s3_bundles, customer_license, release, tmp_path, settings, caplog
):
    import httpx

    settings.AIRGAP_LINK_SECONDS = 120
    bundle = stored.store_ready_bundle(release, tmp_path / "s3")
    response = _get(customer_license, HTTP_RANGE="bytes=0-9")
    assert response.status_code == 302
    location = response["Location"]
    query = parse_qs(urlsplit(location).query)
    assert bundle.storage_key in location
    assert abs(int(query["Expires"][0]) - (time.time() + 120)) < 30  # AIRGAP_LINK_SECONDS from now
    assert response["X-Bundle-Sha256"] == bundle.sha256 and response["Repr-Digest"].startswith("sha-256=:")
    fetched = httpx.get(location, headers={"Range": "bytes=0-9"})
    assert fetched.status_code == 206 and len(fetched.content) == 10
    assert hashlib.sha256(httpx.get(location).content).hexdigest() == bundle.sha256
    row = Download.objects.get()
    assert (row.status, row.range, row.bytes) == (302, "bytes=0-9", bundle.size)

    bundle_store().delete(bundle.storage_key)
    with caplog.at_level(logging.ERROR, logger="delivery.airgap.download"):
        _error(_get(customer_license), 503, "storage_unavailable", "missing from the portal's storage")
    assert "S3Store" in caplog.text and "missing" in caplog.text
