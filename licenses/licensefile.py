"""License files: the YAML a customer receives, signed with the portal's Ed25519 key.

A license file is a YAML mapping with exactly four keys:

    apiVersion: vendor-portal/v1
    kind: License
    spec: {licenseId, app: {slug, name}, customer: {name, email}, type,
           issuedAt, expiresAt, proxyHost, registryHost}
    signature: {algorithm: Ed25519, keyId, value}

Every value in `spec` is a string, except `expiresAt`, which is null for a license that
never expires; times are UTC in the form 2027-01-31T00:00:00Z.

The signature covers everything but itself. Its message is, byte for byte:

    b"vendor-portal license v1\\n" + canonical

where `canonical` is the UTF-8 JSON of {"apiVersion", "kind", "spec"} with keys sorted at
every level, no whitespace (separators "," and ":") and non-ASCII characters written as
themselves (Python: json.dumps(doc, sort_keys=True, separators=(",", ":"),
ensure_ascii=False).encode()). Only strings, null and mappings occur, so this JSON is
unambiguous. `signature.value` is the base64 of the 64-byte Ed25519 signature;
`signature.keyId` is "sha256:" + hex SHA-256 of the raw 32-byte public key, a hint for
telling keys apart, not part of what is signed. Comments in the file are not signed.

The public key is served as PEM at /api/v1/license-signing-key; `portal license verify`
checks a file against it without talking to the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

API_VERSION = "vendor-portal/v1"
KIND = "License"
ALGORITHM = "Ed25519"
SIGNING_CONTEXT = b"vendor-portal license v1\n"
TOP_LEVEL_KEYS = {"apiVersion", "kind", "spec", "signature"}


class LicenseFileError(ValueError):
    """A license file that is malformed, or whose signature does not verify."""


# --- the key -----------------------------------------------------------------------------


def _create_key(path: Path) -> None:
    """Write a new key so that concurrent first uses agree on one: link() never overwrites."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process won the race; use its key
    finally:
        temporary.unlink(missing_ok=True)


@cache
def _load(key_file: str) -> Ed25519PrivateKey:
    path = Path(key_file)
    if not path.exists():
        _create_key(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise LicenseFileError(f"{key_file} holds no Ed25519 private key (LICENSE_SIGNING_KEY_FILE)")
    return key


def signing_key() -> Ed25519PrivateKey:
    """The key license files are signed with: LICENSE_SIGNING_KEY_FILE, generated there on first use."""
    from django.conf import settings

    return _load(str(settings.LICENSE_SIGNING_KEY_FILE))


def public_key_pem() -> str:
    return (
        signing_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


# --- signing -----------------------------------------------------------------------------


def _timestamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _host(url: str) -> str:
    return urlsplit(url).netloc.rpartition("@")[2]


def signed_message(document: dict[str, Any]) -> bytes:
    """The bytes the signature covers (see the module docstring)."""
    payload = {"apiVersion": document.get("apiVersion"), "kind": document.get("kind"), "spec": document.get("spec")}
    try:
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise LicenseFileError(f"the license holds a value that is not text: {e}") from None
    return SIGNING_CONTEXT + canonical.encode("utf-8")


def license_document(license, license_id: str) -> dict[str, Any]:
    """The signed content of a license file, before the signature is added."""
    from django.conf import settings

    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "spec": {
            "licenseId": license_id,
            "app": {"slug": license.app.slug, "name": license.app.name},
            "customer": {"name": license.customer_name, "email": license.customer_email or ""},
            "type": str(license.type),
            "issuedAt": _timestamp(license.created_at),
            "expiresAt": _timestamp(license.expires_at),
            "proxyHost": _host(settings.PORTAL_URL),
            "registryHost": settings.REGISTRY_HOST,
        },
    }


def render_license_file(license, license_id: str) -> str:
    """The license file for `license` (YAML), signed with the portal's key."""
    key = signing_key()
    document = license_document(license, license_id)
    document["signature"] = {
        "algorithm": ALGORITHM,
        "keyId": key_id(key.public_key()),
        "value": base64.b64encode(key.sign(signed_message(document))).decode(),
    }
    spec = document["spec"]
    header = (
        f"# License for {_one_line(spec['customer']['name'])} to {_one_line(spec['app']['name'])}, "
        "issued by the vendor portal.\n"
        "# The licenseId below is your credential for the app's images; keep it private.\n"
        f"#   docker login {spec['proxyHost']} -u LICENSE_ID   (password: the licenseId)\n"
        f"#   docker pull {spec['proxyHost']}/proxy/{spec['app']['slug']}/<upstream-host>/<repository>:<tag>\n"
        "# Check the signature with: portal license verify FILE (editing anything but comments breaks it).\n"
    )
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False, width=2**31)
    return header + body


def _one_line(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


# --- verifying ---------------------------------------------------------------------------


def load_public_key(public_key_pem: str | bytes) -> Ed25519PublicKey:
    data = public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise LicenseFileError("the public key is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise LicenseFileError("the public key is not an Ed25519 key")
    return key


def _check_text(value: Any, where: str) -> None:
    """Only text, null and mappings are signed; a YAML number, date or list is an edit."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_text(item, f"{where}.{key}")
    elif value is not None and not isinstance(value, str):
        raise LicenseFileError(f"the license holds a value that is not text: {where}")


def verify_license_file(text: str, public_key_pem: str | bytes) -> dict[str, Any]:
    """The license's `spec` when `text` is a license file signed by that key; else LicenseFileError."""
    public_key = load_public_key(public_key_pem)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise LicenseFileError(f"not a license file: the YAML does not parse ({' '.join(str(e).split())})") from None
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise LicenseFileError("not a license file: kind License is missing")
    if document.get("apiVersion") != API_VERSION:
        raise LicenseFileError(f"unsupported apiVersion {document.get('apiVersion')!r}; expected {API_VERSION}")
    extra = sorted(str(k) for k in document if k not in TOP_LEVEL_KEYS)
    if extra:
        raise LicenseFileError(f"fields outside the signed part: {', '.join(extra)}")
    spec = document.get("spec")
    if not isinstance(spec, dict):
        raise LicenseFileError("not a license file: spec is missing")
    _check_text(spec, "spec")
    signature = document.get("signature")
    if not isinstance(signature, dict) or not signature.get("value"):
        raise LicenseFileError("the license file is not signed")
    if signature.get("algorithm") != ALGORITHM:
        raise LicenseFileError(f"unsupported signature algorithm {signature.get('algorithm')!r}; expected {ALGORITHM}")
    try:
        raw = base64.b64decode(str(signature["value"]), validate=True)
    except (binascii.Error, ValueError):
        raise LicenseFileError("the signature is not base64") from None
    try:
        public_key.verify(raw, signed_message(document))
    except InvalidSignature:
        expected = key_id(public_key)
        if signature.get("keyId") and signature.get("keyId") != expected:
            raise LicenseFileError(
                f"the signature does not verify: the file names key {signature.get('keyId')}, "
                f"not this portal's key {expected}"
            ) from None
        raise LicenseFileError("the signature does not verify: the file was changed after it was signed") from None
    return spec
