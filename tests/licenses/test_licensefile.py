"""License files: what they say, how they are signed, and that any edit breaks the signature.

Both verifiers are exercised on every case: the portal's (licenses/licensefile.py) and the
CLI's own (portal_cli/commands/licenses.py), which customers run without the portal's code.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from datetime import timedelta

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.utils import timezone

from licenses import licensefile, services
from licenses.licensefile import LicenseFileError, render_license_file, verify_license_file
from portal_cli.commands import licenses as cli_licenses

pytestmark = pytest.mark.django_db


@pytest.fixture
def signing_key_file(settings, tmp_path):
    settings.LICENSE_SIGNING_KEY_FILE = str(tmp_path / "keys" / "license_signing_key.pem")
    return tmp_path / "keys" / "license_signing_key.pem"


@pytest.fixture
def issued(app, actor, signing_key_file):
    """A license and its file, signed with a fresh key."""
    license, license_id = services.license_create(
        actor=actor,
        app=app,
        customer_name="Initech GmbH",
        customer_email="ops@initech.test",
        type="trial",
        expires_at=timezone.now() + timedelta(days=30),
    )
    return license, license_id, render_license_file(license, license_id)


def cli_verify(text: str, pem: str) -> dict:
    try:
        return cli_licenses.verify_license_text(text, cli_licenses._public_key(pem))
    except cli_licenses.InvalidLicenseFile as e:
        raise LicenseFileError(str(e)) from None


VERIFIERS = [pytest.param(verify_license_file, id="portal"), pytest.param(cli_verify, id="cli")]


@pytest.mark.parametrize("verify", VERIFIERS)
def test_a_license_file_says_who_may_pull_what_and_verifies(issued, settings, verify):
    settings.PORTAL_URL = "https://portal.example.com"
    settings.REGISTRY_HOST = "registry.example.com"
    license, license_id, _ = issued
    text = render_license_file(license, license_id)
    spec = verify(text, licensefile.public_key_pem())
    assert spec == {
        "licenseId": license_id,
        "app": {"slug": "acme-api", "name": "Acme API"},
        "customer": {"name": "Initech GmbH", "email": "ops@initech.test"},
        "type": "trial",
        "issuedAt": license.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expiresAt": license.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "proxyHost": "portal.example.com",
        "registryHost": "registry.example.com",
    }
    document = yaml.safe_load(text)
    assert (document["apiVersion"], document["kind"]) == ("vendor-portal/v1", "License")
    assert document["signature"]["algorithm"] == "Ed25519"
    assert "docker login portal.example.com -u LICENSE_ID" in text
    assert "docker pull portal.example.com/proxy/acme-api/" in text


def test_the_default_hosts_come_from_portal_url(issued, settings):
    license, license_id, text = issued
    spec = yaml.safe_load(text)["spec"]
    assert spec["proxyHost"] == settings.PORTAL_URL.split("://", 1)[1]
    assert spec["registryHost"] == settings.REGISTRY_HOST
    if settings.PORTAL_URL == "http://127.0.0.1:8000":
        assert settings.REGISTRY_HOST == "127.0.0.1:5000"


def test_the_signature_covers_the_documented_canonical_form(issued):
    """Recompute the signed message from the module docstring alone and check it with the public key."""
    _, _, text = issued
    document = yaml.safe_load(text)
    payload = {k: document[k] for k in ("apiVersion", "kind", "spec")}
    message = b"vendor-portal license v1\n" + json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    public_key = serialization.load_pem_public_key(licensefile.public_key_pem().encode())
    public_key.verify(base64.b64decode(document["signature"]["value"]), message)  # raises when wrong
    assert document["signature"]["keyId"] == licensefile.key_id(public_key)


def _edit(text: str, change) -> str:
    document = yaml.safe_load(text)
    change(document)
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


TAMPERS = {
    "customer name": lambda d: d["spec"]["customer"].update(name="Initech GmbH "),
    "customer email": lambda d: d["spec"]["customer"].update(email="someone@else.test"),
    "expiry": lambda d: d["spec"].update(expiresAt="2099-01-01T00:00:00Z"),
    "no expiry": lambda d: d["spec"].update(expiresAt=None),
    "app slug": lambda d: d["spec"]["app"].update(slug="other-app"),
    "app name": lambda d: d["spec"]["app"].update(name="Other"),
    "license ID": lambda d: d["spec"].update(licenseId=d["spec"]["licenseId"][::-1]),
    "type": lambda d: d["spec"].update(type="paid"),
    "proxy host": lambda d: d["spec"].update(proxyHost="evil.example.com"),
    "a new spec field": lambda d: d["spec"].update(seats="1000"),
    "kind in spec removed": lambda d: d["spec"].pop("registryHost"),
}


@pytest.mark.parametrize("verify", VERIFIERS)
@pytest.mark.parametrize("field", list(TAMPERS))
def test_any_edit_breaks_the_signature(issued, verify, field):
    _, _, text = issued
    tampered = _edit(text, TAMPERS[field])
    with pytest.raises(LicenseFileError, match="the file was changed after it was signed"):
        verify(tampered, licensefile.public_key_pem())


@pytest.mark.parametrize("verify", VERIFIERS)
def test_a_textual_edit_of_the_downloaded_file_is_caught(issued, verify):
    license, _, text = issued
    expiry = license.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (license.expires_at + timedelta(days=3650)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for tampered in (text.replace("Initech GmbH", "Initrode GmbH"), text.replace(expiry, later)):
        assert tampered != text
        with pytest.raises(LicenseFileError, match="changed after it was signed"):
            verify(tampered, licensefile.public_key_pem())
    # Comments are not signed: editing one changes nothing.
    assert verify(text.replace("# The licenseId", "# the licenseId"), licensefile.public_key_pem())


@pytest.mark.parametrize("verify", VERIFIERS)
@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.update(extra="unsigned"), "fields outside the signed part: extra"),
        (lambda d: d.pop("signature"), "the license file is not signed"),
        (lambda d: d["signature"].update(algorithm="RS256"), "unsupported signature algorithm 'RS256'"),
        (lambda d: d["signature"].update(value="not base64!"), "the signature is not base64"),
        (lambda d: d.update(apiVersion="vendor-portal/v9"), "unsupported apiVersion 'vendor-portal/v9'"),
        (lambda d: d.update(kind="Secret"), "kind License is missing"),
        (lambda d: d["spec"].update(seats=5), "a value that is not text: spec.seats"),
        (lambda d: d["spec"].update(expiresAt=[]), "a value that is not text: spec.expiresAt"),
    ],
)
def test_malformed_files_say_what_is_wrong(issued, verify, change, reason):
    _, _, text = issued
    with pytest.raises(LicenseFileError, match=reason):
        verify(_edit(text, change), licensefile.public_key_pem())


@pytest.mark.parametrize("verify", VERIFIERS)
def test_garbage_and_other_keys_are_refused(issued, verify):
    _, _, text = issued
    with pytest.raises(LicenseFileError, match="the YAML does not parse"):
        verify("spec: [unclosed", licensefile.public_key_pem())
    with pytest.raises(LicenseFileError, match="not a license file"):
        verify("just a string", licensefile.public_key_pem())
    other = Ed25519PrivateKey.generate().public_key()
    other_pem = other.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(LicenseFileError, match="the file names key sha256:[0-9a-f]{64}, not this portal's key"):
        verify(text, other_pem.decode())
    with pytest.raises(LicenseFileError, match="not a PEM public key"):
        verify(text, "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")


@pytest.mark.parametrize("verify", VERIFIERS)
@pytest.mark.parametrize("name", ["Müller & Söhne: «Test» 株式会社", "2027-01-31", "yes", "null", "- x", "a: b #c"])
def test_any_customer_name_round_trips_as_text(app, actor, signing_key_file, verify, name):
    license, license_id = services.license_create(actor=actor, app=app, customer_name=name, customer_email="")
    spec = verify(render_license_file(license, license_id), licensefile.public_key_pem())
    assert spec["customer"] == {"name": name, "email": ""}
    assert spec["expiresAt"] is None


def test_the_key_is_generated_once_private_and_reused(signing_key_file):
    assert not signing_key_file.exists()
    first = licensefile.public_key_pem()
    assert signing_key_file.exists()
    assert stat.S_IMODE(os.stat(signing_key_file).st_mode) == 0o600
    licensefile._load.cache_clear()
    assert licensefile.public_key_pem() == first, "the stored key is read back, not replaced"
    licensefile._create_key(signing_key_file)  # a second process losing the race keeps the first key
    licensefile._load.cache_clear()
    assert licensefile.public_key_pem() == first
    assert [p.name for p in signing_key_file.parent.iterdir()] == [signing_key_file.name]
