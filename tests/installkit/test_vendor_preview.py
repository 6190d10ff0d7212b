"""The vendor's preview of a license's install kit: the license page's button, the API and the CLI.
Reading it is reading the license (it holds the license ID, as the pull secret does): every
member, viewers too; another team's license is 404."""

from __future__ import annotations

import base64
import json
import os

import pytest
import yaml
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import TokenAccess
from licenses import releases
from licenses.models import License
from tests import factories
from tests.installkit import kits

pytestmark = pytest.mark.django_db

MANIFEST = """\
apiVersion: v1
kind: Pod
metadata: {name: api}
spec:
  containers: [{name: api, image: "quay.io/acme/api:1.0"}]
"""
FILES = {"acme.yaml": "images:\n- {source: quay, name: acme/api, tag: '1.0'}\n", "pod.yaml": MANIFEST}


@pytest.fixture
def released(actor, app, quay):
    release, _ = releases.release_create(actor=actor, app=app, files=FILES, version="1.0", promote_to="stable")
    return release


def _api_url(license, **params) -> str:
    url = f"/api/v1/licenses/{license.pk}/install-kit.tar.gz"
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def _customer_kit(license_id: str) -> bytes:
    credentials = base64.b64encode(f"{license_id}:{license_id}".encode()).decode()
    response = APIClient().get("/customer/v1/install-kit.tar.gz", HTTP_AUTHORIZATION=f"Basic {credentials}")
    assert response.status_code == 200
    return response.content


# --- the API ---------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["admin", "developer", "viewer", "read-only service"])
def test_every_member_previews_the_kit_the_customer_gets(who, request, team, customer_license, released):
    if who == "read-only service":
        client = factories.bearer_client(factories.service_token(team, access=TokenAccess.READ_ONLY))
    else:
        client = request.getfixturevalue(f"{who}_api")
    response = client.get(_api_url(customer_license.license))
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/gzip"
    assert response["Content-Disposition"] == 'attachment; filename="acme-api-install-kit-1.tar.gz"'
    assert response["Cache-Control"] == "no-store"
    assert response.content == _customer_kit(customer_license.license_id)


def test_the_api_takes_the_parameters_and_names_a_bad_one(admin_api, customer_license, released, tmp_path):
    response = admin_api.get(_api_url(customer_license.license, secret_name="globex-key", sequence=1))
    assert response.status_code == 200
    folder = kits.unpack(response.content, tmp_path)
    assert yaml.safe_load((folder / "globex-key.yaml").read_text())["metadata"]["name"] == "globex-key"
    bad = admin_api.get(_api_url(customer_license.license, secret_name="Globex_Key"))
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid" and list(bad.json()["errors"]) == ["secret_name"]
    assert bad.json()["message"].startswith("secret_name: A Secret's name is a DNS-1123 subdomain")
    assert admin_api.get(_api_url(customer_license.license, sequence="x")).json()["errors"].keys() == {"sequence"}


def test_the_api_says_when_the_channel_has_no_such_release(admin_api, customer_license, actor, app):
    response = admin_api.get(_api_url(customer_license.license))
    assert response.status_code == 404
    assert response.json() == {
        "code": "not_found",
        "message": "No release of acme-api has been promoted to channel “stable” yet, so there is nothing to "
        "install; the vendor promotes one first.",
    }
    release, _ = releases.release_create(actor=actor, app=app, files={"a.yaml": MANIFEST}, promote_to="beta")
    response = admin_api.get(_api_url(customer_license.license, sequence=release.sequence))
    assert response.status_code == 404
    assert response.json()["message"] == "Release 1 of acme-api was never promoted to channel “stable”."


def test_another_team_gets_404_and_anonymous_401(outsider_api, customer_license, released):
    response = outsider_api.get(_api_url(customer_license.license))
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert outsider_api.get(_api_url(customer_license.license, secret_name="Bad_Name")).status_code == 404
    assert APIClient().get(_api_url(customer_license.license)).status_code == 401


def test_a_client_asking_for_gzip_gets_it_and_its_errors_as_json(admin_api, customer_license, released):
    response = admin_api.get(_api_url(customer_license.license), HTTP_ACCEPT="application/gzip")
    assert response.status_code == 200 and response["Content-Type"] == "application/gzip"
    missing = admin_api.get(_api_url(customer_license.license, sequence=9), HTTP_ACCEPT="application/gzip")
    assert missing.status_code == 404 and missing["Content-Type"] == "application/json"
    assert missing.json()["message"] == "Release 9 of acme-api was never promoted to channel “stable”."


