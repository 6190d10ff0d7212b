"""Where the portal may connect, through the product paths (save via the API, test via the worker's
service): SSRF refusals, redirects, token realms and service-account token URIs (SECURITY-TESTS S1–S5).

The clients' own unit tests (test_netguard.py, test_oci_client.py) cover the guard in detail; here
the question is whether saving and testing a registry go through it. A "forbidden" listener is a
loopback server outside REGISTRIES_ALLOWED_PRIVATE_NETWORKS; it must record no request at all.
"""

from __future__ import annotations

import base64
import ipaddress

import pytest

from registries import services
from registries.models import CheckStatus, ExternalRegistry, RegistryTest
from tests.realparts.cloud import canary
from tests.realparts.loopback import Reply

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

URL = "/api/v1/external-registries/"


def save(client, endpoint: str, *, skip: bool, **extra):
    body = {
        "provider": "other",
        "endpoint": endpoint,
        "username": "acme",
        "password": canary(),
        "skip_validation": skip,
    }
    return client.post(URL, {**body, **extra}, format="json")


def refused(response, field: str = "endpoint", *words: str) -> str:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid" and field in body["errors"], body
    message = " ".join(body["errors"][field])
    for word in words:
        assert word in message, message
    return message


def run_test(registry_id: int, image: str = "acme/api:1.0.0") -> RegistryTest:
    """The worker's half of a connection test, in process."""
    test = RegistryTest.objects.create(registry_id=registry_id, image=image, requested_by="test")
    return services.registry_test_run(test.pk)


@pytest.fixture
def only_127_0_0_1(settings):
    """Loopback parts on 127.0.0.1 are reachable; 127.0.0.2 is as forbidden as any private address."""
    settings.REGISTRIES_ALLOWED_PRIVATE_NETWORKS = [ipaddress.ip_network("127.0.0.1/32")]


# --- S1/S2: addresses refused on save, whatever skip_validation says ---------------------------

METADATA_AND_LINK_LOCAL = [
    "169.254.169.254",
    "http://169.254.169.254",
    "https://169.254.169.254/latest",
    "2852039166",
    "http://2852039166",
    "0xa9fea9fe",
    "0251.0376.0251.0376",
    "169.254.43518",
    "[::ffff:169.254.169.254]",
    "[::ffff:a9fe:a9fe]",
    "[64:ff9b::a9fe:a9fe]",
    # every IPv6 form that embeds an IPv4 address (W3): compatible, local-use NAT64, SIIT, 6to4, Teredo
    "[::a9fe:a9fe]",
    "http://[::a9fe:a9fe]",
    "[::169.254.169.254]:5000",
    "[64:ff9b:1::a9fe:a9fe]",
    "http://[64:ff9b:1::a9fe:a9fe]",
    "[::ffff:0:a9fe:a9fe]",
    "[2002:a9fe:a9fe::1]",
    "[2001:0:808:808::5601:5601]",
    "[fd00:ec2::254]",
    "169.254.170.2",
    "100.100.100.200",
    "169.254.1.1:5000",
    "0.0.0.0:5000",
    "[::]:5000",
]


@pytest.mark.parametrize("skip", [False, True], ids=["validated", "skip_validation"])
def test_metadata_and_link_local_endpoints_are_refused_and_nothing_is_stored(admin_api, skip):
    for endpoint in METADATA_AND_LINK_LOCAL:
        message = refused(save(admin_api, endpoint, skip=skip))
        # httpx already rejects the octal form as a host name
        assert "not allowed" in message or "not a valid host name" in message, (endpoint, message)
    assert not ExternalRegistry.objects.exists()


@pytest.mark.parametrize("skip", [False, True], ids=["validated", "skip_validation"])
def test_private_endpoints_are_refused_unless_settings_allow_them(admin_api, settings, skip):
    settings.REGISTRIES_ALLOWED_PRIVATE_NETWORKS = []
    for endpoint in ["10.0.0.5", "192.168.1.1:5000", "172.16.0.1", "100.64.0.1", "[::1]:5000", "127.0.0.1:5000"]:
        refused(save(admin_api, endpoint, skip=skip), "endpoint", "not allowed")
    assert not ExternalRegistry.objects.exists()
    settings.REGISTRIES_ALLOWED_PRIVATE_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]
    assert save(admin_api, "10.0.0.5", skip=True).status_code == 201


