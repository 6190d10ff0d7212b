"""The customer's image pull secret: the YAML itself, the API, the license page and the CLI."""

from __future__ import annotations

import base64
import json

import pytest
import yaml
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import customer_hosts
from accounts.models import Role, TokenAccess
from delivery import pullsecret
from licenses import services
from licenses.models import License
from tests import factories

pytestmark = pytest.mark.django_db

PROXY = "proxy.example.test"
REGISTRY = "registry.example.test:5000"


def _license(app, customer="Globex"):
    admin = app.team.memberships.get(role=Role.ADMIN).user
    return services.license_create(actor=factories.actor_of(admin, app.team), app=app, customer_name=customer)


def _secret(text: str) -> tuple[dict, dict]:
    """(the Secret document, its decoded .dockerconfigjson)."""
    document = yaml.safe_load(text)
    config = json.loads(base64.b64decode(document["data"][".dockerconfigjson"], validate=True))
    return document, config


def _expected_auths(license_id: str, *hosts: str) -> dict:
    auth = base64.b64encode(f"LICENSE_ID:{license_id}".encode()).decode()
    return {host: {"username": "LICENSE_ID", "password": license_id, "auth": auth} for host in hosts}


# --- the YAML ----------------------------------------------------------------------------------


def test_the_secret_is_a_dockerconfigjson_for_both_hosts(app):
    license, license_id = _license(app)
    text = pullsecret.render_pull_secret(license, license_id, proxy_host=PROXY, registry_host=REGISTRY)
    document, config = _secret(text)
    assert document["apiVersion"] == "v1" and document["kind"] == "Secret"
    assert document["type"] == "kubernetes.io/dockerconfigjson"
    assert document["metadata"]["name"] == "acme-api-registry"
    assert "namespace" not in document["metadata"]
    assert set(document["data"]) == {".dockerconfigjson"}
    assert config == {"auths": _expected_auths(license_id, PROXY, REGISTRY)}
    assert base64.b64decode(config["auths"][PROXY]["auth"]).decode() == f"LICENSE_ID:{license_id}"
    assert text.startswith("# Image pull secret for Acme API")
    assert license_id not in text, "only inside the base64 data"


def test_a_namespace_goes_into_the_metadata(app):
    license, license_id = _license(app)
    text = pullsecret.render_pull_secret(
        license, license_id, namespace="globex-prod", proxy_host=PROXY, registry_host=REGISTRY
    )
    assert yaml.safe_load(text)["metadata"]["namespace"] == "globex-prod"


def test_one_host_for_both_gives_one_entry(app):
    license, license_id = _license(app)
    _, config = _secret(pullsecret.render_pull_secret(license, license_id, proxy_host=PROXY, registry_host=PROXY))
    assert config == {"auths": _expected_auths(license_id, PROXY)}


@pytest.mark.parametrize(
    "namespace",
    ["Prod", "prod_1", "-prod", "prod-", "a" * 64, "prod.eu", "pro d", "ns\n", "../x", "ünï"],
)
def test_a_namespace_must_be_a_dns_1123_label(app, namespace):
    license, license_id = _license(app)
    with pytest.raises(ValidationError) as raised:
        pullsecret.render_pull_secret(license, license_id, namespace=namespace, proxy_host=PROXY, registry_host=PROXY)
    assert list(raised.value.message_dict) == ["namespace"]
    assert "DNS-1123 label" in raised.value.message_dict["namespace"][0]


@pytest.mark.parametrize("namespace", ["a", "default", "kube-system", "a" * 63, "0-9"])
def test_valid_namespaces(namespace):
    assert pullsecret.validate_namespace(namespace) == namespace


def test_the_hosts_default_to_the_request_and_registry_host(rf, settings, team):
    settings.PORTAL_URL = "https://user@portal.example.test:8443"
    settings.REGISTRY_HOST = "registry.example.test"
    settings.ALLOWED_HOSTS = ["proxy.example.test"]
    assert customer_hosts.proxy_host(team) == "portal.example.test:8443"
    assert customer_hosts.proxy_host(team, rf.get("/", HTTP_HOST="proxy.example.test")) == "proxy.example.test"
    assert customer_hosts.registry_host(team) == "registry.example.test"


