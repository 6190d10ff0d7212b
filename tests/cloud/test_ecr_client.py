"""ECR client: endpoint and key validation, and GetAuthorizationToken against moto in server mode."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from portal.outbound.errors import RegistryError
from registries.clients import ecr
from registries.clients.ecr import EcrInputError, mint_ecr_token, parse_ecr_endpoint
from tests.realparts.cloud import canary_aws_secret

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


# --- endpoint, region and key validation -----------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "region", "account", "expected_region"),
    [
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com", None, "123456789012", "us-east-1"),
        ("https://123456789012.dkr.ecr.eu-west-2.amazonaws.com/", None, "123456789012", "eu-west-2"),
        ("123456789012.dkr.ecr.us-gov-west-1.amazonaws.com", "us-gov-west-1", "123456789012", "us-gov-west-1"),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", None, "123456789012", "cn-north-1"),
        ("ecr.internal.example.com", "ap-southeast-2", None, "ap-southeast-2"),
        ("127.0.0.1:5000", "us-east-1", None, "us-east-1"),
    ],
)
def test_endpoint_gives_account_and_region(endpoint, region, account, expected_region):
    parsed = parse_ecr_endpoint(endpoint, region)
    assert parsed.account_id == account
    assert parsed.region == expected_region


@pytest.mark.parametrize(
    ("endpoint", "region", "field", "code"),
    [
        ("ecr.internal.example.com", "us-east-1; rm -rf", "region", "invalid_region"),
        ("ecr.internal.example.com", "us-east-1.evil.com/", "region", "invalid_region"),
        ("ecr.internal.example.com", "US-EAST-1", "region", "invalid_region"),
        ("ecr.internal.example.com", None, "region", "required"),
        ("123456789012.dkr.ecr.us-east-1;rm.amazonaws.com", None, "endpoint", "invalid_endpoint"),
        ("12345678901.dkr.ecr.us-east-1.amazonaws.com", None, "endpoint", "invalid_endpoint"),
        ("123456789012.dkr.ecr.useast.amazonaws.com", None, "region", "invalid_region"),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com", "eu-west-1", "region", "region_mismatch"),
        ("", "us-east-1", "endpoint", "required"),
    ],
)
def test_bad_endpoint_or_region_is_refused_with_the_field_named(endpoint, region, field, code):
    with pytest.raises(EcrInputError) as caught:
        parse_ecr_endpoint(endpoint, region)
    assert (caught.value.field, caught.value.code) == (field, code)
    if region and "rm -rf" in region:
        assert "rm -rf" not in caught.value.message


def test_region_injection_never_reaches_boto3():
    with pytest.raises(EcrInputError):
        mint_ecr_token(KEY_ID, SECRET, "us-east-1; rm -rf /")


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("AKIA123", "invalid_access_key_id"),
        ("akiaiosfodnn7example", "invalid_access_key_id"),
        ("ASIAIOSFODNN7EXAMPLE", "temporary_access_key"),
        ("AKIAIOSFODNN7EXAMPL\n", "invalid_access_key_id"),
    ],
)
def test_bad_access_key_id_is_refused(value, code):
    with pytest.raises(EcrInputError) as caught:
        ecr.validate_access_key_id(value)
    assert caught.value.code == code


@pytest.mark.parametrize(
    "secret",
    [
        "CANARY-0b9c6a7e-4a52-4a4e-9d8f-2d7e0f1c3b5a",  # 43 chars: wrong length
        "CANARY" + "x" * 33,  # 39 chars
        "CANARY" + "x" * 33 + "\n",
        "CANARY" + "x" * 30 + "; rm",
    ],
)
def test_bad_secret_is_refused_without_echoing_it(secret):
    with pytest.raises(EcrInputError) as caught:
        ecr.validate_secret_access_key(secret)
    assert caught.value.field == "secret_access_key"
    assert "CANARY" not in str(caught.value)


def test_canary_secret_has_the_shape_of_an_aws_secret():
    assert ecr.validate_secret_access_key(canary_aws_secret())


# --- minting against moto --------------------------------------------------------------------


@pytest.mark.slow
def test_token_from_moto_decodes_to_aws_user_and_is_usable_now(moto_ecr):
    token = mint_ecr_token(KEY_ID, SECRET, "us-east-1")

    assert token.username == "AWS"
    assert token.password == "123456789012-auth-token"
    assert base64.b64encode(f"{token.username}:{token.password}".encode()) == b"QVdTOjEyMzQ1Njc4OTAxMi1hdXRoLXRva2Vu"
    # moto claims 2015: the token is used now and minted again shortly, not refreshed in a loop.
    now = datetime.now(UTC)
    assert token.claimed_expires_at.year == 2015
    assert now + timedelta(minutes=4) < token.expires_at <= now + ecr.SHORT_LIFETIME + timedelta(seconds=5)
    assert token.password not in repr(token)


@pytest.mark.slow
def test_registry_id_from_the_endpoint_is_asked_for(moto_ecr):
    endpoint = parse_ecr_endpoint("210987654321.dkr.ecr.eu-west-1.amazonaws.com")
    token = mint_ecr_token(KEY_ID, SECRET, endpoint.region, endpoint.account_id)
    assert token.password == "210987654321-auth-token"


@pytest.mark.slow
def test_moto_accepts_any_keys_unless_auth_is_enforced(moto_ecr):
    """moto's default: keys are not checked at all, so "bad keys" needs enforced auth (below)."""
    token = mint_ecr_token("AKIAAAAAAAAAAAAAAAAA", canary_aws_secret(), "us-east-1")
    assert token.username == "AWS"


