"""GET /customer/v1/install-kit.tar.gz: the customer's kit, authorised by the license itself."""

from __future__ import annotations

import base64
import itertools
import secrets
from datetime import timedelta

import pytest
import yaml
from django.test import Client
from django.utils import timezone

from delivery import customer_auth, installkit
from licenses import releases
from licenses import services as licenses
from licenses.models import License
from portal import registry_tokens
from tests.installkit import kits

pytestmark = pytest.mark.django_db

URL = "/customer/v1/install-kit.tar.gz"
_run = secrets.token_hex(2)
_addresses = itertools.count(1)

SETTINGS = """\
images:
- {source: quay, name: acme/api, tag: "1.0"}
- {source: public, name: redis, tag: "7"}
"""


def _deployment(tag: str) -> str:
    return kits.workload(
        "Deployment",
        "api",
        f'containers: [{{name: api, image: "quay.io/acme/api:{tag}"}}, {{name: cache, image: "redis:7"}}]',
    )


def _release(actor, app, tag: str = "1.0", promote_to: str = "stable"):
    files = {"acme.yaml": SETTINGS.replace('"1.0"', f'"{tag}"'), "api.yaml": _deployment(tag)}
    release, _ = releases.release_create(actor=actor, app=app, files=files, version=tag, promote_to=promote_to)
    return release


def _client() -> Client:
    """A client from an address of its own: failed attempts count per address."""
    return Client(REMOTE_ADDR=f"2001:db8:{_run}:4b::{next(_addresses):x}")


def _basic(password: str, user: str = "LICENSE_ID") -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _get(license_id: str, client: Client | None = None, **params):
    return (client or _client()).get(URL, params, **_basic(license_id, license_id))


def _kit_files(response, tmp_path) -> dict[str, str]:
    folder = kits.unpack(response.content, tmp_path)
    return {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()}