# --- the API -----------------------------------------------------------------------------------


def _url(license, namespace: str | None = None) -> str:
    url = f"/api/v1/licenses/{license.pk}/pull-secret"
    return f"{url}?namespace={namespace}" if namespace is not None else url


def test_the_api_answers_with_the_yaml(developer_api, app, settings):
    settings.REGISTRY_HOST = REGISTRY
    settings.ALLOWED_HOSTS = [PROXY]
    license, license_id = _license(app)
    response = developer_api.get(_url(license), HTTP_HOST="proxy.example.test")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/yaml; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="acme-api-registry.yaml"'
    assert response["Cache-Control"] == "no-store"
    document, config = _secret(response.content.decode())
    assert document["metadata"]["name"] == "acme-api-registry"
    assert config == {"auths": _expected_auths(license_id, PROXY, REGISTRY)}
    assert developer_api.get(_url(license) + "/", HTTP_HOST="proxy.example.test").content == response.content


def test_the_api_takes_a_namespace_and_names_the_field_when_it_is_bad(developer_api, app):
    license, _ = _license(app)
    response = developer_api.get(_url(license, "globex"))
    assert yaml.safe_load(response.content)["metadata"]["namespace"] == "globex"
    bad = developer_api.get(_url(license, "Globex_Prod"))
    assert bad.status_code == 400
    body = bad.json()
    assert body["code"] == "invalid" and list(body["errors"]) == ["namespace"]
    assert body["message"].startswith("namespace: A namespace is a DNS-1123 label")
    assert developer_api.get(_url(license, "")).status_code == 200  # empty: no namespace


@pytest.mark.parametrize("who", ["admin", "developer", "viewer", "read-write service account", "read-only service"])
def test_everyone_who_reads_the_license_reads_its_pull_secret(who, app, team, request):
    client = {
        "admin": lambda: request.getfixturevalue("admin_api"),
        "developer": lambda: request.getfixturevalue("developer_api"),
        "viewer": lambda: request.getfixturevalue("viewer_api"),
        "read-write service account": lambda: factories.bearer_client(factories.service_token(team)),
        "read-only service": lambda: factories.bearer_client(
            factories.service_token(team, access=TokenAccess.READ_ONLY)
        ),
    }[who]()
    license, license_id = _license(app)
    assert client.get(f"/api/v1/licenses/{license.pk}/").json()["license_id"] == license_id
    response = client.get(_url(license))
    assert response.status_code == 200, response.content
    assert _secret(response.content.decode())[1]["auths"]["testserver"]["password"] == license_id


def test_another_team_gets_404_and_anonymous_401(outsider_api, app):
    license, _ = _license(app)
    response = outsider_api.get(_url(license))
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert outsider_api.get(_url(license, "Bad_NS")).status_code == 404, "no oracle through validation"
    assert APIClient().get(_url(license)).status_code == 401


def test_an_unreadable_license_id_is_a_clear_conflict(developer_api, app):
    license, _ = _license(app)
    License.objects.filter(pk=license.pk).update(license_id_encrypted="v1:nokey:AAAA:AAAA")
    response = developer_api.get(_url(license))
    assert response.status_code == 409 and response.json()["code"] == "credential_corrupt"


def test_the_pull_secret_is_in_the_api_schema(developer_api):
    schema = APIClient().get("/api/v1/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/licenses/{id}/pull-secret/"]["get"]
    assert [p["name"] for p in operation["parameters"] if p["in"] == "query"] == ["namespace"]
    assert "application/yaml" in operation["responses"]["200"]["content"]


# --- the license page --------------------------------------------------------------------------


