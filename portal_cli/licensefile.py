"""The license file format: its constants, the bytes a signature covers, and verification.

Pure (cryptography and PyYAML only), so the portal, which signs license files, and the
`portal` CLI, which verifies them offline, share one implementation. The signed form is
described in licenses/licensefile.py.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

API_VERSION = "vendor-portal/v1"
KIND = "License"
ALGORITHM = "Ed25519"
SIGNING_CONTEXT = b"vendor-portal license v1\n"
TOP_LEVEL_KEYS = {"apiVersion", "kind", "spec", "signature"}


class LicenseFileError(ValueError):
    """A license file that is malformed, or whose signature does not verify."""


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def signed_message(document: dict[str, Any]) -> bytes:
    """The bytes the signature covers (see the module docstring)."""
    payload = {"apiVersion": document.get("apiVersion"), "kind": document.get("kind"), "spec": document.get("spec")}
    try:
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise LicenseFileError(f"the license holds a value that is not text: {e}") from None
    return SIGNING_CONTEXT + canonical.encode("utf-8")


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


def verify_license_file(text: str, public_key: str | bytes | Ed25519PublicKey) -> dict[str, Any]:
    """The license's `spec` when `text` is a license file signed by that key (PEM or key);
    else LicenseFileError."""
    if not isinstance(public_key, Ed25519PublicKey):
        public_key = load_public_key(public_key)
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