def test_an_unreadable_license_id_is_a_clear_conflict(admin_api, customer_license, released):
    License.objects.filter(pk=customer_license.license.pk).update(license_id_encrypted="v1:nokey:AAAA:AAAA")
    response = admin_api.get(_api_url(customer_license.license))
    assert response.status_code == 409 and response.json()["code"] == "credential_corrupt"


def test_the_kit_is_in_the_api_schema():
    schema = APIClient().get("/api/v1/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/licenses/{id}/install-kit.tar.gz"]["get"]
    assert [p["name"] for p in operation["parameters"] if p["in"] == "query"] == ["secret_name", "sequence"]
    assert "application/gzip" in operation["responses"]["200"]["content"]


# --- the license page ------------------------------------------------------------------------


def test_the_license_page_offers_the_kit_of_the_channels_release(viewer_client, customer_license, released):
    license = customer_license.license
    page = viewer_client.get(reverse("delivery:license-detail", args=[license.pk]))
    html = page.content.decode()
    download = reverse("delivery:license-install-kit", args=[license.pk])
    assert download == f"/licenses/{license.pk}/install-kit.tar.gz"
    assert 'id="install-kit"' in html and f'action="{download}"' in html and 'name="secret_name"' in html
    assert "release 1 (1.0) of channel <code>stable</code>" in html
    assert "http://testserver/customer/v1/install-kit.tar.gz" in html

    response = viewer_client.get(download)
    assert response.status_code == 200 and response["Content-Type"] == "application/gzip"
    assert response.content == _customer_kit(customer_license.license_id)


def test_the_page_says_when_there_is_no_release_and_the_download_explains(viewer_client, customer_license):
    license = customer_license.license
    page = viewer_client.get(reverse("delivery:license-detail", args=[license.pk]))
    assert "has been promoted to channel <code>stable</code> yet" in page.content.decode()
    response = viewer_client.get(reverse("delivery:license-install-kit", args=[license.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("delivery:license-detail", args=[license.pk]) + "#install-kit"
    assert "No release of acme-api has been promoted to channel “stable” yet" in response.content.decode()


def test_a_bad_secret_name_on_the_page_says_why(viewer_client, customer_license, released):
    url = reverse("delivery:license-install-kit", args=[customer_license.license.pk])
    response = viewer_client.get(url, {"secret_name": "Not Valid"}, follow=True)
    assert response.redirect_chain[-1][0].endswith("#install-kit")
    assert "A Secret&#x27;s name is a DNS-1123 subdomain" in response.content.decode()


def test_an_outsider_gets_404_on_the_page(outsider_client, customer_license, released):
    url = reverse("delivery:license-install-kit", args=[customer_license.license.pk])
    assert outsider_client.get(url).status_code == 404


# --- the CLI ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_cli_writes_the_kit_to_a_file_only_its_owner_reads(
    live_server, team, admin, customer_license, released, tmp_path
):
    from tests.cli.conftest import Portal

    portal = Portal(url=live_server.url, token=factories.user_token(admin, team))
    license = customer_license.license
    out = tmp_path / "kit.tar.gz"
    result = portal("license", "install-kit", str(license.pk), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Wrote the install kit for license {license.pk} (Globex, app acme-api) to {out}")
    assert os.stat(out).st_mode & 0o777 == 0o600
    folder = kits.unpack(out.read_bytes(), tmp_path / "unpacked")
    assert (folder / "manifests/pod.yaml").read_text() == MANIFEST
    proxy_host = live_server.url.removeprefix("http://")
    assert f"newName: {proxy_host}/proxy/acme-api/quay.io/acme/api" in (folder / "kustomization.yaml").read_text()

    # By license ID too ("--": an ID may start with "-"), with a secret name and JSON output.
    by_id = portal(
        "license", "install-kit", "--out", str(out), "--secret-name", "globex-key", "--output", "json",
        "--", customer_license.license_id,
    )  # fmt: skip
    assert by_id.returncode == 0, by_id.stderr
    assert json.loads(by_id.stdout) == {"id": license.pk, "file": str(out), "bytes": out.stat().st_size}
    assert "globex-key.yaml" in {m.split("/", 1)[1] for m in kits.members(out.read_bytes()) if "/" in m}

    missing = portal("license", "install-kit", str(license.pk), "--out", str(out), "--sequence", "7")
    assert missing.returncode == 1
    assert "Release 7 of acme-api was never promoted to channel “stable”" in missing.stderr

    bad = portal("license", "install-kit", str(license.pk), "--out", str(out), "--secret-name", "Bad Name")
    assert bad.returncode == 1 and bad.stderr.startswith("error: secret_name: A Secret's name is a DNS-1123")

    nobody = portal("license", "install-kit", "999999", "--out", str(out))
    assert nobody.returncode == 1 and "no license 999999 in your team" in nobody.stderr
