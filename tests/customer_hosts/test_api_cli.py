"""The API answers and the `portal` CLI's outputs name the team's default domains: the private
registry's images (API, `portal image ls`), a release's air-gap download URL (API, `portal
airgap show`), the pull secret (`portal license pull-secret`) and the license file (`portal
license file` then `portal license verify`). The CLI runs for real against live_server."""

from __future__ import annotations

import base64
import json

import pytest
import yaml
from django.utils import timezone

from delivery.models import AirgapBundle, BundleStatus
from registries.models import PrivateImage, PrivateTag
from tests import factories
from tests.airgap import stored
from tests.cli.conftest import Portal
from tests.customer_hosts.conftest import PORTAL_REGISTRY, PROXY_DOMAIN, REGISTRY_DOMAIN

DIGEST = "sha256:" + "d" * 64


@pytest.fixture
def pushed(app):
    image = PrivateImage.objects.create(app=app, repository="acme-api/worker")
    PrivateTag.objects.create(image=image, tag="1.0", digest=DIGEST, pushed_at=timezone.now())


@pytest.fixture
def bundle(actor, app):
    release = stored.ready_release(actor, app)
    now = timezone.now()
    return AirgapBundle.objects.create(
        release=release, status=BundleStatus.READY, images_total=0, images_done=0, size=1024, sha256="e" * 64,
        storage_key="k", requested_by="admin@acme.test", started_at=now, finished_at=now,
    )  # fmt: skip


# --- the API ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_images_api_names_the_portal_registry_without_a_domain(developer_api, pushed, hidden_domains):
    body = developer_api.get("/api/v1/apps/acme-api/images/").json()
    assert body["registry"] == PORTAL_REGISTRY
    assert body["repositories"][0]["reference"] == f"{PORTAL_REGISTRY}/acme-api/worker"


@pytest.mark.django_db
def test_the_images_api_names_the_default_registry_domain(developer_api, pushed, custom_domains):
    body = developer_api.get("/api/v1/apps/acme-api/images/").json()
    assert body["registry"] == REGISTRY_DOMAIN
    assert body["repositories"][0]["reference"] == f"{REGISTRY_DOMAIN}/acme-api/worker"


@pytest.mark.django_db
def test_the_images_api_of_another_team_never_names_acmes_domain(outsider_api, outsider_actor, custom_domains):
    factories.make_app(outsider_actor.team, "other-api")
    assert outsider_api.get("/api/v1/apps/other-api/images/").json()["registry"] == PORTAL_REGISTRY


@pytest.mark.django_db
def test_the_airgap_api_gives_the_download_url_on_the_request_host_without_a_domain(
    developer_api, bundle, hidden_domains
):
    body = developer_api.get("/api/v1/apps/acme-api/releases/1/airgap/").json()
    assert body["download_path"] == "/customer/v1/airgap/1.tar"
    assert body["download_url"] == "http://testserver/customer/v1/airgap/1.tar"


@pytest.mark.django_db
def test_the_airgap_api_gives_the_download_url_on_the_default_proxy_domain(developer_api, bundle, custom_domains):
    body = developer_api.get("/api/v1/apps/acme-api/releases/1/airgap/").json()
    assert body["download_path"] == "/customer/v1/airgap/1.tar"
    assert body["download_url"] == f"https://{PROXY_DOMAIN}/customer/v1/airgap/1.tar"


# --- the CLI ------------------------------------------------------------------------------------


@pytest.fixture
def portal(live_server, admin, team) -> Portal:
    return Portal(url=live_server.url, token=factories.user_token(admin, team))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("with_domains", [False, True], ids=["without a domain", "with default domains"])
def test_the_cli_prints_the_hosts_customers_use(
    with_domains, request, portal, live_server, customer_license, pushed, bundle, settings, tmp_path
):
    settings.LICENSE_SIGNING_KEY_FILE = str(tmp_path / "license_signing_key.pem")  # live_server is this process
    if with_domains:
        request.getfixturevalue("custom_domains")
    own = live_server.url.removeprefix("http://")
    proxy, registry = (PROXY_DOMAIN, REGISTRY_DOMAIN) if with_domains else (own, PORTAL_REGISTRY)
    base = f"https://{PROXY_DOMAIN}" if with_domains else live_server.url
    license, license_id = customer_license.license, customer_license.license_id

    secret = portal("license", "pull-secret", str(license.pk))
    assert secret.returncode == 0, secret.stderr
    document = yaml.safe_load(secret.stdout)
    auths = json.loads(base64.b64decode(document["data"][".dockerconfigjson"]))["auths"]
    assert set(auths) == {proxy, registry}

    path = tmp_path / "license.yaml"
    saved = portal("license", "file", str(license.pk), "-o", str(path))
    assert saved.returncode == 0, saved.stderr
    verified = portal("license", "verify", str(path))
    assert verified.returncode == 0, verified.stderr
    lines = {line[:13].strip(): line[13:].strip() for line in verified.stdout.splitlines()}  # `label  value`
    assert (lines["proxy host"], lines["registry host"]) == (proxy if with_domains else "portal.example.test", registry)
    as_json = json.loads(portal("license", "verify", str(path), "-o", "json").stdout)
    assert as_json["valid"] is True and as_json["license"]["licenseId"] == license_id

    images = portal("image", "ls", "--app", "acme-api", "-o", "json")
    assert images.returncode == 0, images.stderr
    assert json.loads(images.stdout)["registry"] == registry

    shown = portal("airgap", "show", "--app", "acme-api", "--release", "1")
    assert shown.returncode == 0, shown.stderr
    assert f"{base}/customer/v1/airgap/1.tar" in shown.stdout