def _assert_refused(response, status: int, message: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert message in response.json()["message"], response.json()
    if status == 401:
        assert response["WWW-Authenticate"] == 'Basic realm="portal", charset="UTF-8"'


def test_a_license_downloads_the_current_release_of_its_channel(actor, app, customer_license, quay, tmp_path, settings):
    settings.REGISTRY_HOST = "registry.example.test"
    _release(actor, app, "1.0")
    _release(actor, app, "1.1")
    _release(actor, app, "2.0-beta", promote_to="beta")
    response = _get(customer_license.license_id)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/gzip"
    assert response["Content-Disposition"] == 'attachment; filename="acme-api-install-kit-2.tar.gz"'
    assert "no-store" in response["Cache-Control"]
    files = _kit_files(response, tmp_path)
    assert files["manifests/api.yaml"] == _deployment("1.1")
    kustomization = yaml.safe_load(files["kustomization.yaml"])
    assert kustomization["images"] == [
        {"name": "quay.io/acme/api", "newName": "testserver/proxy/acme-api/quay.io/acme/api"}
    ]
    (secret,) = yaml.safe_load_all(files["acme-api-registry.yaml"])
    assert set(kits.docker_config(secret)["auths"]) == {"testserver", "registry.example.test"}
    assert kits.docker_config(secret)["auths"]["testserver"]["password"] == customer_license.license_id
    assert "http://testserver/customer/v1/install-kit.tar.gz" in files["README.md"]


def test_an_earlier_release_of_the_channel_by_sequence_and_a_secret_name(actor, app, customer_license, quay, tmp_path):
    _release(actor, app, "1.0")
    _release(actor, app, "1.1")
    response = _get(customer_license.license_id, sequence="1", secret_name="replicatedregistrykey")
    assert response.status_code == 200, response.content
    files = _kit_files(response, tmp_path)
    assert files["manifests/api.yaml"] == _deployment("1.0")
    assert "replicatedregistrykey.yaml" in files
    assert yaml.safe_load(files["replicatedregistrykey.yaml"])["metadata"]["name"] == "replicatedregistrykey"


def test_the_user_name_is_not_checked_only_the_license_id(app, customer_license, actor, quay):
    _release(actor, app)
    response = _client().get(URL, **_basic(customer_license.license_id, user="ops@globex.test"))
    assert response.status_code == 200


@pytest.mark.parametrize("how", ["revoked", "expired"])
def test_a_revoked_or_expired_license_gets_401_saying_so(actor, app, customer_license, quay, how):
    _release(actor, app)
    if how == "revoked":
        licenses.license_revoke(actor=actor, license=customer_license.license)
        message = "This license is revoked; ask the vendor to restore it."
    else:
        yesterday = timezone.now() - timedelta(days=1)
        License.objects.filter(pk=customer_license.license.pk).update(expires_at=yesterday)
        message = f"This license expired on {yesterday:%Y-%m-%d}; ask the vendor to extend it."
    _assert_refused(_get(customer_license.license_id), 401, message)


def test_a_wrong_license_id_no_credentials_and_a_token_get_the_basic_challenge(app, customer_license, actor, quay):
    _release(actor, app)
    _assert_refused(_get(customer_license.license_id + "x"), 401, "No license has this license ID")
    _assert_refused(_client().get(URL), 401, "your license ID as user name and password")
    # A proxy token names the license but not its ID, which the kit's Secret needs.
    token, _, _ = registry_tokens.issue(
        subject=f"license:{customer_license.license.uid}", audience="portal-proxy", access=[]
    )
    _assert_refused(
        _client().get(URL, HTTP_AUTHORIZATION=f"Bearer {token}"), 401, "your license ID as user name and password"
    )


def test_no_release_on_the_channel_is_404_naming_it(customer_license, actor, app, quay):
    _release(actor, app, promote_to="beta")
    _assert_refused(
        _get(customer_license.license_id),
        404,
        "No release of acme-api has been promoted to channel “stable” yet, so there is nothing to install",
    )


def test_a_sequence_never_promoted_to_the_channel_is_404_naming_it(customer_license, actor, app, quay):
    _release(actor, app)  # 1, stable
    _release(actor, app, promote_to="beta")  # 2, beta only
    for sequence in ("2", "99"):
        _assert_refused(
            _get(customer_license.license_id, sequence=sequence),
            404,
            f"Release {sequence} of acme-api was never promoted to channel “stable”.",
        )


def test_bad_parameters_are_400_naming_the_parameter(customer_license, actor, app, quay):
    _release(actor, app)
    response = _get(customer_license.license_id, secret_name="Globex_Key")
    _assert_refused(response, 400, "secret_name: A Secret's name is a DNS-1123 subdomain")
    assert list(response.json()["errors"]) == ["secret_name"]
    response = _get(customer_license.license_id, sequence="latest")
    _assert_refused(response, 400, "sequence: A release sequence is a whole number")
    assert list(response.json()["errors"]) == ["sequence"]
    both = _get(customer_license.license_id, sequence="latest", secret_name="Globex_Key")
    assert both.status_code == 400 and sorted(both.json()["errors"]) == ["secret_name", "sequence"]


def test_parameters_are_not_judged_before_the_license(customer_license):
    """Nobody learns anything about a release without a license that may use it."""
    response = _client().get(URL, {"secret_name": "Bad_Name"}, **_basic("nobody"))
    assert response.status_code == 401


def test_failed_attempts_from_an_address_spend_its_budget_then_even_the_right_id_waits(
    customer_license, actor, app, quay, monkeypatch
):
    _release(actor, app)
    monkeypatch.setattr(customer_auth, "RATE_PER_ADDRESS", 2)
    client = _client()
    assert _get(customer_license.license_id, client).status_code == 200  # a success costs nothing
    for _ in range(2):
        assert _get("guess-" + secrets.token_hex(8), client).status_code == 401
    limited = _get(customer_license.license_id, client)
    _assert_refused(limited, 429, "too many attempts from your address")
    assert limited["Retry-After"] == str(customer_auth.RATE_WINDOW)
    assert _get(customer_license.license_id).status_code == 200  # another address


def test_only_get_and_head(customer_license, actor, app, quay):
    _release(actor, app)
    headers = _basic(customer_license.license_id)
    assert _client().post(URL, **headers).status_code == 405
    assert _client().head(URL, **headers).status_code == 200


def test_the_kit_of_a_release_still_resolving_treats_registry_images_as_private(
    customer_license, actor, app, quay, tmp_path
):
    release = _release(actor, app)
    assert {i.visibility for i in release.images.all()} == {""}
    files = _kit_files(_get(customer_license.license_id), tmp_path)
    assert "quay.io/acme/api" in files["kustomization.yaml"]
    # Once resolving finds it public, it is pulled from where it is.
    release.images.filter(source="quay").update(visibility="public")
    files = _kit_files(_get(customer_license.license_id), tmp_path / "again")
    assert "images" not in yaml.safe_load(files["kustomization.yaml"])


def test_license_release_follows_the_licenses_own_channel(actor, app, quay):
    license, _ = licenses.license_create(actor=actor, app=app, customer_name="Beta tester")
    License.objects.filter(pk=license.pk).update(channel=releases.channel_get(app, "beta"))
    license.refresh_from_db()
    _release(actor, app, "1.0")
    beta = _release(actor, app, "2.0", promote_to="beta")
    assert installkit.license_release(license, None) == beta
    with pytest.raises(installkit.NoRelease, match="Release 1 of acme-api was never promoted to channel “beta”"):
        installkit.license_release(license, 1)