@pytest.mark.slow
def test_real_iam_keys_get_a_token_when_moto_checks_keys(ecr_iam_keys):
    key_id, secret = ecr_iam_keys
    assert mint_ecr_token(key_id, secret, "us-east-1").password == "123456789012-auth-token"


@pytest.mark.slow
def test_wrong_secret_is_unauthorized_and_not_echoed(ecr_iam_keys):
    key_id, _ = ecr_iam_keys
    wrong = canary_aws_secret()
    with pytest.raises(RegistryError) as caught:
        mint_ecr_token(key_id, wrong, "us-east-1")
    assert caught.value.category == "unauthorized"
    assert "SignatureDoesNotMatch" in caught.value.message
    assert wrong not in str(caught.value) and wrong not in repr(caught.value.args)


@pytest.mark.slow
def test_unknown_access_key_is_unauthorized(ecr_iam_keys):
    secret = canary_aws_secret()
    with pytest.raises(RegistryError) as caught:
        mint_ecr_token("AKIAZZZZZZZZZZZZZZZZ", secret, "us-east-1")
    assert caught.value.category == "unauthorized"
    assert "InvalidClientTokenId" in caught.value.message
    assert secret not in str(caught.value)


@pytest.mark.slow
def test_keys_without_ecr_permission_are_forbidden(moto_ecr):
    key_id, secret = moto_ecr.create_iam_keys(allow_ecr=False)
    moto_ecr.set_auth(enforced=True)
    try:
        with pytest.raises(RegistryError) as caught:
            mint_ecr_token(key_id, secret, "us-east-1")
    finally:
        moto_ecr.set_auth(enforced=False)
    assert caught.value.category == "forbidden"
    assert secret not in str(caught.value)


@pytest.mark.slow
def test_nothing_listening_is_a_connect_failure(moto_ecr, closed_port, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", f"http://127.0.0.1:{closed_port}")
    with pytest.raises(RegistryError) as caught:
        mint_ecr_token(KEY_ID, SECRET, "us-east-1")
    assert caught.value.category == "connect"


@pytest.mark.slow
def test_silent_endpoint_is_a_timeout(moto_ecr, monkeypatch):
    with socket.socket() as listener:  # accepts connections (backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", f"http://127.0.0.1:{listener.getsockname()[1]}")
        monkeypatch.setattr(ecr, "READ_TIMEOUT", 1)
        with pytest.raises(RegistryError) as caught:
            mint_ecr_token(KEY_ID, SECRET, "us-east-1")
    assert caught.value.category == "timeout"


@pytest.fixture
def ecr_stub(monkeypatch) -> Iterator[dict]:
    """A loopback endpoint answering like the ECR API with a chosen status and JSON error.

    moto cannot be made to fail with 5xx or throttling, so this stub stands in for those answers.
    """
    answer = {"status": 500, "body": {"__type": "ServerException", "message": "boom"}}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            data = json.dumps(answer["body"]).encode()
            self.send_response(answer["status"])
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    yield answer
    server.shutdown()
    server.server_close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("status", "error_type", "category"),
    [
        (500, "ServerException", "upstream_error"),
        (400, "ThrottlingException", "rate_limited"),
        (400, "UnrecognizedClientException", "unauthorized"),
        (400, "InvalidSignatureException", "unauthorized"),
        (400, "AccessDeniedException", "forbidden"),
    ],
)
def test_api_errors_map_to_categories(ecr_stub, status, error_type, category):
    ecr_stub.update(status=status, body={"__type": error_type, "message": "upstream text " + SECRET[:8]})
    with pytest.raises(RegistryError) as caught:
        mint_ecr_token(KEY_ID, SECRET, "us-east-1")
    assert caught.value.category == category
    assert error_type in caught.value.message
    assert "upstream text" not in caught.value.message


@pytest.mark.slow
def test_unreadable_token_is_an_invalid_response(ecr_stub):
    expires = datetime.now(UTC).timestamp() + 3600
    ecr_stub.update(
        status=200,
        body={"authorizationData": [{"authorizationToken": "not base64!", "expiresAt": expires}]},
    )
    with pytest.raises(RegistryError) as caught:
        mint_ecr_token(KEY_ID, SECRET, "us-east-1")
    assert caught.value.category == "invalid_response"


@pytest.mark.slow
def test_twelve_hour_token_keeps_its_expiry(ecr_stub):
    expires = datetime.now(UTC) + timedelta(hours=12)
    token = base64.b64encode(b"AWS:real-looking-password").decode()
    ecr_stub.update(
        status=200,
        body={"authorizationData": [{"authorizationToken": token, "expiresAt": expires.timestamp()}]},
    )
    minted = mint_ecr_token(KEY_ID, SECRET, "us-east-1")
    assert minted.password == "real-looking-password"
    assert abs((minted.expires_at - expires).total_seconds()) < 2