@pytest.mark.parametrize("skip", [False, True], ids=["validated", "skip_validation"])
def test_a_loopback_listener_outside_the_allowed_networks_is_never_contacted(
    admin_api, only_127_0_0_1, loopback_server, skip
):
    forbidden = loopback_server("127.0.0.2").on("/v2/", Reply.json({}))
    refused(save(admin_api, forbidden.url, skip=skip), "endpoint", "not allowed")
    assert not ExternalRegistry.objects.exists()
    assert forbidden.requests == []


@pytest.mark.parametrize("skip", [False, True], ids=["validated", "skip_validation"])
def test_the_metadata_address_written_as_ipv6_is_refused_with_a_field_error_naming_it(admin_api, skip):
    message = refused(save(admin_api, "http://[::a9fe:a9fe]", skip=skip))
    assert message == "::a9fe:a9fe is not allowed: it is a cloud metadata address (169.254.169.254 written as IPv6)."
    message = refused(save(admin_api, "[64:ff9b:1::a9fe:a9fe]:5000", skip=skip))
    assert "169.254.169.254" in message and "not allowed" in message
    assert not ExternalRegistry.objects.exists()


def test_an_endpoint_cannot_be_moved_to_the_metadata_address(admin_api):
    saved = save(admin_api, "registry.example.com", skip=True).json()
    response = admin_api.patch(
        f"{URL}{saved['id']}/",
        {"endpoint": "169.254.169.254", "password": canary(), "skip_validation": True},
        format="json",
    )
    refused(response, "endpoint", "not allowed")
    assert ExternalRegistry.objects.get().endpoint == "registry.example.com"


# --- S4: redirects are checked hop by hop --------------------------------------------------------


def test_a_redirect_to_the_metadata_address_is_blocked(admin_api, loopback_server):
    upstream = loopback_server().on("/v2/", Reply.redirect("http://169.254.169.254/latest/meta-data/"))
    refused(save(admin_api, upstream.url, skip=False), "endpoint", "blocked")
    assert not ExternalRegistry.objects.exists()

    saved = save(admin_api, upstream.url, skip=True).json()
    test = run_test(saved["id"])
    assert (test.status, test.category) == (CheckStatus.FAILED, "blocked")
    assert "metadata" in test.message
    assert test.result["steps"][0]["category"] == "blocked"


@pytest.mark.parametrize("where", ["ping", "manifest"])
def test_a_redirect_to_a_forbidden_listener_is_blocked_and_the_listener_hears_nothing(
    admin_api, only_127_0_0_1, loopback_server, where
):
    forbidden = loopback_server("127.0.0.2").on("*", Reply.json({}))
    upstream = loopback_server()
    target = f"http://127.0.0.2:{forbidden.port}/v2/"
    if where == "ping":
        upstream.on("/v2/", Reply.redirect(target))
    else:
        upstream.on("/v2/", Reply.json({})).on("/v2/acme/api/manifests/1.0.0", Reply.redirect(target, 307))
        upstream.on("/v2/acme/api/tags/list", Reply.json({}, 404))
    if where == "ping":
        refused(save(admin_api, upstream.url, skip=False), "endpoint", "blocked")
    saved = save(admin_api, upstream.url, skip=True).json()
    test = run_test(saved["id"])
    assert (test.status, test.category) == (CheckStatus.FAILED, "blocked"), test.message
    assert upstream.requests, "the upstream itself was asked"
    assert forbidden.requests == []


# --- S5: credentials go only to an allowed token realm --------------------------------------------


def test_credentials_never_go_to_a_foreign_realm(admin_api, loopback_server):
    realm = loopback_server("127.0.0.2").on("/token", Reply.json({"token": "t"}))
    upstream = loopback_server().on("/v2/", Reply.challenge(f"http://127.0.0.2:{realm.port}/token"))
    refused(save(admin_api, upstream.url, skip=False), "endpoint", "realm_not_allowed", "127.0.0.2")
    assert not ExternalRegistry.objects.exists()

    saved = save(admin_api, upstream.url, skip=True).json()
    test = run_test(saved["id"])
    assert (test.status, test.category) == (CheckStatus.FAILED, "realm_not_allowed")
    assert realm.requests == []


