"""The network guard: address checks, pinning, redirects, timeouts (SECURITY-TESTS S1–S4, S7, F1, F2).

Listeners are real loopback servers; 127.0.0.2 stands for "an internal address that is not
allowed" wherever the policy allows only 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_ports
from portal.outbound.addresses import GuardPolicy, address_refusal, check_url, parse_ip_literal
from portal.outbound.async_client import GuardedClient
from portal.outbound.errors import RegistryError
from portal.outbound.redirects import next_hop
from portal.outbound.resolve import resolve_checked_sync, system_resolver
from portal.outbound.sync_client import GuardedSyncClient
from tests.realparts.loopback import Reply

pytestmark = pytest.mark.anyio

LOOPBACK = GuardPolicy((ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")), allow_http=True)
ONLY_127_0_0_1 = GuardPolicy((ipaddress.ip_network("127.0.0.1/32"),), allow_http=True)
NOTHING_PRIVATE = GuardPolicy((), allow_http=True)
EVERYTHING = GuardPolicy((ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")), allow_http=True)


def resolver_for(mapping: dict[str, list[str]]):
    """A resolver standing in for DNS answers we cannot create (no hosts-file edits here)."""

    def resolve(host: str, port: int) -> list[str]:
        if host not in mapping:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return mapping[host]

    return resolve


# --- addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "literal",
    [
        "2852039166",
        "0xa9fea9fe",
        "0xA9FEA9FE",
        "0251.0376.0251.0376",
        "169.254.43518",
        "0xa9.0xfe.0xa9.0xfe",
        "[::ffff:169.254.169.254]",
    ],
)
def test_every_encoding_of_the_metadata_address_is_read_as_that_address(literal):
    ip = parse_ip_literal(literal)
    assert ip is not None
    assert address_refusal(ip, EVERYTHING).startswith("a cloud metadata address")


# Every IPv6 form that carries an IPv4 address, with the metadata address, a private one and a
# public one inside. Teredo stores its client with every bit flipped: 5601:5601 is 169.254.169.254.
EMBEDDINGS = {
    "mapped ::ffff:0:0/96": ("::ffff:a9fe:a9fe", "::ffff:a00:5", "::ffff:808:808"),
    "SIIT ::ffff:0:0:0/96": ("::ffff:0:a9fe:a9fe", "::ffff:0:a00:5", "::ffff:0:808:808"),
    "compatible ::/96": ("::a9fe:a9fe", "::a00:5", "::808:808"),
    "NAT64 64:ff9b::/96": ("64:ff9b::a9fe:a9fe", "64:ff9b::a00:5", "64:ff9b::808:808"),
    "6to4 2002::/16": ("2002:a9fe:a9fe::1", "2002:a00:5::1", "2002:808:808::1"),
    "Teredo client": ("2001:0:808:808:0:0:5601:5601", "2001:0:808:808:0:0:f5ff:fffa", None),
    "Teredo server": ("2001:0:a9fe:a9fe:0:0:f7f7:f7f7", "2001:0:a00:5:0:0:f7f7:f7f7", None),
}
METADATA_INSIDE = [forms[0] for forms in EMBEDDINGS.values()]
PRIVATE_INSIDE = [forms[1] for forms in EMBEDDINGS.values()]
PUBLIC_INSIDE = [forms[2] for forms in EMBEDDINGS.values() if forms[2]]
ONLY_10 = GuardPolicy((ipaddress.ip_network("10.0.0.0/8"),), allow_http=True)


@pytest.mark.parametrize("address", [*METADATA_INSIDE, "64:ff9b:1::a9fe:a9fe"])
def test_the_metadata_address_inside_any_ipv6_form_is_refused_even_when_everything_is_allowed(address):
    reason = address_refusal(ipaddress.ip_address(address), EVERYTHING)
    assert reason is not None and "169.254.169.254" in reason, reason


@pytest.mark.parametrize("address", PRIVATE_INSIDE)
def test_a_private_address_inside_an_ipv6_form_is_judged_as_that_private_address(address):
    ip = ipaddress.ip_address(address)
    assert "private" in address_refusal(ip, NOTHING_PRIVATE)
    # Allowing the IPv4 network lets the address through only where the IPv6 form itself is no
    # private network of its own (Teredo's 2001::/32 is, so it needs its own allowance).
    if ip in ipaddress.ip_network("2001::/32"):
        assert address_refusal(ip, ONLY_10) is not None
    else:
        assert address_refusal(ip, ONLY_10) is None


@pytest.mark.parametrize("address", PUBLIC_INSIDE)
def test_a_public_address_inside_an_ipv6_form_is_allowed(address):
    assert address_refusal(ipaddress.ip_address(address), NOTHING_PRIVATE) is None


def test_loopback_and_unspecified_ipv6_are_themselves_not_ipv4_compatible_forms():
    assert address_refusal(ipaddress.ip_address("::1"), NOTHING_PRIVATE) == "a private or loopback address"
    assert address_refusal(ipaddress.ip_address("::1"), LOOPBACK) is None
    assert "unspecified" in address_refusal(ipaddress.ip_address("::"), EVERYTHING)
    # ::2 would be 0.0.0.2, in 0.0.0.0/8 ("this network"), always refused.
    assert "unspecified" in address_refusal(ipaddress.ip_address("::2"), EVERYTHING)


def test_local_use_nat64_is_refused_unless_its_network_is_allowed_and_the_ipv4_passes():
    """RFC 8215: the IPv4's position depends on the site's prefix length, unknowable from here."""
    public = ipaddress.ip_address("64:ff9b:1::808:808")
    assert "local-use NAT64" in address_refusal(public, NOTHING_PRIVATE)
    site = GuardPolicy((ipaddress.ip_network("64:ff9b:1::/96"),), allow_http=True)
    assert address_refusal(public, site) is None
    assert "metadata" in address_refusal(ipaddress.ip_address("64:ff9b:1::a9fe:a9fe"), site)
    assert "private" in address_refusal(ipaddress.ip_address("64:ff9b:1::a00:5"), site)
    assert address_refusal(ipaddress.ip_address("64:ff9b:1:0:1::808:808"), site) is not None  # outside the /96


@pytest.mark.parametrize("address", [*METADATA_INSIDE, "64:ff9b:1::a9fe:a9fe"])
async def test_a_request_to_the_metadata_address_written_as_ipv6_is_refused_before_connecting(address):
    async with GuardedClient(policy=EVERYTHING) as client:
        with pytest.raises(RegistryError) as error:
            await client.request("GET", f"http://[{address}]/latest/meta-data/")
    assert error.value.category == "blocked"
    with GuardedSyncClient(policy=EVERYTHING) as client, pytest.raises(RegistryError) as error:
        client.request("GET", f"http://[{address}]/latest/meta-data/")
    assert error.value.category == "blocked"


def test_names_that_only_look_numeric_are_not_ip_literals():
    assert parse_ip_literal("1.2.3.4.5") is None
    assert parse_ip_literal("0x1g.2.3.4") is None
    assert parse_ip_literal("256.1.1.1") is None
    assert parse_ip_literal("registry.example.com") is None


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "169.254.170.2",
        "100.100.100.200",
        "fd00:ec2::254",
        "169.254.1.1",
        "fe80::1",
        "0.0.0.0",
        "::",
        "224.0.0.1",
        "ff02::1",
        "255.255.255.255",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::1",
    ],
)
def test_link_local_metadata_and_unspecified_addresses_are_refused_even_when_everything_is_allowed(address):
    assert address_refusal(ipaddress.ip_address(address), EVERYTHING) is not None


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "::1", "10.0.0.5", "172.16.0.1", "192.168.1.1", "100.64.0.1", "fc00::1", "::ffff:127.0.0.1"],
)
def test_private_and_loopback_addresses_are_refused_unless_a_setting_allows_them(address):
    ip = ipaddress.ip_address(address)
    assert address_refusal(ip, NOTHING_PRIVATE) is not None
    assert address_refusal(ip, EVERYTHING) is None


def test_the_allowed_networks_are_exactly_the_ones_in_the_policy():
    assert address_refusal(ipaddress.ip_address("127.0.0.1"), ONLY_127_0_0_1) is None
    assert address_refusal(ipaddress.ip_address("127.0.0.2"), ONLY_127_0_0_1) is not None
    assert address_refusal(ipaddress.ip_address("8.8.8.8"), NOTHING_PRIVATE) is None


def test_policy_from_settings_reads_the_test_settings(settings):
    settings.REGISTRIES_ALLOWED_PRIVATE_NETWORKS = [ipaddress.ip_network("10.1.0.0/16")]
    settings.REGISTRIES_ALLOW_HTTP = False
    assert GuardPolicy.from_settings() == GuardPolicy((ipaddress.ip_network("10.1.0.0/16"),), allow_http=False)


def test_a_name_resolving_to_the_metadata_address_is_refused():
    resolver = resolver_for({"imds.vendor.test": ["169.254.169.254"]})
    with pytest.raises(RegistryError) as error:
        resolve_checked_sync("imds.vendor.test", 443, policy=EVERYTHING, resolver=resolver)
    assert error.value.category == "blocked"


def test_one_bad_address_among_the_answers_rejects_the_name():
    resolver = resolver_for({"mixed.vendor.test": ["8.8.8.8", "10.0.0.1"]})
    with pytest.raises(RegistryError) as error:
        resolve_checked_sync("mixed.vendor.test", 443, policy=NOTHING_PRIVATE, resolver=resolver)
    assert error.value.category == "blocked"


def test_a_name_that_does_not_resolve_is_a_dns_error():
    with pytest.raises(RegistryError) as error:
        resolve_checked_sync("registry.does-not-exist.invalid", 443, policy=LOOPBACK)
    assert error.value.category == "dns"
    with pytest.raises(socket.gaierror):
        system_resolver("x.invalid", 443)


# --- URLs and redirects --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_FLUSHALL",
        "ftp://example.com/",
        "https://good.test@127.0.0.1/",
        "https://127.0.0.1/#@good.test",
    ],
)
def test_other_schemes_userinfo_and_fragments_are_refused(url):
    with pytest.raises(RegistryError) as error:
        check_url(url, EVERYTHING)
    assert error.value.category == "blocked"


def test_plain_http_is_refused_unless_allowed():
    with pytest.raises(RegistryError) as error:
        check_url("http://registry.example.com/v2/", GuardPolicy(allow_http=False))
    assert error.value.category == "insecure_not_allowed"
    assert check_url("http://registry.example.com/v2/", GuardPolicy(allow_http=True)).scheme == "http"


def test_a_redirect_from_https_to_http_is_refused_even_where_http_is_allowed():
    request = httpx.Request("GET", "https://registry.example.com/v2/", headers={"Authorization": "Bearer t"})
    response = httpx.Response(301, headers={"Location": "http://registry.example.com/v2/"}, request=request)
    with pytest.raises(RegistryError) as error:
        next_hop(response, EVERYTHING)
    assert error.value.category == "insecure_not_allowed"


def test_authorization_survives_a_same_origin_redirect_only():
    request = httpx.Request("GET", "https://r.example.com/v2/a", headers={"Authorization": "Bearer t"})
    same = httpx.Response(307, headers={"Location": "/v2/b"}, request=request)
    other = httpx.Response(307, headers={"Location": "https://cdn.example.com/b"}, request=request)
    other_port = httpx.Response(307, headers={"Location": "https://r.example.com:8443/b"}, request=request)
    assert next_hop(same, EVERYTHING)[2].get("authorization") == "Bearer t"
    assert "authorization" not in next_hop(other, EVERYTHING)[2]
    assert "authorization" not in next_hop(other_port, EVERYTHING)[2]


# --- real connections ------------------------------------------------------------------------


async def test_connections_go_to_the_checked_address_with_the_host_name_kept(loopback_server):
    server = loopback_server().on("/v2/", Reply.json({}))
    resolver = resolver_for({"registry.vendor.test": ["127.0.0.1"]})
    async with GuardedClient(policy=LOOPBACK, resolver=resolver) as client:
        response = await client.request("GET", f"http://registry.vendor.test:{server.port}/v2/")
    assert response.status_code == 200
    assert server.requests[0].headers["host"] == f"registry.vendor.test:{server.port}"


async def test_a_rebinding_name_is_resolved_once_and_the_connection_pinned(loopback_server):
    """A stub resolver answers an allowed address first and a forbidden one afterwards."""
    allowed = loopback_server("127.0.0.1").on("*", Reply.json({}))
    internal = loopback_server("127.0.0.2", port=allowed.port).on("*", Reply.json({}))
    answers = [["127.0.0.1"], ["127.0.0.2"], ["127.0.0.2"]]
    calls = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return answers[len(calls) - 1]

    async with GuardedClient(policy=ONLY_127_0_0_1, resolver=rebinding) as client:
        await client.request("GET", f"http://rebind.test:{allowed.port}/v2/")
    assert calls == ["rebind.test"]
    assert len(allowed.requests) == 1
    # A new connection resolves again, and is checked again.
    async with GuardedClient(policy=ONLY_127_0_0_1, resolver=rebinding) as client:
        with pytest.raises(RegistryError) as error:
            await client.request("GET", f"http://rebind.test:{allowed.port}/v2/")
    assert error.value.category == "blocked"
    assert internal.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://2852039166/",
        "http://0xa9fea9fe/",
        "http://[::ffff:169.254.169.254]/",
    ],
)
async def test_the_metadata_address_is_refused_in_any_encoding(url):
    async with GuardedClient(policy=EVERYTHING) as client:
        with pytest.raises(RegistryError) as error:
            await client.request("GET", url)
    assert error.value.category == "blocked"


async def test_a_redirect_to_the_metadata_address_is_refused(loopback_server):
    server = loopback_server().on("/v2/", Reply.redirect("http://169.254.169.254/latest/meta-data/", 307))
    async with GuardedClient(policy=LOOPBACK) as client:
        with pytest.raises(RegistryError) as error:
            await client.request("GET", f"{server.url}/v2/")
    assert error.value.category == "blocked"


async def test_a_redirect_to_a_forbidden_internal_listener_never_reaches_it(loopback_server):
    internal = loopback_server("127.0.0.2").on("*", Reply.json({"secret": True}))
    server = loopback_server().on("/v2/", Reply.redirect(f"{internal.url}/admin"))
    async with GuardedClient(policy=ONLY_127_0_0_1) as client:
        with pytest.raises(RegistryError) as error:
            await client.request("GET", f"{server.url}/v2/")
    assert error.value.category == "blocked"
    assert internal.requests == []


async def test_a_direct_request_to_a_forbidden_listener_opens_no_connection(loopback_server):
    internal = loopback_server("127.0.0.2").on("*", Reply.json({}))
    async with GuardedClient(policy=ONLY_127_0_0_1) as client:
        with pytest.raises(RegistryError) as error:
            await client.request("GET", f"{internal.url}/")
    assert error.value.category == "blocked"
    assert internal.requests == []


async def test_authorization_is_dropped_on_a_redirect_to_another_origin(loopback_server):
    other = loopback_server().on("/blob", Reply(200, body=b"data"))
    server = loopback_server().on("/v2/a", Reply.redirect("/v2/b")).on("/v2/b", Reply.redirect(f"{other.url}/blob"))
    async with GuardedClient(policy=LOOPBACK) as client:
        response = await client.request("GET", f"{server.url}/v2/a", headers={"Authorization": "Bearer s3cret"})
    assert response.content == b"data"
    assert [r.headers.get("authorization") for r in server.requests] == ["Bearer s3cret", "Bearer s3cret"]
    assert "authorization" not in other.requests[0].headers


async def test_redirects_stop_after_three_hops(loopback_server):
    server = loopback_server()
    for i in range(10):
        server.on(f"/hop{i}", Reply.redirect(f"/hop{i + 1}"))
    server.on("/hop3", Reply(200, body=b"three"))
    async with GuardedClient(policy=LOOPBACK) as client:
        assert (await client.request("GET", f"{server.url}/hop0")).content == b"three"
        server.on("/hop3", Reply.redirect("/hop4"))
        with pytest.raises(RegistryError) as error:
            await client.request("GET", f"{server.url}/hop0")
    assert error.value.category == "invalid_response"


async def test_plain_http_is_refused_before_connecting_when_not_allowed(loopback_server):
    server = loopback_server().on("*", Reply.json({}))
    async with GuardedClient(policy=GuardPolicy(LOOPBACK.allowed_private_networks, allow_http=False)) as client:
        with pytest.raises(RegistryError) as error:
            await client.request("GET", f"{server.url}/v2/")
    assert error.value.category == "insecure_not_allowed"
    assert server.requests == []


async def test_a_closed_port_is_a_connect_error(closed_port):
    async with GuardedClient(policy=LOOPBACK) as client:
        with pytest.raises(RegistryError) as error:
            await client.request("GET", f"http://127.0.0.1:{closed_port}/v2/")
    assert error.value.category == "connect"


async def test_https_to_a_plain_http_listener_is_a_tls_error(loopback_server):
    server = loopback_server().on("*", Reply.json({}))
    async with GuardedClient(policy=LOOPBACK) as client:
        with pytest.raises(RegistryError) as error:
            await client.request("GET", f"https://{server.netloc}/v2/")
    assert error.value.category == "tls"


async def test_a_hanging_server_times_out(loopback_server):
    server = loopback_server().on("*", Reply.hanging())
    async with GuardedClient(policy=LOOPBACK, timeout=httpx.Timeout(0.5, connect=5)) as client:
        with pytest.raises(RegistryError) as error:
            await client.request("GET", f"{server.url}/v2/")
    assert error.value.category == "timeout"


async def test_bodies_beyond_the_limit_are_refused(loopback_server):
    server = loopback_server().on("*", Reply(200, body=b"x" * 5000))
    async with GuardedClient(policy=LOOPBACK) as client:
        with pytest.raises(RegistryError) as error:
            await client.request("GET", f"{server.url}/big", max_body=4096)
    assert error.value.category == "invalid_response"


async def test_stream_yields_the_body_in_chunks(loopback_server):
    body = bytes(range(256)) * 4096  # 1 MiB
    server = loopback_server().on("/blob", Reply(200, body=body))
    received = bytearray()
    async with GuardedClient(policy=LOOPBACK) as client, client.stream("GET", f"{server.url}/blob") as response:
        async for chunk in response.aiter_raw():
            assert len(chunk) < len(body)
            received += chunk
    assert bytes(received) == body


def test_the_sync_client_applies_the_same_guard(loopback_server):
    allowed = loopback_server().on("/token", Reply.json({"access_token": "t"}))
    internal = loopback_server("127.0.0.2").on("*", Reply.json({}))
    redirecting = loopback_server().on("*", Reply.redirect(f"{internal.url}/"))
    with GuardedSyncClient(policy=ONLY_127_0_0_1) as client:
        assert client.request("POST", f"{allowed.url}/token", content=b"grant").json() == {"access_token": "t"}
        for url in (f"{internal.url}/", "http://169.254.169.254/", f"{redirecting.url}/x"):
            with pytest.raises(RegistryError) as error:
                client.request("GET", url)
            assert error.value.category == "blocked"
    assert allowed.requests[0].body == b"grant"
    assert internal.requests == []


# --- the port policy (REGISTRIES_ALLOWED_PORTS) ---------------------------------------------------


def only_ports(*ports: int) -> GuardPolicy:
    return GuardPolicy(LOOPBACK.allowed_private_networks, allow_http=True, allowed_ports=tuple((p, p) for p in ports))


async def test_a_port_outside_the_allowed_ports_is_refused_before_connecting(loopback_server):
    server = loopback_server().on("*", Reply.json({}))
    policy = only_ports(443)
    async with GuardedClient(policy=policy) as client:
        with pytest.raises(RegistryError) as error:
            await client.request("GET", f"{server.url}/v2/")
    assert error.value.category == "blocked"
    assert f"port {server.port} is not allowed (allowed ports: 443)" in error.value.message
    with GuardedSyncClient(policy=policy) as client, pytest.raises(RegistryError):
        client.request("GET", f"{server.url}/v2/")
    assert server.connections == 0


async def test_a_redirect_to_a_port_outside_the_allowed_ports_is_refused_before_connecting(loopback_server):
    other = loopback_server().on("*", Reply(200, body=b"data"))
    server = loopback_server().on("/v2/", Reply.redirect(f"{other.url}/blob", 307))
    async with GuardedClient(policy=only_ports(server.port)) as client:
        with pytest.raises(RegistryError) as error:
            await client.request("GET", f"{server.url}/v2/")
        assert error.value.category == "blocked"
        assert server.connections == 1 and other.connections == 0
    # The same redirect goes through where both ports are allowed.
    async with GuardedClient(policy=only_ports(server.port, other.port)) as client:
        assert (await client.request("GET", f"{server.url}/v2/")).content == b"data"


def test_port_ranges_and_the_default_ports_of_the_schemes():
    policy = GuardPolicy((), allowed_ports=((443, 443), (5000, 5001)))
    assert check_url("https://registry.example.com/v2/", policy)
    assert check_url("https://registry.example.com:5001/v2/", policy)
    for url in ("https://registry.example.com:22/", "https://registry.example.com:5002/", "http://r.example.com/"):
        with pytest.raises(RegistryError) as error:
            check_url(url, GuardPolicy((), allow_http=True, allowed_ports=policy.allowed_ports))
        assert "is not allowed (allowed ports: 443, 5000-5001)" in error.value.message
    assert check_url("https://registry.example.com:22/", GuardPolicy(())).port == 22  # no setting: any port


@pytest.mark.parametrize(
    ("value", "ranges"),
    [("", None), ("443", [(443, 443)]), (" 443, 5000-5001 ,8443", [(443, 443), (5000, 5001), (8443, 8443)])],
)
def test_the_allowed_ports_setting_reads_ports_and_ranges(monkeypatch, value, ranges):
    monkeypatch.setenv("REGISTRIES_ALLOWED_PORTS", value)
    assert env_ports("REGISTRIES_ALLOWED_PORTS") == ranges


@pytest.mark.parametrize("value", ["https", "0", "65536", "5001-5000", "443-", "-443", "1-2-3", "44 3"])
def test_a_bad_allowed_ports_setting_stops_start_up_naming_it(monkeypatch, value):
    monkeypatch.setenv("REGISTRIES_ALLOWED_PORTS", value)
    with pytest.raises(ImproperlyConfigured) as error:
        env_ports("REGISTRIES_ALLOWED_PORTS")
    assert "REGISTRIES_ALLOWED_PORTS" in str(error.value) and repr(value.strip()) in str(error.value)


# --- the first-byte timeout (the proxy's UPSTREAM_FIRST_BYTE_TIMEOUT) --------------------------------


async def test_the_response_headers_must_come_within_the_first_byte_timeout(loopback_server):
    server = loopback_server().on("*", Reply.hanging())
    started = time.monotonic()
    async with GuardedClient(policy=LOOPBACK, timeout=httpx.Timeout(60, connect=5), first_byte_timeout=0.5) as client:
        with pytest.raises(RegistryError) as error:
            await client.request("GET", f"{server.url}/v2/")
    assert error.value.category == "timeout"
    assert time.monotonic() - started < 3


@pytest.fixture
def dribbling_server():
    """Sends its headers at once, then the body in three pieces 0.8 s apart."""
    sock = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = sock.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\n")
            for piece in (b"abc", b"def", b"ghi"):
                time.sleep(0.8)
                conn.sendall(piece)

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


async def test_a_body_may_pause_longer_than_the_first_byte_timeout_between_reads(dribbling_server):
    timeout = httpx.Timeout(5, connect=5)
    async with GuardedClient(policy=LOOPBACK, timeout=timeout, first_byte_timeout=0.5) as client:
        response = await client.request("GET", f"{dribbling_server}/blob")
    assert response.content == b"abcdefghi"
