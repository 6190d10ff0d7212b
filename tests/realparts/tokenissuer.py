"""A small Docker token issuer on loopback, the realm for a token-auth Distribution.

Checks Basic credentials (GET, as docker/skopeo send) or an OAuth2 password grant (POST, as
containerd may send) and grants the requested repository scopes, signed RS256 with a
generated key whose self-signed certificate goes into Distribution's rootcertbundle.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

# (username, type, name, requested actions) -> granted actions
Grant = Callable[[str, str, str, list[str]], list[str]]


def libtrust_key_id(public_key: rsa.RSAPublicKey) -> str:
    """The `kid` Distribution 2.8 accepts: sha256 of the DER public key, 240 bits, base32, 12x4 with ':'."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i : i + 4] for i in range(0, 48, 4))


def parse_scope(scope: str) -> tuple[str, str, list[str]] | None:
    """`repository:acme/api:pull,push` → ("repository", "acme/api", ["pull", "push"]); names may hold ':'."""
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name:
        return None
    return kind, name, [a for a in actions.split(",") if a]


@dataclass
class IssuedRequest:
    method: str
    path: str
    username: str | None
    scopes: list[str]
    granted: bool


@dataclass
class TokenIssuer:
    users: dict[str, str]
    service: str = "test-registry"
    issuer: str = "test-token-issuer"
    ttl: int = 300
    host: str = "127.0.0.1"
    grant: Grant | None = None  # default: every requested action
    requests: list[IssuedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.issuer)])
        now = dt.datetime.now(dt.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(self.key, hashes.SHA256())
        )
        self.kid = libtrust_key_id(self.key.public_key())
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    def issue(self, username: str, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            kind, name, actions = parsed
            granted = self.grant(username, kind, name, actions) if self.grant else actions
            if granted:
                access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": username,
            "aud": self.service,
            "exp": now + self.ttl,
            "nbf": now - 30,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        x5c = base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid, "x5c": [x5c]})

    def _check(self, username: str | None, password: str | None) -> bool:
        expected = self.users.get(username or "")
        return expected is not None and secrets.compare_digest(expected.encode(), (password or "").encode())

    def start(self) -> TokenIssuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _reply(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _answer(self, username: str | None, password: str | None, scopes: list[str]) -> None:
                ok = self._check_and_record(username, password, scopes)
                if not ok:
                    challenge = {"WWW-Authenticate": 'Basic realm="token"'}
                    self._reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}, challenge)
                    return
                token = issuer.issue(username or "", scopes)
                issued_at = dt.datetime.now(dt.UTC).isoformat()
                body = {"token": token, "access_token": token, "expires_in": issuer.ttl, "issued_at": issued_at}
                self._reply(200, body)

            def _check_and_record(self, username: str | None, password: str | None, scopes: list[str]) -> bool:
                ok = issuer._check(username, password)
                with issuer._lock:
                    issuer.requests.append(IssuedRequest(self.command, self.path, username, scopes, ok))
                return ok

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
                username = password = None
                header = self.headers.get("Authorization", "")
                if header[:6].lower() == "basic ":
                    try:
                        username, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    except ValueError:
                        pass
                self._answer(username, password, scopes)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                if form.get("grant_type") != ["password"]:
                    self._reply(400, {"error": "unsupported_grant_type"})
                    return
                scopes = [s for value in form.get("scope", []) for s in value.split(" ") if s]
                self._answer(form.get("username", [None])[0], form.get("password", [None])[0], scopes)

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="token-issuer", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
