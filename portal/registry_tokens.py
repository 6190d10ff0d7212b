"""The registry token signer: the RSA key Distribution trusts, JWTs for the proxy and the
private registry, and the JWKS. No grants here: delivery/scopes.py decides what a token allows.

Reference: https://distribution.github.io/distribution/spec/auth/jwt/ (claims Distribution 2.8 reads).
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.conf import settings

# Distribution rejects a token whose nbf is ahead of its clock; allow some skew.
NOT_BEFORE_LEEWAY = 30


@dataclass(frozen=True)
class SigningKey:
    private_key: rsa.RSAPrivateKey
    certificate_pem: bytes
    kid: str
    x5c: str

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r})"


def libtrust_key_id(public_key: rsa.RSAPublicKey) -> str:
    """Distribution 2.8 finds keys by libtrust's id: SHA-256 of the DER public key, first 30
    bytes, base32, in 12 groups of 4 joined by ':' (see ../shared/FACTS.md)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, 48, 4))


def _create_key(key_path: Path, cert_path: Path) -> None:
    """Write a new key and its certificate, once, however many processes start at the same time
    (`make run`'s web workers do): under an exclusive lock, the certificate first and the key
    last, each renamed into place whole, so a key on disk always has its certificate."""
    key_path.parent.mkdir(parents=True, exist_ok=True)
    with open(key_path.with_name(key_path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if key_path.exists():
            return  # another process made it while this one waited
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vendor-portal token signer")])
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_whole(cert_path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
        _write_whole(key_path, pem, 0o600)


def _write_whole(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@lru_cache(maxsize=8)  # one key file per setting; bounded all the same
def _load(key_file: str) -> SigningKey:
    key_path = Path(key_file)
    cert_path = key_path.with_suffix(".crt")
    if not key_path.exists():
        _create_key(key_path, cert_path)
    private_key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    der = certificate.public_bytes(serialization.Encoding.DER)
    return SigningKey(
        private_key=private_key,
        certificate_pem=cert_path.read_bytes(),
        kid=libtrust_key_id(private_key.public_key()),
        x5c=base64.b64encode(der).decode(),
    )


def signing_key() -> SigningKey:
    """The key tokens are signed with: REGISTRY_TOKEN_KEY_FILE, generated there on first use."""
    return _load(settings.REGISTRY_TOKEN_KEY_FILE)


def jwks() -> dict:
    public = signing_key().private_key.public_key().public_numbers()

    def b64(number: int) -> str:
        return base64.urlsafe_b64encode(number.to_bytes((number.bit_length() + 7) // 8, "big")).decode().rstrip("=")

    key = signing_key()
    return {
        "keys": [
            {
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": key.kid,
                "n": b64(public.n),
                "e": b64(public.e),
                "x5c": [key.x5c],
            }
        ]
    }


def issue(*, subject: str, audience: str, access: list[dict]) -> tuple[str, int, str]:
    """(token, expires_in, issued_at) for a JWT Distribution and the proxy accept."""
    key = signing_key()
    now = int(time.time())
    ttl = settings.REGISTRY_TOKEN_TTL
    claims = {
        "iss": settings.REGISTRY_TOKEN_ISSUER,
        "sub": subject,
        "aud": audience,
        "exp": now + ttl,
        "nbf": now - NOT_BEFORE_LEEWAY,
        "iat": now,
        "jti": secrets.token_urlsafe(16),
        "access": access,
    }
    token = jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "x5c": [key.x5c]})
    issued_at = dt.datetime.fromtimestamp(now, dt.UTC).isoformat().replace("+00:00", "Z")
    return token, ttl, issued_at


def verify(token: str, *, audience: str) -> dict:
    """The claims of a token this portal issued for `audience`; raises jwt.InvalidTokenError."""
    return jwt.decode(
        token,
        signing_key().private_key.public_key(),
        algorithms=["RS256"],
        audience=audience,
        issuer=settings.REGISTRY_TOKEN_ISSUER,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )
