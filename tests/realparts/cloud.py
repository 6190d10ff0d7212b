"""Real cloud-auth parts on loopback: moto's ECR in server mode and a Google OAuth token endpoint."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# google-auth always signs the assertion for this audience, whatever token_uri says (FACTS.md).
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ECR_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def canary() -> str:
    """A unique, greppable secret value (SECURITY-TESTS.md conventions)."""
    return f"CANARY-{uuid.uuid4()}"


def canary_aws_secret() -> str:
    """A canary shaped like an AWS secret access key (40 chars), so validation accepts it."""
    return ("CANARY" + uuid.uuid4().hex + "00")[:40]


def _http(method: str, url: str, data: bytes | None = None, timeout: float = 5) -> tuple[int, bytes]:
    # text/plain: moto's reset-auth reads the raw body, which Flask eats for form content types.
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "text/plain"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# ---------------------------------------------------------------------------------------------
# moto (ECR)


@dataclass
class MotoServer:
    """A moto_server process; `url` is what AWS_ENDPOINT_URL_ECR points at."""

    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, log_dir: Path, timeout: float = 30) -> MotoServer:
        port = free_port()
        log_path = log_dir / f"moto-{port}.log"
        moto = Path(sys.executable).with_name("moto_server")
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [str(moto), "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = cls(port=port, process=process, log_path=log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"moto_server exited early; see {log_path}")
            try:
                if _http("GET", f"{server.url}/moto-api/data.json", timeout=1)[0] == 200:
                    return server
            except OSError:
                pass
            time.sleep(0.1)
        server.stop()
        raise RuntimeError(f"moto_server did not answer within {timeout}s; see {log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def reset(self) -> None:
        """Forget every resource (IAM users, repositories) and switch authentication off again."""
        self.set_auth(enforced=False)
        _http("POST", f"{self.url}/moto-api/reset")

    def set_auth(self, *, enforced: bool) -> None:
        """moto accepts any keys unless told to check them against its own IAM users."""
        # Reference: https://docs.getmoto.org/en/latest/docs/iam.html
        status, body = _http("POST", f"{self.url}/moto-api/reset-auth", b"0" if enforced else b"inf")
        if status != 200:
            raise RuntimeError(f"moto reset-auth failed: {status} {body[:200]!r}")

    def create_iam_keys(self, user: str | None = None, *, allow_ecr: bool = True) -> tuple[str, str]:
        """An IAM user in moto and its (access key id, secret); create before enforcing auth."""
        import boto3

        iam = boto3.client(
            "iam",
            region_name="us-east-1",
            endpoint_url=self.url,
            aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
            aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        user = user or f"puller-{secrets.token_hex(4)}"
        iam.create_user(UserName=user)
        if allow_ecr:
            iam.put_user_policy(UserName=user, PolicyName="ecr-pull", PolicyDocument=json.dumps(ECR_POLICY))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]


# ---------------------------------------------------------------------------------------------
# Google OAuth token endpoint


@dataclass
class TokenRequest:
    """One POST the endpoint received, and what it made of it."""

    path: str
    form: dict[str, str]
    claims: dict[str, Any] | None  # the verified assertion claims; None when it did not verify
    status: int
    error: str | None
    access_token: str | None


@dataclass
class ServiceAccountKey:
    """A generated service-account JSON key; `info` is what the vendor would upload."""

    info: dict[str, Any]
    public_key_pem: bytes

    @property
    def text(self) -> str:
        return json.dumps(self.info, indent=2)

    @property
    def client_email(self) -> str:
        return self.info["client_email"]

    @property
    def secret_marker(self) -> str:
        """A line of the private key's body: grep any sink for it to prove the key never leaked."""
        lines = self.info["private_key"].strip().splitlines()
        return lines[len(lines) // 2]


class TokenEndpoint:
    """Google's token endpoint, shrunk: verifies the JWT-bearer assertion and issues a token."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, bytes] = {}  # client_email -> public key PEM
        self.requests: list[TokenRequest] = []
        self.issued: list[str] = []
        self.fail_status: int | None = None
        self.fail_error = "invalid_grant"
        self.expires_in = 3600
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, 1 << 20)).decode("utf-8", "replace")
                form = dict(urllib.parse.parse_qsl(body))
                status, payload = endpoint._answer(self.path, form)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def token_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.issued.clear()
            self.fail_status = None
            self.fail_error = "invalid_grant"
            self.expires_in = 3600

    def fail(self, status: int, error: str = "invalid_grant") -> None:
        """Answer every following request with this status and OAuth error code."""
        self.fail_status, self.fail_error = status, error

    def register(self, client_email: str, public_key_pem: bytes) -> None:
        with self._lock:
            self._keys[client_email] = public_key_pem

    def make_key(self, *, token_uri: str | None = None, register: bool = True, **overrides: Any) -> ServiceAccountKey:
        """A fresh RSA service-account key whose token_uri points here (unless overridden)."""
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        public_pem = private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        marker = secrets.token_hex(4)
        info: dict[str, Any] = {
            "type": "service_account",
            "project_id": "canary-project",
            "private_key_id": secrets.token_hex(20),
            "private_key": private_pem,
            "client_email": f"canary-{marker}@canary-project.iam.gserviceaccount.com",
            "client_id": str(10**20 + secrets.randbelow(10**20)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri or self.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "universe_domain": "googleapis.com",
        }
        info.update(overrides)
        if register:
            self.register(info["client_email"], public_pem)
        return ServiceAccountKey(info=info, public_key_pem=public_pem)

    def _answer(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        claims, error = self._verify(form)
        with self._lock:
            if self.fail_status is not None:
                status, payload = self.fail_status, {"error": self.fail_error, "error_description": "told to fail"}
            elif error is not None:
                # Google answers a bad assertion with 400 invalid_grant.
                status, payload = 400, {"error": "invalid_grant", "error_description": error}
            else:
                token = f"ya29.loopback-{len(self.issued) + 1}-{secrets.token_urlsafe(16)}"
                self.issued.append(token)
                status = 200
                payload = {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
            self.requests.append(
                TokenRequest(
                    path=path,
                    form=form,
                    claims=claims,
                    status=status,
                    error=payload.get("error") or error,
                    access_token=payload.get("access_token"),
                )
            )
        return status, payload

    def _verify(self, form: dict[str, str]) -> tuple[dict[str, Any] | None, str | None]:
        if form.get("grant_type") != JWT_BEARER_GRANT:
            return None, "unsupported grant_type"
        assertion = form.get("assertion", "")
        try:
            issuer = jwt.decode(assertion, options={"verify_signature": False}).get("iss", "")
        except jwt.PyJWTError:
            return None, "assertion is not a JWT"
        public_key = self._keys.get(issuer)
        if public_key is None:
            return None, "unknown service account"
        try:
            # Reference: https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests
            claims = jwt.decode(
                assertion,
                public_key,
                algorithms=["RS256"],
                audience=GOOGLE_TOKEN_AUDIENCE,
                issuer=issuer,
                options={"require": ["iss", "aud", "exp", "iat"]},
            )
        except jwt.PyJWTError as e:
            return None, f"Invalid JWT: {type(e).__name__}"
        return claims, None
