"""The one redirect driver (portal/outbound/redirects.py), as both clients use it.

Hops are counted on real loopback servers; the sync and the async client must follow exactly
the same redirects, because they ask the same RedirectPlan.
"""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from portal.outbound.addresses import GuardPolicy
from portal.outbound.async_client import GuardedClient
from portal.outbound.errors import RegistryError
from portal.outbound.redirects import RedirectPlan
from portal.outbound.sync_client import GuardedSyncClient
from tests.realparts.loopback import Reply

pytestmark = pytest.mark.anyio

LOOPBACK = GuardPolicy((ipaddress.ip_network("127.0.0.0/8"),), allow_http=True)


def chain(server, redirects: int):
    """/hop0 redirects to /hop1 ... and /hop<redirects> answers."""
    for i in range(redirects):
        server.on(f"/hop{i}", Reply.redirect(f"/hop{i + 1}"))
    server.on(f"/hop{redirects}", Reply(200, body=b"end"))
    return f"{server.url}/hop0"


async def test_both_clients_follow_three_redirects_and_refuse_the_fourth_without_sending_it(loopback_server):
    three, four = loopback_server(), loopback_server()
    async with GuardedClient(policy=LOOPBACK) as client:
        assert (await client.request("GET", chain(three, 3))).content == b"end"
        with pytest.raises(RegistryError) as error:
            await client.request("GET", chain(four, 4))
    assert error.value.category == "invalid_response"
    assert error.value.message == "more than 3 redirects"
    assert [r.path for r in four.requests] == ["/hop0", "/hop1", "/hop2", "/hop3"]

    three_sync, four_sync = loopback_server(), loopback_server()
    with GuardedSyncClient(policy=LOOPBACK) as client:
        assert client.request("GET", chain(three_sync, 3)).content == b"end"
        with pytest.raises(RegistryError) as sync_error:
            client.request("GET", chain(four_sync, 4))
    assert sync_error.value.message == error.value.message
    assert [r.path for r in four_sync.requests] == [r.path for r in four.requests]


async def test_a_lower_redirect_limit_is_kept_and_a_higher_one_is_held_to_three(loopback_server):
    server = loopback_server()
    url = chain(server, 4)
    with GuardedSyncClient(policy=LOOPBACK, max_redirects=0) as client, pytest.raises(RegistryError) as error:
        client.request("GET", url)
    assert error.value.message == "more than 0 redirects"
    assert [r.path for r in server.requests] == ["/hop0"]
    async with GuardedClient(policy=LOOPBACK, max_redirects=10) as client:
        with pytest.raises(RegistryError) as error:
            await client.request("GET", url)
    assert error.value.message == "more than 3 redirects"


async def test_without_following_the_redirect_response_itself_is_the_answer(loopback_server):
    target = loopback_server().on("*", Reply(200))
    server = loopback_server().on("/v2/", Reply.redirect(f"{target.url}/blob", 307))
    async with GuardedClient(policy=LOOPBACK) as client:
        response = await client.request("GET", f"{server.url}/v2/", follow_redirects=False)
    assert response.status_code == 307
    assert target.requests == []


def test_the_first_request_is_checked_and_carries_the_query_parameters():
    plan = RedirectPlan("GET", "https://r.example.com/token?a=1", policy=LOOPBACK, params={"scope": "pull"})
    assert str(plan.first.url) == "https://r.example.com/token?a=1&scope=pull"
    with pytest.raises(RegistryError) as error:
        RedirectPlan("GET", "https://127.0.0.1/#frag", policy=LOOPBACK)
    assert error.value.category == "blocked"


def test_a_303_after_a_post_becomes_a_get_without_the_body():
    plan = RedirectPlan("POST", "https://r.example.com/a", policy=LOOPBACK, content=b"grant")
    request = httpx.Request("POST", plan.first.url, content=b"grant", headers={"Content-Type": "text/plain"})
    hop = plan.follow(httpx.Response(303, headers={"Location": "/b"}, request=request))
    assert (hop.method, str(hop.url), hop.content) == ("GET", "https://r.example.com/b", None)
    assert "content-type" not in hop.headers
