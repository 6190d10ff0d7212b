"""The vendor's pages show customers' hosts as the customers will use them: the license page
(docker login, pull lines, private images, the pull secret, the install kit and air-gap curl
commands), the app page, the release page's air-gap card and the private registry's push
instructions on the Images page."""

from __future__ import annotations

import base64
import json
import re

import pytest
import yaml
from django.urls import reverse
from django.utils import timezone

from delivery.models import AirgapBundle, BundleStatus
from licenses import services as licenses
from licenses.models import Channel
from registries import services as registries
from registries.models import PrivateImage, PrivateTag
from tests import factories
from tests.airgap import stored
from tests.customer_hosts.conftest import PORTAL_REGISTRY, PROXY_DOMAIN, REGISTRY_DOMAIN

pytestmark = pytest.mark.django_db
DIGEST = "sha256:" + "d" * 64


@pytest.fixture
def license_page(actor, app, customer_license, admin_client):
    """The license page of a license that has something to pull everywhere: a quay registry
    with a rule, a pushed private image, an air-gap channel with a current release."""
    quay = registries.registry_create(
        actor=actor, provider="other", endpoint="https://quay.io", name="quay", username="u", password="p",
        skip_validation=True,
    )  # fmt: skip
    factories.allow_whole_registry(actor, app, quay)
    image = PrivateImage.objects.create(app=app, repository="acme-api/worker")
    PrivateTag.objects.create(image=image, tag="1.0", digest=DIGEST, pushed_at=timezone.now())
    Channel.objects.filter(pk=customer_license.license.channel_id).update(airgap=True)
    stored.ready_release(actor, app)
    url = reverse("delivery:license-detail", args=[customer_license.license.pk])
    return lambda: admin_client.get(url).content.decode().replace("&quot;", '"')


def _pull_secret_hosts(page: str) -> set[str]:
    text = re.search(r'<pre id="pull-secret-text"><code>(.*?)</code></pre>', page, re.S).group(1)
    document = yaml.safe_load(text.replace("&#x27;", "'"))
    return set(json.loads(base64.b64decode(document["data"][".dockerconfigjson"]))["auths"])


def test_without_a_custom_domain_the_license_page_shows_the_portal_hosts(license_page):
    page = license_page()
    assert "docker login testserver --username" in page
    assert "docker pull testserver/proxy/acme-api/quay.io/&lt;image&gt;:&lt;tag&gt;" in page
    assert f"docker login {PORTAL_REGISTRY} --username LICENSE_ID" in page
    assert f"docker pull {PORTAL_REGISTRY}/acme-api/worker:1.0" in page
    assert _pull_secret_hosts(page) == {"testserver", PORTAL_REGISTRY}
    assert "-o kit.tar.gz http://testserver/customer/v1/install-kit.tar.gz" in page
    assert "-o acme-api-airgap.tar http://testserver/customer/v1/airgap/latest.tar" in page
    assert "answering over plain HTTP" in page


def test_the_license_page_shows_the_teams_default_domains_everywhere(license_page, custom_domains):
    page = license_page()
    assert f"docker login {PROXY_DOMAIN} --username" in page
    assert f"docker pull {PROXY_DOMAIN}/proxy/acme-api/quay.io/&lt;image&gt;:&lt;tag&gt;" in page
    assert f"Image paths are <code>{PROXY_DOMAIN}/proxy/acme-api/" in page
    assert f"docker login {REGISTRY_DOMAIN} --username LICENSE_ID" in page
    assert f"docker pull {REGISTRY_DOMAIN}/acme-api/worker:1.0" in page
    assert _pull_secret_hosts(page) == {PROXY_DOMAIN, REGISTRY_DOMAIN}
    assert f"for the proxy <code>{PROXY_DOMAIN}</code> and the private registry <code>{REGISTRY_DOMAIN}</code>" in page
    assert f"-o kit.tar.gz https://{PROXY_DOMAIN}/customer/v1/install-kit.tar.gz" in page
    assert f"-o acme-api-airgap.tar https://{PROXY_DOMAIN}/customer/v1/airgap/latest.tar" in page
    # The customer is given https: no warning about the vendor's plain-http test portal.
    assert "answering over plain HTTP" not in page
    assert "testserver/" not in page and PORTAL_REGISTRY not in page