def test_a_realm_host_declared_on_the_registry_receives_the_credentials(admin_api, loopback_server):
    realm = loopback_server("127.0.0.2").on("/token", Reply.json({"token": "t"}))
    upstream = loopback_server().on("/v2/", Reply.challenge(f"http://127.0.0.2:{realm.port}/token"))
    password = canary()
    body = {"provider": "other", "endpoint": upstream.url, "username": "acme", "password": password}
    response = admin_api.post(URL, {**body, "realm_host": "127.0.0.2"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["realm_host"] == "127.0.0.2"
    [request] = realm.requests
    assert request.headers["authorization"] == "Basic " + base64.b64encode(f"acme:{password}".encode()).decode()


def test_a_declared_realm_is_still_behind_the_network_guard(admin_api, only_127_0_0_1, loopback_server):
    realm = loopback_server("127.0.0.2").on("/token", Reply.json({"token": "t"}))
    upstream = loopback_server().on("/v2/", Reply.challenge(f"http://127.0.0.2:{realm.port}/token"))
    response = save(admin_api, upstream.url, skip=False, realm_host="127.0.0.2")
    refused(response, "endpoint", "blocked")
    assert realm.requests == []


# --- the service-account key's token_uri ----------------------------------------------------------


@pytest.mark.parametrize("skip", [False, True], ids=["validated", "skip_validation"])
def test_a_service_account_key_aimed_at_the_metadata_address_is_refused(
    admin_api, service_account_key, google_token_endpoint, skip
):
    for token_uri in [
        "http://169.254.169.254/",
        "https://169.254.169.254/computeMetadata/v1/token",
        "http://2852039166/token",
        "http://[::ffff:169.254.169.254]/token",
        "http://[fd00:ec2::254]/token",
    ]:
        key = service_account_key(token_uri=token_uri)
        body = {"provider": "gcr", "endpoint": "gcr.io", "service_account_key": key.text, "skip_validation": skip}
        refused(admin_api.post(URL, body, format="json"), "service_account_key", '"token_uri"')
    assert not ExternalRegistry.objects.exists()
    assert google_token_endpoint.requests == []


@pytest.mark.parametrize("skip", [False, True], ids=["validated", "skip_validation"])
def test_a_token_uri_on_a_forbidden_listener_is_refused_without_a_request(
    admin_api, only_127_0_0_1, loopback_server, service_account_key, skip
):
    forbidden = loopback_server("127.0.0.2").on("*", Reply.json({"access_token": "t", "expires_in": 3600}))
    key = service_account_key(token_uri=f"http://127.0.0.2:{forbidden.port}/token")
    body = {"provider": "gcr", "endpoint": "gcr.io", "service_account_key": key.text, "skip_validation": skip}
    refused(admin_api.post(URL, body, format="json"), "service_account_key", '"token_uri"')
    assert forbidden.requests == []


def test_a_token_uri_whose_name_resolves_to_a_forbidden_address_is_refused_when_used(
    admin_api, settings, loopback_server, service_account_key
):
    """`localhost` is no address literal, so only the guard at connect time can refuse it."""
    settings.REGISTRIES_ALLOWED_PRIVATE_NETWORKS = []
    listener = loopback_server().on("*", Reply.json({"access_token": "t", "expires_in": 3600}))
    key = service_account_key(token_uri=f"http://localhost:{listener.port}/token")
    body = {"provider": "gcr", "endpoint": "gcr.io", "service_account_key": key.text}
    response = admin_api.post(URL, {**body, "skip_validation": False}, format="json")
    assert response.status_code == 400 and "blocked" in response.json()["message"], response.content
    assert not ExternalRegistry.objects.exists()

    saved = admin_api.post(URL, {**body, "skip_validation": True}, format="json").json()
    test = run_test(saved["id"])
    assert (test.status, test.category) == (CheckStatus.FAILED, "blocked")
    assert listener.requests == []


# --- plain http only where settings allow it --------------------------------------------------------


@pytest.mark.parametrize("skip", [False, True], ids=["validated", "skip_validation"])
def test_plain_http_endpoints_are_refused_when_settings_forbid_them(admin_api, settings, loopback_server, skip):
    settings.REGISTRIES_ALLOW_HTTP = False
    upstream = loopback_server().on("/v2/", Reply.json({}))
    refused(save(admin_api, upstream.url, skip=skip), "endpoint", "https")
    refused(save(admin_api, "http://registry.example.com", skip=skip), "endpoint", "https")
    assert not ExternalRegistry.objects.exists()
    assert upstream.requests == []


def test_a_stored_http_registry_is_not_contacted_once_settings_forbid_http(admin_api, settings, loopback_server):
    upstream = loopback_server().on("/v2/", Reply.json({}))
    saved = save(admin_api, upstream.url, skip=True).json()
    assert saved["insecure"] is True
    settings.REGISTRIES_ALLOW_HTTP = False
    test = run_test(saved["id"])
    assert (test.status, test.category) == (CheckStatus.FAILED, "insecure_not_allowed")
    assert upstream.requests == []
    response = admin_api.patch(f"{URL}{saved['id']}/", {"endpoint": upstream.url, "password": canary()}, format="json")
    refused(response, "endpoint", "https")


def test_a_token_uri_on_plain_http_is_refused_when_settings_forbid_http(admin_api, settings, service_account_key):
    settings.REGISTRIES_ALLOW_HTTP = False
    key = service_account_key()  # the loopback endpoint speaks plain http
    body = {"provider": "gcr", "endpoint": "gcr.io", "service_account_key": key.text, "skip_validation": True}
    refused(admin_api.post(URL, body, format="json"), "service_account_key", "https")


# --- S7: ports only from REGISTRIES_ALLOWED_PORTS ------------------------------------------------


@pytest.mark.parametrize("skip", [False, True], ids=["validated", "skip_validation"])
def test_an_endpoint_on_a_port_outside_the_allowed_ports_is_refused_before_connecting(
    admin_api, settings, loopback_server, skip
):
    settings.REGISTRIES_ALLOWED_PORTS = [(443, 443), (5000, 5000)]
    listener = loopback_server().on("/v2/", Reply.json({}))
    message = refused(save(admin_api, listener.url, skip=skip), "endpoint")
    assert message == f"127.0.0.1: port {listener.port} is not allowed (allowed ports: 443, 5000)"
    assert not ExternalRegistry.objects.exists()
    assert listener.connections == 0


def test_a_stored_registry_on_a_port_no_longer_allowed_is_not_contacted(admin_api, settings, loopback_server):
    listener = loopback_server().on("/v2/", Reply.json({}))
    saved = save(admin_api, listener.url, skip=True).json()
    settings.REGISTRIES_ALLOWED_PORTS = [(443, 443)]
    test = run_test(saved["id"])
    assert (test.status, test.category) == (CheckStatus.FAILED, "blocked")
    assert f"port {listener.port} is not allowed" in test.message
    assert listener.connections == 0


def test_a_realm_on_a_port_outside_the_allowed_ports_receives_nothing(admin_api, settings, loopback_server):
    realm = loopback_server().on("/token", Reply.json({"token": "t"}))
    upstream = loopback_server().on("/v2/", Reply.challenge(f"http://127.0.0.1:{realm.port}/token"))
    settings.REGISTRIES_ALLOWED_PORTS = [(upstream.port, upstream.port)]
    refused(save(admin_api, upstream.url, skip=False), "endpoint", "blocked", f"port {realm.port} is not allowed")
    assert upstream.requests and realm.connections == 0


def test_a_redirect_to_a_port_outside_the_allowed_ports_is_refused(admin_api, settings, loopback_server):
    other = loopback_server().on("*", Reply.json({}))
    upstream = loopback_server().on("/v2/", Reply.redirect(f"{other.url}/v2/", 307))
    settings.REGISTRIES_ALLOWED_PORTS = [(upstream.port, upstream.port)]
    refused(save(admin_api, upstream.url, skip=False), "endpoint", "blocked", f"port {other.port} is not allowed")
    assert upstream.requests and other.connections == 0


@pytest.mark.parametrize("skip", [False, True], ids=["validated", "skip_validation"])
def test_a_token_uri_on_a_port_outside_the_allowed_ports_is_refused_without_a_connection(
    admin_api, settings, service_account_key, google_token_endpoint, skip
):
    key = service_account_key()
    settings.REGISTRIES_ALLOWED_PORTS = [(443, 443)]
    body = {"provider": "gcr", "endpoint": "gcr.io", "service_account_key": key.text, "skip_validation": skip}
    refused(admin_api.post(URL, body, format="json"), "service_account_key", '"token_uri"', "is not allowed")
    assert google_token_endpoint.requests == []
    assert not ExternalRegistry.objects.exists()
