"""When license files cannot be signed (LICENSE_SIGNING_KEY_FILE misconfigured), the API answers
a clear JSON error naming the reason, as the page says it, and no file is handed out."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.urls import reverse

from accounts.models import Role
from licenses import services
from tests import factories

pytestmark = pytest.mark.django_db


def _ec_key_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


KEY_FILES = {
    "an EC key, not Ed25519": (_ec_key_pem, "holds no Ed25519 private key"),
    "not a PEM key at all": (lambda: b"hello\n", "is not an unencrypted PEM private key"),
}


@pytest.fixture(params=list(KEY_FILES))
def broken_key(request, settings, tmp_path):
    """LICENSE_SIGNING_KEY_FILE pointing at a file the portal cannot sign with; the reason expected."""
    content, reason = KEY_FILES[request.param]
    key_file = tmp_path / "license_signing_key.pem"
    key_file.write_bytes(content())
    settings.LICENSE_SIGNING_KEY_FILE = str(key_file)
    return reason


@pytest.fixture
def license(app, team):
    admin = team.memberships.get(role=Role.ADMIN).user
    license, _ = services.license_create(actor=factories.actor_of(admin, team), app=app, customer_name="Initech")
    return license


def test_the_api_answers_license_file_unavailable_with_the_reason(viewer_api, license, broken_key):
    response = viewer_api.get(f"/api/v1/licenses/{license.pk}/license-file")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "license_file_unavailable"
    assert body["message"].startswith("The license file cannot be signed: ")
    assert broken_key in body["message"] and "LICENSE_SIGNING_KEY_FILE" in body["message"]


def test_the_page_says_the_same_and_makes_no_file(viewer_client, license, broken_key):
    response = viewer_client.get(reverse("licenses:license-file", args=[license.pk]), follow=True)
    assert response.status_code == 200
    assert "Content-Disposition" not in response
    text = " ".join(str(m) for m in response.context["messages"])
    assert text.startswith("The license file cannot be signed: ") and broken_key in text


def test_the_public_key_endpoint_answers_503_without_naming_the_key_file(client, broken_key, settings):
    response = client.get("/api/v1/license-signing-key")
    assert response.status_code == 503
    assert response.json()["code"] == "license_file_unavailable"
    assert settings.LICENSE_SIGNING_KEY_FILE not in response.content.decode()
