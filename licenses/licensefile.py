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
import os
import secrets
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from accounts import customer_hosts
from portal_cli.licensefile import (  # noqa: F401 (the format is shared with the CLI; re-exported)
    ALGORITHM,
    API_VERSION,
    KIND,
    SIGNING_CONTEXT,
    TOP_LEVEL_KEYS,
    LicenseFileError,
    key_id,
    load_public_key,
    signed_message,
    verify_license_file,
)

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


@lru_cache(maxsize=8)  # one key file per setting; bounded all the same
def _load(key_file: str) -> Ed25519PrivateKey:
    path = Path(key_file)
    try:
        if not path.exists():
            _create_key(path)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as e:
        raise LicenseFileError(
            f"{key_file} cannot be read or created: {e.strerror} (LICENSE_SIGNING_KEY_FILE)"
        ) from None
    except (ValueError, TypeError, UnsupportedAlgorithm):  # not PEM, encrypted, or an unknown kind of key
        raise LicenseFileError(f"{key_file} is not an unencrypted PEM private key (LICENSE_SIGNING_KEY_FILE)") from None
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


# --- signing -----------------------------------------------------------------------------


def _timestamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def license_document(license, license_id: str) -> dict[str, Any]:
    """The signed content of a license file, before the signature is added. Its hosts are the
    ones the license's customers are shown: the team's default custom domains, else the
    portal's own (PORTAL_URL's host, REGISTRY_HOST)."""
    team_id = license.app.team_id
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
            "proxyHost": customer_hosts.proxy_host(team_id),
            "registryHost": customer_hosts.registry_host(team_id),
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
