"""The OCI Distribution client against real Distribution 2.8 (basic and token auth) and,
for misbehaviour Distribution cannot show (500, 429, redirects, foreign realms, hangs),
against the scriptable loopback server.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json

import httpx
import pytest

from portal.ocispec import ACCEPT_MANIFESTS, OCI_MANIFEST
from portal.outbound.addresses import GuardPolicy
from portal.outbound.errors import RegistryError
from registries.clients.oci import (
    Endpoint,
    RateLimit,
    check_image,
    check_image_sync,
    check_realm,
    parse_endpoint,
    parse_image,
    parse_www_authenticate,
    verify_credentials_sync,
)
from tests.realparts.loopback import Reply

LOOPBACK = GuardPolicy((ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")), allow_http=True)
ONLY_127_0_0_1 = GuardPolicy((ipaddress.ip_network("127.0.0.1/32"),), allow_http=True)
HTTPS_ONLY = GuardPolicy(LOOPBACK.allowed_private_networks, allow_http=False)

slow = pytest.mark.slow


def failure(result) -> tuple[str | None, str | None]:
    """The failed step and the category, for compact asserts."""
    failed = [s.name for s in result.steps if s.outcome == "failed"]
    assert result.ok is False
    return (failed[0] if failed else None), result.error_category


# --- WWW-Authenticate ----------------------------------------------------------------------


def test_bearer_challenge_with_commas_inside_quotes():
    [challenge] = parse_www_authenticate(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/ubuntu:pull,push"'
    )
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://auth.docker.io/token"
    assert challenge.service == "registry.docker.io"
    assert challenge.scope == "repository:library/ubuntu:pull,push"


def test_several_challenges_in_one_value_and_across_values():
    challenges = parse_www_authenticate(['Basic realm="Registry Realm", BEARER Realm="https://a/t",Service=x', "Foo"])
    assert [c.scheme for c in challenges] == ["basic", "bearer", "foo"]
    assert challenges[0].realm == "Registry Realm"
    assert challenges[1].params == {"realm": "https://a/t", "service": "x"}


def test_unquoted_values_escaped_quotes_and_spaces_around_equals():
    [challenge] = parse_www_authenticate('Bearer realm = https://r.test/token , service=a\\b, error="say \\"no\\""')
    assert challenge.realm == "https://r.test/token"
    assert challenge.service == "a\\b"
    assert challenge.params["error"] == 'say "no"'


# --- endpoints, images, realms -----------------------------------------------------------


def test_endpoint_forms():
    assert parse_endpoint("registry.example.com", policy=HTTPS_ONLY) == Endpoint("https", "registry.example.com")
    ep = parse_endpoint("Registry.Example.com:5000/team/images/", policy=HTTPS_ONLY)
    assert (ep.scheme, ep.host, ep.port, ep.path_prefix) == ("https", "registry.example.com", 5000, "team/images")
    assert parse_endpoint("http://127.0.0.1:5000", policy=LOOPBACK).base_url == "http://127.0.0.1:5000"
    assert parse_endpoint("index.docker.io", policy=HTTPS_ONLY) == Endpoint(
        "https", "registry-1.docker.io", docker_hub=True
    )
    assert parse_endpoint("https://gооgle.com", policy=HTTPS_ONLY).host == "xn--ggle-55da.com"  # Cyrillic о


@pytest.mark.parametrize(
    ("endpoint", "category"),
    [
        ("http://registry.example.com", "insecure_not_allowed"),
        ("ftp://registry.example.com", "blocked"),
        ("https://user:pw@registry.example.com", "blocked"),
        ("https://registry.example.com/#x", "blocked"),
        ("https://registry.example.com/?x=1", "blocked"),
        ("registry.example.com\\@evil.test", "blocked"),
    ],
)
def test_endpoints_that_are_refused(endpoint, category):
    with pytest.raises(RegistryError) as error:
        parse_endpoint(endpoint, policy=HTTPS_ONLY)
    assert error.value.category == category


def test_image_names_get_docker_hubs_library_and_the_endpoint_prefix():
    hub = parse_endpoint("docker.io", policy=HTTPS_ONLY)
    assert parse_image("ubuntu", hub) == ("library/ubuntu", "latest")
    assert parse_image("docker.io/acme/api:2", hub) == ("acme/api", "2")
    prefixed = parse_endpoint("art.example.com/docker-local", policy=HTTPS_ONLY)
    assert parse_image("acme/api:1.0.0", prefixed) == ("docker-local/acme/api", "1.0.0")
    assert parse_image("docker-local/acme/api:1.0.0", prefixed) == ("docker-local/acme/api", "1.0.0")
    local = parse_endpoint("http://127.0.0.1:5000", policy=LOOPBACK)
    digest = "sha256:" + "a" * 64
    assert parse_image(f"127.0.0.1:5000/acme/api:1@{digest}", local) == ("acme/api", digest)
    for bad in ("Acme/API", "acme/api:", "acme/api@sha256", "../etc:1"):
        with pytest.raises(ValueError):
            parse_image(bad, local)


def test_realms_that_may_receive_credentials():
    registry = parse_endpoint("registry.vendor.test", policy=HTTPS_ONLY)
    for realm in (
        "https://registry.vendor.test:8443/token",
        "https://auth.docker.io/token",
        "https://ghcr.io/token",
        "https://quay.io/v2/auth",
        "https://us-docker.pkg.dev/v2/token",
        "https://eu.gcr.io/v2/token",
        "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/",
    ):
        assert check_realm(realm, endpoint=registry, policy=HTTPS_ONLY)
    assert check_realm(
        "https://auth.vendor.test/t", endpoint=registry, allowed_realm_hosts=["auth.vendor.test"], policy=HTTPS_ONLY
    )


@pytest.mark.parametrize(
    "realm",
    [
        "https://attacker.test/token",
        "https://abc123.execute-api.us-east-1.amazonaws.com/token",
        "https://user:pw@registry.vendor.test/token",
        "http://registry.vendor.test/token",  # http realm for an https registry
        "https://registry.vendor.test.attacker.test/token",
    ],
)
def test_realms_that_may_not_receive_credentials(realm):
    registry = parse_endpoint("registry.vendor.test", policy=HTTPS_ONLY)
    with pytest.raises(RegistryError) as error:
        check_realm(realm, endpoint=registry, policy=LOOPBACK)
    assert error.value.category == "realm_not_allowed"


# --- happy paths against Distribution ------------------------------------------------------


@slow
@pytest.mark.parametrize("registry_fixture", ["basic_registry", "token_registry"])
@pytest.mark.parametrize("name", ["api", "multi", "v2s2"])
def test_check_image_finds_what_skopeo_pushed(request, registry_fixture, name):
    registry = request.getfixturevalue(registry_fixture)
    pushed = registry.images[name]
    result = check_image_sync(
        registry.endpoint, pushed.reference, username=registry.username, password=registry.password, policy=LOOPBACK
    )
    assert result.ok, result.error_message
    assert [(s.name, s.outcome) for s in result.steps] == [
        ("ping", "ok"),
        ("auth", "ok"),
        ("manifest", "ok"),
        ("blob", "ok"),
    ]
    assert all(s.latency_ms is not None for s in result.steps)
    assert result.auth_scheme == ("basic" if registry.mode == "htpasswd" else "bearer")
    assert result.digest == pushed.digest
    assert result.media_type == pushed.media_type
    assert result.platforms == list(pushed.platforms)
    assert result.blob_digest in pushed.layer_digests
    assert result.rate_limit is None


@slow
def test_media_types_are_the_three_kinds_pushed(basic_registry):
    assert {n: basic_registry.images[n].media_type for n in ("api", "multi", "v2s2")} == {
        "api": "application/vnd.oci.image.manifest.v1+json",
        "multi": "application/vnd.oci.image.index.v1+json",
        "v2s2": "application/vnd.docker.distribution.manifest.v2+json",
    }
    assert basic_registry.images["multi"].platforms == ("linux/amd64", "linux/arm64")


@slow
def test_check_by_digest_and_without_auth(open_registry):
    pushed = open_registry.images["api"]
    result = check_image_sync(open_registry.endpoint, f"{pushed.repository}@{pushed.digest}", policy=LOOPBACK)
    assert result.ok, result.error_message
    assert result.auth_scheme == "none"
    assert result.digest == pushed.digest


@slow
def test_the_token_request_names_the_service_and_the_pull_scope(token_registry):
    token_registry.issuer.requests.clear()
    pushed = token_registry.images["api"]
    check_image_sync(
        token_registry.endpoint,
        pushed.reference,
        username=token_registry.username,
        password=token_registry.password,
        policy=LOOPBACK,
    )
    [issued] = token_registry.issuer.requests
    assert issued.method == "GET" and "service=test-registry" in issued.path
    assert issued.scopes == ["repository:acme/api:pull"]
    assert issued.username == token_registry.username and issued.granted


# --- failure categories against Distribution -----------------------------------------------


@slow
@pytest.mark.parametrize("registry_fixture", ["basic_registry", "token_registry"])
def test_a_wrong_password_is_unauthorized_and_never_echoed(request, registry_fixture):
    registry = request.getfixturevalue(registry_fixture)
    result = check_image_sync(
        registry.endpoint, "acme/api:1.0.0", username=registry.username, password="wrong-Pa55word", policy=LOOPBACK
    )
    assert failure(result) == ("auth", "unauthorized")
    assert "wrong-Pa55word" not in json.dumps(result.as_dict())


@slow
def test_missing_credentials_are_unauthorized(basic_registry):
    result = check_image_sync(basic_registry.endpoint, "acme/api:1.0.0", policy=LOOPBACK)
    assert failure(result) == ("auth", "unauthorized")


@slow
@pytest.mark.parametrize("registry_fixture", ["basic_registry", "token_registry"])
def test_an_unknown_repository_and_an_unknown_tag_are_told_apart(request, registry_fixture):
    registry = request.getfixturevalue(registry_fixture)
    creds = {"username": registry.username, "password": registry.password, "policy": LOOPBACK}
    assert failure(check_image_sync(registry.endpoint, "acme/nope:1.0.0", **creds)) == (
        "manifest",
        "repository_unknown",
    )
    assert failure(check_image_sync(registry.endpoint, "acme/api:9.9.9", **creds)) == ("manifest", "manifest_unknown")
    by_digest = check_image_sync(registry.endpoint, "acme/api@sha256:" + "0" * 64, **creds)
    assert failure(by_digest) == ("manifest", "manifest_unknown")


@slow
def test_https_to_the_plain_http_registry_is_a_tls_error(basic_registry):
    result = check_image_sync(f"https://{basic_registry.netloc}", "acme/api:1.0.0", policy=LOOPBACK)
    assert failure(result) == ("ping", "tls")


def test_a_closed_port_is_a_connect_error(closed_port):
    result = check_image_sync(f"http://127.0.0.1:{closed_port}", "acme/api:1.0.0", policy=LOOPBACK)
    assert failure(result) == ("ping", "connect")


def test_a_name_that_does_not_resolve_is_a_dns_error():
    result = check_image_sync("registry.vendor.invalid", "acme/api:1.0.0", policy=LOOPBACK)
    assert failure(result) == ("ping", "dns")


# --- failure categories Distribution cannot be made to show ----------------------------------


def test_a_server_error_is_upstream_error_without_its_body(loopback_server):
    server = loopback_server().on("/v2/", Reply.error(500))
    result = check_image_sync(server.url, "acme/api:1.0.0", policy=LOOPBACK)
    assert failure(result) == ("ping", "upstream_error")
    assert "SECRET-BODY" not in json.dumps(result.as_dict())


def test_too_many_requests_is_rate_limited_with_retry_after(loopback_server):
    server = loopback_server().on("/v2/", Reply.json({})).on("/v2/acme/api/manifests/1.0.0", Reply.rate_limited("30"))
    result = check_image_sync(server.url, "acme/api:1.0.0", policy=LOOPBACK)
    assert failure(result) == ("manifest", "rate_limited")
    assert result.retry_after == 30
    assert "SECRET-BODY" not in json.dumps(result.as_dict())


def test_a_hanging_registry_times_out(loopback_server):
    server = loopback_server().on("*", Reply.hanging())
    result = check_image_sync(server.url, "acme/api:1.0.0", policy=LOOPBACK, timeout=httpx.Timeout(0.5, connect=5))
    assert failure(result) == ("ping", "timeout")


def test_the_whole_test_has_a_total_time_limit(loopback_server):
    server = loopback_server().on("*", Reply.hanging())
    result = check_image_sync(server.url, "acme/api:1.0.0", policy=LOOPBACK, timeout=30, total_timeout=0.5)
    assert failure(result) == ("ping", "timeout")


def test_a_server_that_is_not_a_registry_is_invalid_response(loopback_server):
    server = loopback_server().on("/", Reply(200, body=b"<html>hello SECRET-BODY</html>"))
    result = check_image_sync(server.url, "acme/api:1.0.0", policy=LOOPBACK)
    assert failure(result) == ("ping", "invalid_response")
    assert "SECRET-BODY" not in json.dumps(result.as_dict())


# JSON nested deeper than Python's json parses: it raises RecursionError, which is no ValueError.
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000


def test_a_token_service_answering_json_nested_too_deeply_is_invalid_response(loopback_server):
    server = loopback_server()
    server.on("/v2/", Reply.challenge(f"{server.url}/token"))
    server.on("/token", Reply(200, {"Content-Type": "application/json"}, b'{"token": ' + DEEP_JSON + b"}"))
    with pytest.raises(RegistryError) as error:
        verify_credentials_sync(server.url, username="u", password="p", policy=LOOPBACK)
    assert error.value.category == "invalid_response"


def test_an_error_body_nested_too_deeply_counts_as_one_without_error_codes(loopback_server):
    server = loopback_server()
    server.on("/v2/", Reply(403, {"Content-Type": "application/json"}, b'{"errors": ' + DEEP_JSON + b"}"))
    with pytest.raises(RegistryError) as error:
        verify_credentials_sync(server.url, username="u", password="p", policy=LOOPBACK)
    assert error.value.category == "forbidden"


def test_a_manifest_nested_too_deeply_is_invalid_response(loopback_server):
    server = loopback_server()
    server.on("/v2/", Reply.json({}))
    server.on("/v2/acme/api/manifests/1.0.0", Reply(200, {"Content-Type": OCI_MANIFEST}, DEEP_JSON))
    result = check_image_sync(server.url, "acme/api:1.0.0", policy=LOOPBACK)
    assert failure(result) == ("manifest", "invalid_response")


def serve_image(registry, *, manifest_from=None, manifest_digest: str | None = None, headers=None) -> str:
    """Make a loopback server answer like a small basic-auth registry with one image; returns its digest."""
    layer = b"layer bytes"
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": layer_digest, "size": 11},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": 11}
            ],
        }
    ).encode()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    reply = Reply(
        200,
        {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": manifest_digest or digest, **(headers or {})},
        manifest,
    )
    registry.on("/v2/", Reply.challenge("registry", scheme="Basic"), Reply.json({}))
    if manifest_from is None:
        registry.on("/v2/acme/api/manifests/1.0.0", reply)
    else:
        registry.on("/v2/acme/api/manifests/1.0.0", Reply.redirect(f"{manifest_from.url}/manifest", 307))
        manifest_from.on("/manifest", reply)
    registry.on(f"/v2/acme/api/blobs/{layer_digest}", Reply(200, body=layer))
    return digest


def test_the_manifest_request_sends_the_full_accept_list_and_reads_docker_hub_limits(loopback_server):
    registry = loopback_server()
    digest = serve_image(registry, headers={"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "76;w=21600"})
    result = check_image_sync(registry.url, "acme/api:1.0.0", username="u", password="p", policy=LOOPBACK)
    assert result.ok, result.error_message
    assert result.digest == digest
    assert result.rate_limit == RateLimit(limit=100, remaining=76, window_seconds=21600)
    [manifest_request] = [r for r in registry.requests if "/manifests/" in r.path]
    assert manifest_request.headers["accept"] == ACCEPT_MANIFESTS
    assert all(
        t in ACCEPT_MANIFESTS
        for t in (
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
    )


def test_a_manifest_that_does_not_match_its_digest_is_refused(loopback_server):
    registry = loopback_server()
    serve_image(registry, manifest_digest="sha256:" + "1" * 64)
    result = check_image_sync(registry.url, "acme/api:1.0.0", username="u", password="p", policy=LOOPBACK)
    assert failure(result) == ("manifest", "invalid_response")


def test_credentials_are_not_sent_along_a_redirect_to_another_host(loopback_server):
    registry, storage = loopback_server(), loopback_server()
    serve_image(registry, manifest_from=storage)
    result = check_image_sync(registry.url, "acme/api:1.0.0", username="u", password="s3cret", policy=LOOPBACK)
    assert result.ok, result.error_message
    [to_registry] = [r for r in registry.requests if "/manifests/" in r.path]
    assert to_registry.headers["authorization"].startswith("Basic ")
    assert "authorization" not in storage.requests[0].headers


# --- SSRF through the client -----------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://169.254.169.254",
        "http://2852039166",
        "http://0xa9fea9fe",
        "http://[::ffff:169.254.169.254]",
        "http://[fd00:ec2::254]",
        "http://100.100.100.200",
    ],
)
def test_metadata_endpoints_are_blocked(endpoint):
    result = check_image_sync(endpoint, "acme/api:1.0.0", policy=LOOPBACK)
    assert failure(result) == ("ping", "blocked")


def test_a_registry_name_resolving_to_the_metadata_address_is_blocked():
    def resolver(host: str, port: int) -> list[str]:
        return ["169.254.169.254"] if host == "registry.vendor.test" else []

    result = check_image_sync("registry.vendor.test", "acme/api:1.0.0", policy=LOOPBACK, resolver=resolver)
    assert failure(result) == ("ping", "blocked")


def test_a_redirect_to_the_metadata_address_is_blocked(loopback_server):
    server = loopback_server().on("/v2/", Reply.redirect("http://169.254.169.254/latest/meta-data/"))
    result = check_image_sync(server.url, "acme/api:1.0.0", policy=LOOPBACK)
    assert failure(result) == ("ping", "blocked")


def test_a_redirect_to_an_internal_listener_is_blocked_and_never_reaches_it(loopback_server):
    internal = loopback_server("127.0.0.2").on("*", Reply.json({}))
    server = loopback_server().on("/v2/", Reply.redirect(f"{internal.url}/v2/"))
    result = check_image_sync(server.url, "acme/api:1.0.0", policy=ONLY_127_0_0_1)
    assert failure(result) == ("ping", "blocked")
    assert internal.requests == []


def test_an_internal_endpoint_is_blocked_without_a_connection(loopback_server):
    internal = loopback_server("127.0.0.2").on("*", Reply.json({}))
    result = check_image_sync(internal.url, "acme/api:1.0.0", policy=ONLY_127_0_0_1)
    assert failure(result) == ("ping", "blocked")
    assert internal.requests == []


def test_a_token_realm_on_a_foreign_host_gets_no_credentials(loopback_server):
    realm = loopback_server("127.0.0.2").on("*", Reply.json({"token": "t"}))
    registry = loopback_server().on("/v2/", Reply.challenge(f"{realm.url}/token"))
    result = check_image_sync(registry.url, "acme/api:1.0.0", username="u", password="s3cret", policy=LOOPBACK)
    assert failure(result) == ("auth", "realm_not_allowed")
    assert realm.requests == []


def test_a_declared_realm_host_does_get_the_credentials(loopback_server):
    realm = loopback_server("127.0.0.2").on("/token", Reply.json({"access_token": "tok"}))
    registry = loopback_server().on("/v2/", Reply.challenge(f"{realm.url}/token", service="reg"))
    registry.on("/v2/acme/api/manifests/1.0.0", Reply.error(503))
    result = check_image_sync(
        registry.url,
        "acme/api:1.0.0",
        username="u",
        password="s3cret",
        allowed_realm_hosts=["127.0.0.2"],
        policy=LOOPBACK,
    )
    assert failure(result) == ("manifest", "upstream_error")
    [token_request] = realm.requests
    assert token_request.headers["authorization"] == "Basic dTpzM2NyZXQ="
    assert token_request.path == "/token?service=reg&scope=repository%3Aacme%2Fapi%3Apull"
    [manifest_request] = [r for r in registry.requests if "/manifests/" in r.path]
    assert manifest_request.headers["authorization"] == "Bearer tok"


def test_a_token_service_redirect_is_not_followed(loopback_server):
    elsewhere = loopback_server().on("*", Reply.json({"token": "t"}))
    registry = loopback_server()
    registry.on("/v2/", Reply.challenge(f"{registry.url}/token")).on("/token", Reply.redirect(f"{elsewhere.url}/t"))
    result = check_image_sync(registry.url, "acme/api:1.0.0", username="u", password="s3cret", policy=LOOPBACK)
    assert failure(result) == ("auth", "invalid_response")
    assert elsewhere.requests == []


def test_the_metadata_realm_is_refused_even_on_a_declared_host(loopback_server):
    registry = loopback_server().on("/v2/", Reply.challenge("http://169.254.169.254/token"))
    result = check_image_sync(
        registry.url,
        "acme/api:1.0.0",
        username="u",
        password="p",
        allowed_realm_hosts=["169.254.169.254"],
        policy=LOOPBACK,
    )
    assert failure(result) == ("auth", "blocked")


@pytest.mark.anyio
async def test_check_image_is_async_for_the_async_callers(loopback_server):
    server = loopback_server().on("/v2/", Reply.error(502))
    result = await check_image(server.url, "acme/api:1.0.0", policy=LOOPBACK)
    assert failure(result) == ("ping", "upstream_error")


def test_the_default_policy_comes_from_settings(settings, loopback_server):
    server = loopback_server().on("*", Reply.json({}))
    settings.REGISTRIES_ALLOW_HTTP = False
    result = check_image_sync(server.url, "acme/api:1.0.0")
    assert failure(result) == ("ping", "insecure_not_allowed")
    assert server.requests == []