def test_the_license_page_shows_the_secret_with_copy_and_download(viewer_client, app, settings):
    settings.REGISTRY_HOST = REGISTRY
    license, license_id = _license(app)
    page = viewer_client.get(reverse("delivery:license-detail", args=[license.pk]), HTTP_HOST="testserver")
    html = page.content.decode()
    assert 'id="pull-secret"' in html and 'data-copy="pull-secret-text"' in html
    download = reverse("delivery:license-pull-secret", args=[license.pk])
    assert download == f"/licenses/{license.pk}/pull-secret.yaml"
    assert f'action="{download}"' in html and 'name="namespace"' in html
    shown = page.context["pull_secret"]
    assert f"<code>{shown}</code>" in html.replace("&#x27;", "'").replace("&quot;", '"')
    assert _secret(shown)[1] == {"auths": _expected_auths(license_id, "testserver", REGISTRY)}

    response = viewer_client.get(download, {"namespace": "globex"})
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="acme-api-registry.yaml"'
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    document, config = _secret(response.content.decode())
    assert document["metadata"]["namespace"] == "globex"
    assert config == {"auths": _expected_auths(license_id, "testserver", REGISTRY)}


def test_a_bad_namespace_on_the_page_says_why(viewer_client, app):
    license, _ = _license(app)
    url = reverse("delivery:license-pull-secret", args=[license.pk])
    response = viewer_client.get(url, {"namespace": "Not Valid"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("delivery:license-detail", args=[license.pk]) + "#pull-secret"
    assert b"A namespace is a DNS-1123 label" in response.content


def test_an_unreadable_license_id_on_the_page(viewer_client, app):
    license, _ = _license(app)
    License.objects.filter(pk=license.pk).update(license_id_encrypted="v1:nokey:AAAA:AAAA")
    page = viewer_client.get(reverse("delivery:license-detail", args=[license.pk]))
    assert page.status_code == 200 and b"No pull secret" in page.content
    url = reverse("delivery:license-pull-secret", args=[license.pk])
    response = viewer_client.get(url, follow=True)
    assert b"no secret was made" in response.content


def test_an_outsider_gets_404_on_the_page(outsider_client, app):
    license, _ = _license(app)
    assert outsider_client.get(reverse("delivery:license-pull-secret", args=[license.pk])).status_code == 404


# --- the CLI -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_cli_prints_the_secret(live_server, team, admin, app, settings):
    from tests.cli.conftest import Portal

    settings.REGISTRY_HOST = REGISTRY  # live_server runs in this process
    license, license_id = _license(app)
    portal = Portal(url=live_server.url, token=factories.user_token(admin, team))
    proxy_host = live_server.url.removeprefix("http://")

    by_number = portal("license", "pull-secret", str(license.pk))
    assert by_number.returncode == 0, by_number.stderr
    document, config = _secret(by_number.stdout)
    assert document["metadata"] == {"name": "acme-api-registry", "labels": {"app.kubernetes.io/part-of": "acme-api"}}
    assert config == {"auths": _expected_auths(license_id, proxy_host, REGISTRY)}

    # "--": a license ID may start with "-" (token_urlsafe), which click would read as an option.
    by_id = portal("license", "pull-secret", "--namespace", "globex", "--", license_id)
    assert by_id.returncode == 0, by_id.stderr
    assert yaml.safe_load(by_id.stdout)["metadata"]["namespace"] == "globex"

    as_json = json.loads(portal("license", "pull-secret", str(license.pk), "--output", "json").stdout)
    assert as_json["name"] == "acme-api-registry" and as_json["content"] == by_number.stdout

    bad = portal("license", "pull-secret", str(license.pk), "--namespace", "Globex Prod")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("error: namespace: A namespace is a DNS-1123 label"), bad.stderr

    debug = portal("license", "pull-secret", str(license.pk), "--debug")
    assert debug.returncode == 0 and "> GET " in debug.stderr
    encoded = yaml.safe_load(debug.stdout)["data"][".dockerconfigjson"]
    assert license_id not in debug.stderr and encoded not in debug.stderr

    missing = portal("license", "pull-secret", "999999")
    assert missing.returncode == 1 and "no license 999999 in your team" in missing.stderr
