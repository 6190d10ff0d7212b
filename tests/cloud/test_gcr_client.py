"""GCR/GAR client: endpoints, service-account key validation, and a real google-auth token exchange."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from portal.outbound.errors import RegistryError
from registries.clients.gcr import (
    GcrInputError,
    mint_gcr_token,
    parse_google_endpoint,
    parse_service_account_key,
)
from tests.realparts.cloud import GOOGLE_TOKEN_AUDIENCE, canary

# --- endpoints -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "endpoint", "host", "location", "prefix"),
    [
        ("gcr", "gcr.io", "gcr.io", None, ""),
        ("gcr", "https://eu.gcr.io/", "eu.gcr.io", None, ""),
        ("gcr", "us.gcr.io/my-project", "us.gcr.io", None, "my-project"),
        ("gcr", "asia.gcr.io", "asia.gcr.io", None, ""),
        ("gar", "us-central1-docker.pkg.dev", "us-central1-docker.pkg.dev", "us-central1", ""),
        ("gar", "europe-docker.pkg.dev/proj/repo", "europe-docker.pkg.dev", "europe", "proj/repo"),
        (
            "gar",
            "northamerica-northeast1-docker.pkg.dev",
            "northamerica-northeast1-docker.pkg.dev",
            "northamerica-northeast1",
            "",
        ),
    ],
)
def test_google_endpoints_are_accepted(provider, endpoint, host, location, prefix):
    parsed = parse_google_endpoint(provider, endpoint)
    assert (parsed.host, parsed.location, parsed.path_prefix) == (host, location, prefix)


@pytest.mark.parametrize(
    ("provider", "endpoint"),
    [
        ("gcr", "evil.gcr.io"),
        ("gcr", "gcr.io.evil.com"),
        ("gcr", "us-central1-docker.pkg.dev"),
        ("gar", "gcr.io"),
        ("gar", "docker.pkg.dev"),
        ("gar", "us-central1-docker.pkg.dev.evil.com"),
        ("gar", "us-central1;rm -rf-docker.pkg.dev"),
        ("gar", "us-central1-docker.pkg.dev/Proj/../x"),
        ("gcr", ""),
    ],
)
def test_bad_google_endpoints_are_refused(provider, endpoint):
    with pytest.raises(GcrInputError) as caught:
        parse_google_endpoint(provider, endpoint)
    assert caught.value.field == "endpoint"


# --- service-account key validation ----------------------------------------------------------


def test_a_generated_key_is_accepted(service_account_key):
    key = service_account_key()
    assert parse_service_account_key(key.text) == key.info
    assert parse_service_account_key(key.text.encode()) == key.info


def _mutated(info: dict, **changes) -> str:
    data = dict(info)
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return json.dumps(data)


SECRET = canary()
BAD_PEM = f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n"
EC_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgevZzL1gdAFr88hb2\n"
    "OF/2NxApJCzGCEDdfSp6VQO30hyhRANCAAQRWz+jn65BtOMvdyHKcvjBeBSDZH2r\n"
    "1RTwjmYSi9R/zpBnuQ4EiMnCqfMPWiZqB4QdbAd0E7oH50VpuZ1P087G\n"
    "-----END PRIVATE KEY-----\n"
)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"private_key": None}, "missing_field"),
        ({"client_email": None}, "missing_field"),
        ({"token_uri": None}, "missing_field"),
        ({"client_email": ""}, "missing_field"),
        ({"client_email": SECRET}, "invalid_client_email"),
        ({"type": "authorized_user"}, "wrong_type"),
        ({"type": None}, "wrong_type"),
        ({"private_key": BAD_PEM}, "invalid_private_key"),
        ({"private_key": SECRET}, "invalid_private_key"),
        ({"private_key": EC_PEM}, "invalid_private_key"),
        ({"token_uri": f"file:///etc/{SECRET}"}, "invalid_token_uri"),
        ({"token_uri": f"https://user:{SECRET}@oauth2.googleapis.com/token"}, "invalid_token_uri"),
        ({"token_uri": "http://169.254.169.254/token"}, "blocked_token_uri"),
        ({"token_uri": "http://2852039166/token"}, "blocked_token_uri"),
        ({"universe_domain": "evil.example"}, "unsupported_universe"),
    ],
)
def test_malformed_key_is_refused_without_echoing_values(service_account_key, change, reason):
    key = service_account_key()
    with pytest.raises(GcrInputError) as caught:
        parse_service_account_key(_mutated(key.info, **change))
    error = caught.value
    assert (error.code, error.field, error.reason) == ("invalid_service_account_json", "service_account_key", reason)
    assert SECRET not in str(error)
    assert key.secret_marker not in str(error)
    assert key.client_email not in str(error)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (f'{{"type": "service_account", "private_key": "{SECRET}"', "not_json"),
        (SECRET, "not_json"),
        ("", "not_json"),
        (b"\xff\xfe" + SECRET.encode(), "not_utf8"),
        (f'["{SECRET}"]', "not_object"),
        (json.dumps({"type": "service_account", "private_key": SECRET, "pad": "x" * (5 * 1024 * 1024)}), "too_large"),
    ],
    # Names of their own: the texts hold a random canary, and pytest-xdist's workers must
    # collect the same test ids.
    ids=["truncated", "bare-canary", "empty", "not-utf8", "array", "over-5-mib"],
)
def test_unparseable_key_is_refused_without_echoing_values(text, reason):
    with pytest.raises(GcrInputError) as caught:
        parse_service_account_key(text)
    assert caught.value.reason == reason
    assert SECRET not in str(caught.value)


def test_plain_http_token_uri_is_refused_where_settings_forbid_it(service_account_key, settings):
    settings.REGISTRIES_ALLOW_HTTP = False
    key = service_account_key()
    with pytest.raises(GcrInputError) as caught:
        parse_service_account_key(key.text)
    assert caught.value.reason == "invalid_token_uri"


# --- the real google-auth exchange against the loopback token endpoint -----------------------


@pytest.mark.slow
def test_token_is_what_the_endpoint_issued_after_verifying_the_signature(service_account_key, google_token_endpoint):
    key = service_account_key()
    token = mint_gcr_token(parse_service_account_key(key.text))

    assert token.username == "oauth2accesstoken"
    assert google_token_endpoint.issued == [token.password]
    [request] = google_token_endpoint.requests
    assert request.status == 200 and request.path == "/token"
    assert request.claims["iss"] == key.client_email
    assert request.claims["aud"] == GOOGLE_TOKEN_AUDIENCE
    assert request.claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    now = datetime.now(UTC)
    assert now + timedelta(minutes=55) < token.expires_at <= now + timedelta(hours=1, seconds=5)
    assert token.password not in repr(token)


@pytest.mark.slow
def test_key_the_endpoint_does_not_know_is_unauthorized(service_account_key, google_token_endpoint):
    key = service_account_key()
    impostor = service_account_key(register=False, client_email=key.client_email)
    with pytest.raises(RegistryError) as caught:
        mint_gcr_token(impostor.info)
    assert caught.value.category == "unauthorized"
    [request] = google_token_endpoint.requests
    assert request.claims is None and request.status == 400
    assert impostor.secret_marker not in str(caught.value)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("status", "error", "category", "attempts"),
    [
        (401, "invalid_grant", "unauthorized", 1),
        (400, "invalid_client", "unauthorized", 1),
        (403, "access_denied", "forbidden", 1),
        (500, "internal_failure", "upstream_error", 3),  # google-auth retries 5xx itself
    ],
)
def test_endpoint_failures_map_to_categories(
    service_account_key, google_token_endpoint, status, error, category, attempts
):
    key = service_account_key()
    google_token_endpoint.fail(status, error)
    with pytest.raises(RegistryError) as caught:
        mint_gcr_token(key.info)
    assert caught.value.category == category
    assert caught.value.status_code == status
    assert "told to fail" not in caught.value.message  # the upstream's description is not repeated
    assert len(google_token_endpoint.requests) == attempts


@pytest.mark.slow
@pytest.mark.parametrize("token_uri", ["http://169.254.169.254/token", "http://2852039166/token"])
def test_metadata_token_uri_is_refused_by_the_guard_before_connecting(service_account_key, token_uri):
    key = service_account_key(token_uri=token_uri)
    started = time.monotonic()
    with pytest.raises(RegistryError) as caught:
        mint_gcr_token(key.info)
    assert caught.value.category == "blocked"
    assert time.monotonic() - started < 2  # refused, not a connect attempt timing out


@pytest.mark.slow
def test_loopback_token_uri_is_refused_unless_settings_allow_it(service_account_key, google_token_endpoint, settings):
    settings.REGISTRIES_ALLOWED_PRIVATE_NETWORKS = []
    key = service_account_key()
    with pytest.raises(RegistryError) as caught:
        mint_gcr_token(key.info)
    assert caught.value.category == "blocked"
    assert google_token_endpoint.requests == []


@pytest.mark.slow
def test_nothing_listening_at_token_uri_is_a_connect_failure(service_account_key, closed_port):
    key = service_account_key(token_uri=f"http://127.0.0.1:{closed_port}/token")
    with pytest.raises(RegistryError) as caught:
        mint_gcr_token(key.info)
    assert caught.value.category == "connect"
