"""What customers download carries the team's default domains: the pull secret (page, API),
the install kit (page, API, the customer's own door; rendered with the real kubectl), and the
signed license file (page, API; its signature still verifies, with both verifiers)."""

from __future__ import annotations

import base64
import json

import pytest
import yaml
from django.urls import reverse
from rest_framework.test import APIClient

from delivery import pullsecret
from licenses import licensefile, releases
from portal_cli import licensefile as cli_licensefile
from registries import services as registries
from tests.customer_hosts.conftest import PORTAL_REGISTRY, PROXY_DOMAIN, REGISTRY_DOMAIN
from tests.installkit import kits

pytestmark = pytest.mark.django_db

MANIFEST = f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api}}
spec:
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api}}}}
    spec:
      containers:
      - {{name: api, image: "quay.io/acme/api:1.0"}}
      - {{name: worker, image: "{PORTAL_REGISTRY}/acme-api/worker:1.0"}}
      - {{name: cache, image: "redis:7"}}
"""
SETTINGS = """\
images:
- {source: quay, name: acme/api, tag: "1.0"}
- {source: replicated, name: worker, tag: "1.0"}
- {source: public, name: redis, tag: "7"}
"""


def _auths(secret_yaml: str) -> dict:
    document = next(d for d in yaml.safe_load_all(secret_yaml) if d)
    return json.loads(base64.b64decode(document["data"][".dockerconfigjson"], validate=True))["auths"]


def _basic(license_id: str) -> str:
    return "Basic " + base64.b64encode(f"{license_id}:{license_id}".encode()).decode()


# --- the pull secret ----------------------------------------------------------------------------


@pytest.fixture
def pull_secrets(customer_license, admin_client, developer_api):
    """The pull secret's auths from the page's download and the API."""
    pk = customer_license.license.pk

    def get() -> list[dict]:
        page = admin_client.get(reverse("delivery:license-pull-secret", args=[pk]))
        api = developer_api.get(f"/api/v1/licenses/{pk}/pull-secret")
        assert page.status_code == api.status_code == 200
        return [_auths(page.content.decode()), _auths(api.content.decode())]

    return get


def test_the_pull_secret_names_the_portal_hosts_without_a_domain(pull_secrets, hidden_domains):
    for auths in pull_secrets():
        assert set(auths) == {"testserver", PORTAL_REGISTRY}


def test_the_pull_secret_names_the_default_domains(pull_secrets, customer_license, custom_domains):
    for auths in pull_secrets():
        assert set(auths) == {PROXY_DOMAIN, REGISTRY_DOMAIN}
        assert auths[PROXY_DOMAIN]["password"] == customer_license.license_id


def test_the_pull_secret_header_names_the_default_domains(customer_license, admin_client, custom_domains):
    text = admin_client.get(reverse("delivery:license-pull-secret", args=[customer_license.license.pk])).content
    header = text.decode().split("apiVersion")[0]
    assert f"pulls through {PROXY_DOMAIN} (proxy)" in header and f"from {REGISTRY_DOMAIN} (private" in header
    assert pullsecret.file_name(customer_license.license) == "acme-api-registry.yaml"


# --- the install kit ----------------------------------------------------------------------------


@pytest.fixture
def released(actor, app):
    registries.registry_create(
        actor=actor, provider="other", endpoint="https://quay.io", name="quay", username="u", password="p",
        skip_validation=True,
    )  # fmt: skip
    files = {"acme.yaml": SETTINGS, "api.yaml": MANIFEST}
    release, _ = releases.release_create(actor=actor, app=app, files=files, version="1.0", promote_to="stable")
    return release


@pytest.fixture
def kits_of(customer_license, released, developer_api, tmp_path):
    """The kit as the API gives it to the vendor and as the customer's door gives it, each
    unpacked and rendered with kubectl kustomize: [(folder, documents)]."""

    def get() -> list[tuple]:
        license, license_id = customer_license.license, customer_license.license_id
        api = developer_api.get(f"/api/v1/licenses/{license.pk}/install-kit.tar.gz")
        door = APIClient().get("/customer/v1/install-kit.tar.gz", HTTP_AUTHORIZATION=_basic(license_id))
        assert api.status_code == door.status_code == 200
        rendered = []
        for name, response in (("api", api), ("door", door)):
            folder = kits.unpack(response.content, tmp_path / name)
            rendered.append((folder, kits.kustomize(folder)))
        return rendered

    return get


def test_the_kit_sends_images_to_the_portal_hosts_without_a_domain(kits_of, hidden_domains):
    for folder, documents in kits_of():
        assert kits.images(documents) == [
            "testserver/proxy/acme-api/quay.io/acme/api:1.0", f"{PORTAL_REGISTRY}/acme-api/worker:1.0", "redis:7"
        ]  # fmt: skip
        assert set(kits.docker_config(kits.secrets(documents)[0])["auths"]) == {"testserver", PORTAL_REGISTRY}
        assert "http://testserver/customer/v1/install-kit.tar.gz" in (folder / "README.md").read_text()
        assert "vendor.test" not in (folder / "kustomization.yaml").read_text()


def test_the_kit_sends_images_to_the_default_domains(kits_of, custom_domains):
    for folder, documents in kits_of():
        # Private external images through the proxy domain, the private registry's moved to its
        # domain (the Secret names only that host), public ones left alone.
        assert kits.images(documents) == [
            f"{PROXY_DOMAIN}/proxy/acme-api/quay.io/acme/api:1.0", f"{REGISTRY_DOMAIN}/acme-api/worker:1.0", "redis:7"
        ]  # fmt: skip
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        assert kustomization["images"] == [
            {"name": "quay.io/acme/api", "newName": f"{PROXY_DOMAIN}/proxy/acme-api/quay.io/acme/api"},
            {"name": f"{PORTAL_REGISTRY}/acme-api/worker", "newName": f"{REGISTRY_DOMAIN}/acme-api/worker"},
        ]
        secret = kits.secrets(documents)[0]
        assert set(kits.docker_config(secret)["auths"]) == {PROXY_DOMAIN, REGISTRY_DOMAIN}
        readme = (folder / "README.md").read_text()
        assert f"-o kit.tar.gz https://{PROXY_DOMAIN}/customer/v1/install-kit.tar.gz" in readme
        assert "testserver" not in readme and PORTAL_REGISTRY not in (folder / "acme-api-registry.yaml").read_text()


def test_only_the_proxy_domain_leaves_the_private_registry_images_as_written(kits_of, team, add_domain):
    add_domain(team, PROXY_DOMAIN, "proxy")
    for _, documents in kits_of():
        assert kits.images(documents)[1] == f"{PORTAL_REGISTRY}/acme-api/worker:1.0"
        assert set(kits.docker_config(kits.secrets(documents)[0])["auths"]) == {PROXY_DOMAIN, PORTAL_REGISTRY}


# --- the license file ---------------------------------------------------------------------------


@pytest.fixture
def license_files(customer_license, admin_client, developer_api, settings, tmp_path):
    """The license file from the page and the API, each checked by both verifiers: [spec]."""
    settings.LICENSE_SIGNING_KEY_FILE = str(tmp_path / "license_signing_key.pem")
    pk = customer_license.license.pk

    def get() -> list[dict]:
        page = admin_client.get(reverse("licenses:license-file", args=[pk]))
        api = developer_api.get(f"/api/v1/licenses/{pk}/license-file")
        assert page.status_code == api.status_code == 200
        specs = []
        for text in (page.content.decode(), api.content.decode()):
            spec = licensefile.verify_license_file(text, licensefile.public_key_pem())
            assert cli_licensefile.verify_license_file(text, licensefile.public_key_pem()) == spec
            specs.append((text, spec))
        return specs

    return get


def test_the_license_file_names_the_portal_hosts_without_a_domain(license_files, hidden_domains):
    for text, spec in license_files():
        assert (spec["proxyHost"], spec["registryHost"]) == ("portal.example.test", PORTAL_REGISTRY)
        assert "vendor.test" not in text


def test_the_license_file_names_the_default_domains_and_its_signature_verifies(license_files, custom_domains):
    for text, spec in license_files():
        assert (spec["proxyHost"], spec["registryHost"]) == (PROXY_DOMAIN, REGISTRY_DOMAIN)
        assert f"#   docker login {PROXY_DOMAIN} -u LICENSE_ID" in text
        assert f"#   docker pull {PROXY_DOMAIN}/proxy/acme-api/" in text


def test_a_license_file_edited_to_another_host_no_longer_verifies(license_files, custom_domains):
    text, _ = license_files()[0]
    forged = text.replace(f"proxyHost: {PROXY_DOMAIN}", "proxyHost: proxy.attacker.test")
    assert forged != text
    with pytest.raises(licensefile.LicenseFileError):
        licensefile.verify_license_file(forged, licensefile.public_key_pem())