def test_the_license_page_never_shows_a_hidden_domain(license_page, hidden_domains):
    page = license_page()
    assert "vendor.test" not in page
    assert _pull_secret_hosts(page) == {"testserver", PORTAL_REGISTRY}
    assert "http://testserver/customer/v1/airgap/latest.tar" in page


def test_another_team_sees_its_own_default_and_never_acmes(
    actor, outsider_actor, outsider_client, custom_domains, add_domain, other_team
):
    add_domain(other_team, "proxy.other.test", "proxy")
    other_app = factories.make_app(other_team, "other-api")
    stored.ready_release(outsider_actor, other_app)
    license, _ = licenses.license_create(actor=outsider_actor, app=other_app, customer_name="Initech")
    page = outsider_client.get(reverse("delivery:license-detail", args=[license.pk])).content.decode()
    assert "docker login proxy.other.test --username" in page
    assert "-o kit.tar.gz https://proxy.other.test/customer/v1/install-kit.tar.gz" in page
    assert "vendor.test" not in page
    assert PORTAL_REGISTRY in page  # no registry domain of its own


def test_the_app_page_shows_the_proxy_image_path_on_the_default_domain(admin_client, app, custom_domains):
    page = admin_client.get(reverse("licenses:app-detail", args=[app.slug])).content.decode()
    assert f"<code>{PROXY_DOMAIN}/proxy/acme-api/&lt;registry-host&gt;" in page


def test_the_app_page_without_a_domain_shows_the_request_host(admin_client, app, hidden_domains):
    page = admin_client.get(reverse("licenses:app-detail", args=[app.slug])).content.decode()
    assert "<code>testserver/proxy/acme-api/&lt;registry-host&gt;" in page
    assert "vendor.test" not in page


# --- the release page's air-gap card ------------------------------------------------------------


@pytest.fixture
def release_card(actor, app, admin_client):
    release = stored.ready_release(actor, app)
    now = timezone.now()
    AirgapBundle.objects.create(
        release=release, status=BundleStatus.READY, images_total=0, images_done=0, size=1024, sha256="e" * 64,
        storage_key="k", requested_by="admin@acme.test", started_at=now, finished_at=now,
    )  # fmt: skip
    url = reverse("licenses:release-detail", args=[app.slug, release.sequence])
    return lambda: admin_client.get(url).content.decode().replace("&quot;", '"')


def test_the_release_card_curl_uses_the_request_host_without_a_domain(release_card, hidden_domains):
    assert "-o acme-api-1-airgap.tar http://testserver/customer/v1/airgap/1.tar" in release_card()


def test_the_release_card_curl_uses_the_default_proxy_domain(release_card, custom_domains):
    page = release_card()
    assert f"-o acme-api-1-airgap.tar https://{PROXY_DOMAIN}/customer/v1/airgap/1.tar" in page
    assert "testserver/customer" not in page


# --- the private registry's push instructions ---------------------------------------------------


@pytest.fixture
def images_page(app, admin_client):
    image = PrivateImage.objects.create(app=app, repository="acme-api/worker")
    PrivateTag.objects.create(image=image, tag="1.0", digest=DIGEST, pushed_at=timezone.now())
    return lambda: admin_client.get(reverse("registries:image-list")).content.decode()


def test_push_instructions_name_the_portal_registry_without_a_domain(images_page, hidden_domains):
    page = images_page()
    assert f"docker login {PORTAL_REGISTRY} --username admin@acme.test" in page
    assert f"docker push {PORTAL_REGISTRY}/acme-api/my-image:1.0.0" in page
    assert f"<code>{PORTAL_REGISTRY}/acme-api/worker</code>" in page
    assert "vendor.test" not in page


def test_push_instructions_name_the_default_registry_domain(images_page, custom_domains):
    page = images_page()
    assert f"Push images to the portal's registry at <code>{REGISTRY_DOMAIN}</code>" in page
    assert f"docker login {REGISTRY_DOMAIN} --username admin@acme.test" in page
    assert f"docker tag my-image:1.0.0 {REGISTRY_DOMAIN}/acme-api/my-image:1.0.0" in page
    assert f"docker push {REGISTRY_DOMAIN}/acme-api/my-image:1.0.0" in page
    assert f"<code>{REGISTRY_DOMAIN}/acme-api/worker</code>" in page
    assert PORTAL_REGISTRY not in page
