"""The customer doors on a team's custom domain (Django's test client through the whole chain;
the real ASGI stack behind nginx is tests/hosts/test_front_proxy.py): only that team's
licenses, another team's refused exactly as a wrong one, 404 for hosts that serve nothing,
and Django's allowed hosts following the verified domains without a restart."""

from __future__ import annotations

import asyncio

import httpx
import jwt
import pytest
from django.conf import settings

from accounts.models import DomainKind, DomainStatus
from licenses import services as licenses
from portal import asgi, registry_tokens
from tests import factories
from tests.hosts.conftest import basic, client, set_status

pytestmark = pytest.mark.django_db

ACME = "proxy.acme.test"
OTHER = "proxy.other.test"


@pytest.fixture
def world(actor, team, other_team, outsider_actor, make_domain):
    app = factories.make_app(team, "acme-api")
    other_app = factories.make_app(other_team, "other-api")
    _, acme_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    _, other_id = licenses.license_create(actor=outsider_actor, app=other_app, customer_name="Initech")
    acme_domain = make_domain(team, ACME)
    make_domain(other_team, OTHER)
    return {"acme_id": acme_id, "other_id": other_id, "acme_domain": acme_domain, "team": team}


def _same_refusal(a, b) -> None:
    """Two answers a client cannot tell apart: status, body and the headers that matter."""
    assert (a.status_code, a.content) == (b.status_code, b.content)
    for name in ("WWW-Authenticate", "Content-Type", "Retry-After"):
        assert a.headers.get(name) == b.headers.get(name), name


def test_a_teams_domain_serves_its_license_at_v2_and_the_token_service(world):
    assert client(ACME).get("/v2/", HTTP_AUTHORIZATION=basic(world["acme_id"])).status_code == 200
    token = client(ACME).get("/v2/token?service=portal-proxy", HTTP_AUTHORIZATION=basic(world["acme_id"]))
    assert token.status_code == 200
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token.json()['token']}"}
    assert client(ACME).get("/v2/", **bearer).status_code == 200


def test_another_teams_valid_license_is_refused_as_a_wrong_one_at_every_door(world):
    other, wrong = basic(world["other_id"]), basic("no-such-license-id")
    for path in ("/v2/", "/v2/token?service=portal-proxy", "/v2/token", "/customer/v1/install-kit.tar.gz"):
        refused = client(ACME).get(path, HTTP_AUTHORIZATION=other)
        assert refused.status_code == 401, (path, refused.content)
        _same_refusal(refused, client(ACME).get(path, HTTP_AUTHORIZATION=wrong))
    # The same license works on its own team's domain and on the portal's own host.
    assert client(OTHER).get("/v2/", HTTP_AUTHORIZATION=other).status_code == 200
    assert client().get("/v2/", HTTP_AUTHORIZATION=other).status_code == 200


def test_another_teams_token_is_refused_on_the_domain_as_a_forged_one(world):
    """A token the portal's own host issued for another team's license: on Acme's domain it is
    nobody's, as a token signed by someone else would be."""
    issued = client().get("/v2/token?service=portal-proxy", HTTP_AUTHORIZATION=basic(world["other_id"]))
    assert issued.status_code == 200
    theirs = {"HTTP_AUTHORIZATION": f"Bearer {issued.json()['token']}"}
    forged_token = jwt.encode({"sub": "license:x"}, "not-our-key-" * 4, algorithm="HS256")
    forged = {"HTTP_AUTHORIZATION": f"Bearer {forged_token}"}
    refused = client(ACME).get("/v2/", **theirs)
    assert refused.status_code == 401
    _same_refusal(refused, client(ACME).get("/v2/", **forged))
    assert client(OTHER).get("/v2/", **theirs).status_code == 200
    claims = registry_tokens.verify(issued.json()["token"], audience=settings.PROXY_SERVICE)
    assert claims["sub"].startswith("license:")


def test_the_challenge_realm_names_the_host_the_client_asked_for(world):
    challenge = client(f"{ACME}:8443").get("/v2/")
    assert challenge.status_code == 401
    assert challenge.headers["WWW-Authenticate"] == (
        f'Bearer realm="http://{ACME}:8443/v2/token",service="portal-proxy"'
    )
    own = client().get("/v2/")
    assert own.headers["WWW-Authenticate"].startswith('Bearer realm="http://testserver/v2/token"')


@pytest.mark.parametrize("status", [DomainStatus.PENDING, DomainStatus.LOST])
def test_an_unverified_domain_gets_404_at_v2_and_400_for_pages(world, team, make_domain, status):
    make_domain(team, "unproven.acme.test", status=status)
    for host in ("unproven.acme.test", "nobody.example.test"):
        answer = client(host).get("/v2/", HTTP_AUTHORIZATION=basic(world["acme_id"]))
        assert answer.status_code == 404, host
        assert answer.json()["errors"][0]["code"] == "NAME_UNKNOWN"
        assert client(host).get("/v2/token", HTTP_AUTHORIZATION=basic(world["acme_id"])).status_code == 404
        assert client(host).get("/customer/v1/install-kit.tar.gz").status_code == 404
        assert client(host).get("/login/").status_code == 400  # Django's DisallowedHost


def test_the_allowed_hosts_follow_the_domain_without_a_restart(world, allowed_hosts):
    row = world["acme_domain"]
    auth = {"HTTP_AUTHORIZATION": basic(world["acme_id"])}
    assert client(ACME).get("/v2/", **auth).status_code == 200
    set_status(row, DomainStatus.LOST)
    assert client(ACME).get("/v2/", **auth).status_code == 404
    set_status(row, DomainStatus.VERIFIED)
    assert client(ACME).get("/v2/", **auth).status_code == 200
    # Outside a request nothing is admitted: the object holds only the configured patterns.
    assert ACME not in list(allowed_hosts)


def test_pages_and_the_api_do_not_answer_on_a_custom_domain(world, admin_client):
    """A vendor's session never meets a custom domain: Django refuses the host (400)."""
    assert admin_client.get("/", HTTP_HOST=ACME).status_code == 400
    assert admin_client.get("/api/v1/apps/", HTTP_HOST=ACME).status_code == 400
    assert admin_client.get("/").status_code == 200


def test_a_registry_domain_serves_only_the_token_service_to_its_own_team(world, team, other_team, admin, make_domain):
    make_domain(team, "registry.acme.test", kind=DomainKind.REGISTRY)
    host = "registry.acme.test"
    ours = factories.service_token(team)
    theirs = factories.service_token(other_team)
    query = "/v2/token?service=portal-registry&scope=repository:acme/app:pull"
    got = client(host).get(query, HTTP_AUTHORIZATION=basic(ours))
    assert got.status_code == 200, got.content
    refused = client(host).get(query, HTTP_AUTHORIZATION=basic(theirs))
    assert refused.status_code == 401
    _same_refusal(refused, client(host).get(query, HTTP_AUTHORIZATION=basic("vps_" + "x" * 43)))
    # On the portal's own host their token works as before.
    assert client().get(query, HTTP_AUTHORIZATION=basic(theirs)).status_code == 200
    # A registry domain issues no proxy tokens and is no proxy.
    proxy_token = client(host).get("/v2/token?service=portal-proxy", HTTP_AUTHORIZATION=basic(world["acme_id"]))
    assert proxy_token.status_code == 400 and "this host serves portal-registry" in proxy_token.content.decode()
    assert client(host).get("/v2/", HTTP_AUTHORIZATION=basic(world["acme_id"])).status_code == 404
    # A proxy domain issues no private-registry tokens.
    assert client(ACME).get(query, HTTP_AUTHORIZATION=basic(ours)).status_code == 400


def test_the_registry_notifications_are_not_taken_on_a_custom_domain(world, settings):
    """Distribution posts them to the portal's own URL; a custom domain is the customers'."""
    auth = {"HTTP_AUTHORIZATION": f"Bearer {settings.REGISTRY_NOTIFY_SECRET}"}
    body = {"data": '{"events": []}', "content_type": "application/json"}
    assert client(ACME).post("/hooks/registry", **body, **auth).status_code == 404
    assert client().post("/hooks/registry", **body, **auth).status_code == 200


@pytest.mark.django_db(transaction=True)  # the ASGI stack's threads have connections of their own
def test_the_token_service_answers_on_a_teams_domain_through_the_asgi_stack(world):
    """portal.asgi serves /v2/token without Django's thread per request: the domain's look-up
    runs on asgiref's shared thread instead, the license's on the event loop's pool."""

    async def token(license_id: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=asgi.application, client=("2001:db8:7::1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{ACME}") as client:
            return await client.get("/v2/token?service=portal-proxy", headers={"Authorization": basic(license_id)})

    issued = asyncio.run(token(world["acme_id"]))
    assert issued.status_code == 200, issued.text
    assert registry_tokens.verify(issued.json()["token"], audience=settings.PROXY_SERVICE)["sub"].startswith("license:")
    assert asyncio.run(token(world["other_id"])).status_code == 401
