"""The Docker token service at /v2/token (Django's test client; no upstream is contacted).

Scope intersection (SECURITY-TESTS A7/A8), 401s for bad licenses, containerd's POST form,
rate limits (L3) and their fail-open when the cache is down, and the JWT forgery set the
proxy must refuse (A10).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import logging
import secrets
import threading
import time
from datetime import timedelta

import httpx
import jwt
import pytest
from asgiref.local import Local
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.cache import caches
from django.db import connections
from django.test import Client
from django.utils import timezone

from delivery import customer_auth
from licenses import services as licenses
from licenses.models import License
from portal import asgi, registry_tokens
from registries import services as registries
from tests import factories

pytestmark = pytest.mark.django_db

# A registry row is enough: the token service decides from the database, never upstream.
UPSTREAM = "127.0.0.1:5000"
HOST = "127.0.0.1__5000"
API = f"proxy/app-a/{HOST}/acme/api"
_addresses = itertools.count(1)


_run = secrets.token_hex(2)


def _address() -> str:
    """A client address of its own per call and run: rate-limit counters live a minute in Redis."""
    return f"2001:db8:{_run}::{next(_addresses):x}"


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.fixture
def world(actor, team, other_team, outsider):
    """App A (rules: acme/* on the registry) and app B of team Acme, app C of another team."""
    app_a = factories.make_app(team, "app-a")
    app_b = factories.make_app(team, "app-b")
    registries.registry_create(
        actor=actor, provider="other", endpoint=f"http://{UPSTREAM}", username="vendor",
        password="CANARY-token-service", skip_validation=True,
    )  # fmt: skip
    licenses.app_set_repository_rules(actor=actor, app=app_a, rules=[f"{HOST}/acme/*"])
    license_a, id_a = licenses.license_create(actor=actor, app=app_a, customer_name="Globex")
    license_b, id_b = licenses.license_create(actor=actor, app=app_b, customer_name="Initech")
    return {"actor": actor, "app_a": app_a, "app_b": app_b, "license_a": license_a, "id_a": id_a, "id_b": id_b}


def _token(license_id: str | None, *scopes: str, service: str | None = None, address: str | None = None):
    params: list[tuple[str, str]] = [("service", service or settings.PROXY_SERVICE)]
    params += [("scope", s) for s in scopes]
    query = "&".join(f"{k}={v}" for k, v in params)
    headers = {"HTTP_AUTHORIZATION": _basic(license_id, license_id)} if license_id else {}
    return Client().get(f"/v2/token?{query}", REMOTE_ADDR=address or _address(), **headers)


def _claims(response) -> dict:
    assert response.status_code == 200, response.content
    return registry_tokens.verify(response.json()["token"], audience=settings.PROXY_SERVICE)


@pytest.mark.parametrize(
    "scopes, granted",
    [
        pytest.param([f"repository:{API}:pull,push,delete,*"], [API], id="only-pull-of-pull-push-delete-star"),
        pytest.param([f"repository:{API}:push,delete,*"], [], id="no-pull-asked-nothing-granted"),
        pytest.param([f"repository:proxy/app-b/{HOST}/acme/api:pull"], [], id="other-app-dropped"),
        pytest.param(
            [f"repository:{API}:pull", f"repository:proxy/app-b/{HOST}/acme/api:pull"], [API], id="two-scope-params"
        ),
        pytest.param(
            [f"repository:proxy/app-b/{HOST}/acme/api:pull repository:{API}:pull"], [API], id="space-separated"
        ),
        pytest.param([f"repository(plugin):{API}:pull"], [], id="resource-class-dropped"),
        pytest.param([f"repository:{API}:pull:extra"], [], id="extra-part-dropped"),
        pytest.param([f"repository:{API}:extra:pull"], [], id="extra-part-in-name-dropped"),
        pytest.param(["repository:proxy/app-a/127.0.0.1__5999/acme/api:pull"], [], id="host-not-configured"),
        pytest.param(["repository:proxy/app-a/quay.io/acme/api:pull"], [], id="public-host-not-configured"),
        pytest.param([f"repository:proxy/app-a/{HOST}/other/api:pull"], [], id="outside-app-rules"),
        pytest.param([f"repository:{UPSTREAM}/acme/api:pull"], [], id="upstream-name-not-proxy-name"),
        pytest.param(["repository:acme/api:pull"], [], id="bare-name"),
        pytest.param([f"repository:proxy/app-a/{HOST}/acme/../other/api:pull"], [], id="dot-dot"),
        pytest.param([f"repository:proxy/app-a/{HOST}/acme/API:pull"], [], id="upper-case"),
        pytest.param([f"repository:proxy/App-a/{HOST}/acme/api:pull"], [], id="upper-case-slug"),
        pytest.param(["registry:catalog:*"], [], id="catalog-never"),
        pytest.param([f"repository:{API}:pull", f"repository:{API}:pull"], [API], id="duplicates-merge"),
        pytest.param([], [], id="no-scope"),
        # Plain HTTP clients may write the port with ":"; the grant names what was asked.
        pytest.param(
            [f"repository:proxy/app-a/{UPSTREAM}/acme/api:pull"], [f"proxy/app-a/{UPSTREAM}/acme/api"], id="colon-port"
        ),
    ],
)
def test_the_grant_is_the_intersection_of_what_was_asked_and_what_the_license_allows(world, scopes, granted):
    claims = _claims(_token(world["id_a"], *scopes))
    assert claims["access"] == [{"type": "repository", "name": n, "actions": ["pull"]} for n in granted]
    assert claims["aud"] == settings.PROXY_SERVICE and claims["iss"] == settings.REGISTRY_TOKEN_ISSUER
    assert claims["sub"] == f"license:{world['license_a'].uid}"
    assert claims["exp"] == claims["iat"] + settings.REGISTRY_TOKEN_TTL


def test_the_jwt_carries_what_distribution_and_the_proxy_check(world):
    response = _token(world["id_a"], f"repository:{API}:pull")
    body = response.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == settings.REGISTRY_TOKEN_TTL == 300
    assert body["issued_at"].endswith("Z")
    claims = _claims(response)
    assert claims["aud"] == settings.PROXY_SERVICE  # a plain string, as Distribution 2.8 wants
    assert claims["iss"] == settings.REGISTRY_TOKEN_ISSUER
    assert claims["sub"] == f"license:{world['license_a'].uid}"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["nbf"] == claims["iat"] - registry_tokens.NOT_BEFORE_LEEWAY
    assert abs(claims["iat"] - time.time()) < 5
    assert claims["jti"]
    header = jwt.get_unverified_header(body["token"])
    key = registry_tokens.signing_key()
    assert header["alg"] == "RS256"
    assert header["kid"] == key.kid == registry_tokens.libtrust_key_id(key.private_key.public_key())
    assert len(header["kid"]) == 12 * 4 + 11 and header["kid"].count(":") == 11
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert leaf.public_key().public_bytes(*der) == key.private_key.public_key().public_bytes(*der)
    # The JWKS publishes the same key id.
    assert Client().get("/.well-known/jwks.json").json()["keys"][0]["kid"] == key.kid
    # An unknown service gets no token; the private registry's service grants no proxy names.
    assert _token(world["id_a"], f"repository:{API}:pull", service="someone-else").status_code == 400
    other = _token(world["id_a"], f"repository:{API}:pull", service=settings.REGISTRY_SERVICE)
    assert jwt.decode(other.json()["token"], options={"verify_signature": False})["access"] == []


@pytest.mark.parametrize("scope", ["garbage", "repository:name-without-actions", ":x:pull", "repository::pull"])
def test_an_unparseable_scope_is_400_invalid_scope(world, scope):
    response = _token(world["id_a"], scope)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert response.json()["errors"][0]["code"]


def _assert_unauthorized(response):
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert "token" not in response.json()


def test_unknown_expired_revoked_and_anonymous_callers_get_401(world):
    _assert_unauthorized(_token("not-a-license", f"repository:{API}:pull"))
    _assert_unauthorized(_token(None, f"repository:{API}:pull"))
    bad_header = Client().get("/v2/token", HTTP_AUTHORIZATION="Basic !!!not-base64", REMOTE_ADDR=_address())
    _assert_unauthorized(bad_header)
    license = world["license_a"]
    License.objects.filter(pk=license.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    _assert_unauthorized(_token(world["id_a"], f"repository:{API}:pull"))
    License.objects.filter(pk=license.pk).update(expires_at=None)
    licenses.license_state_forget(license)  # as the services do; else seen within LICENSE_CACHE_SECONDS
    assert _token(world["id_a"], f"repository:{API}:pull").status_code == 200
    licenses.license_revoke(actor=world["actor"], license=license)
    _assert_unauthorized(_token(world["id_a"], f"repository:{API}:pull"))


def test_containerd_posts_grant_type_password(world):
    data = {
        "grant_type": "password", "username": "customer@globex.test", "password": world["id_a"],
        "service": settings.PROXY_SERVICE, "scope": f"repository:{API}:pull", "client_id": "containerd-client",
    }  # fmt: skip
    response = Client().post("/v2/token", data, REMOTE_ADDR=_address())
    claims = _claims(response)
    assert response.json()["access_token"]
    assert claims["access"] == [{"type": "repository", "name": API, "actions": ["pull"]}]
    _assert_unauthorized(Client().post("/v2/token", {**data, "password": "wrong"}, REMOTE_ADDR=_address()))
    _assert_unauthorized(Client().post("/v2/token", {**data, "grant_type": "refresh_token"}, REMOTE_ADDR=_address()))


def test_too_many_requests_get_429_per_address_and_per_license_but_others_are_unaffected(world, monkeypatch):
    monkeypatch.setattr(customer_auth, "RATE_PER_ADDRESS", 3)
    attacker = _address()
    statuses = [_token(f"guess-{i}", address=attacker).status_code for i in range(4)]
    assert statuses == [401, 401, 401, 429]
    limited = _token(world["id_a"], address=attacker)
    assert limited.status_code == 429
    assert limited.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert int(limited["Retry-After"]) > 0
    assert _token(world["id_a"], f"repository:{API}:pull").status_code == 200  # another address: no lockout

    monkeypatch.setattr(customer_auth, "RATE_PER_ADDRESS", 1000)
    monkeypatch.setattr(customer_auth, "RATE_PER_CREDENTIAL", 2)
    statuses = [_token(world["id_b"]).status_code for _ in range(3)]  # three addresses, one license
    assert statuses == [200, 200, 429]
    assert _token(world["id_a"]).status_code == 200


def test_guessing_license_ids_with_basic_straight_to_the_proxy_is_limited_per_address(world, monkeypatch):
    """L3: the proxy's own Basic login is no way around the token service's limit."""
    monkeypatch.setattr(customer_auth, "RATE_PER_ADDRESS", 3)
    attacker = _address()

    def proxy(path: str, license_id: str, address: str):
        return Client().get(path, HTTP_AUTHORIZATION=_basic("guess", license_id), REMOTE_ADDR=address)

    statuses = [proxy("/v2/", f"guess-{i}", attacker).status_code for i in range(4)]
    assert statuses == [401, 401, 401, 429]
    for path in ("/v2/", f"/v2/{API}/manifests/1.0.0", f"/v2/{API}/blobs/sha256:{'a' * 64}"):
        limited = proxy(path, world["id_a"], attacker)  # even the right ID, from that address
        assert limited.status_code == 429, (path, limited.content)
        assert limited.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
        assert limited["Retry-After"] == "60"
    customer = _address()  # nobody else is locked out, and logins that work are never counted
    assert [proxy("/v2/", world["id_a"], customer).status_code for _ in range(5)] == [200] * 5


def test_guesses_at_the_token_service_and_the_proxy_spend_one_budget_per_address(world, monkeypatch):
    """One rule at every door (delivery/customer_auth.py): two guesses at each door are the
    four the address had, and both doors then answer the same 429."""
    monkeypatch.setattr(customer_auth, "RATE_PER_ADDRESS", 4)
    attacker = _address()

    def proxy(license_id: str):
        return Client().get("/v2/", HTTP_AUTHORIZATION=_basic("guess", license_id), REMOTE_ADDR=attacker)

    assert [_token(f"guess-{i}", address=attacker).status_code for i in range(2)] == [401, 401]
    assert [proxy(f"guess-{i}").status_code for i in range(2)] == [401, 401]
    at_token, at_proxy = _token(world["id_a"], address=attacker), proxy(world["id_a"])
    assert (at_token.status_code, at_proxy.status_code) == (429, 429)
    assert at_token.json() == at_proxy.json()
    assert at_token.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert at_token["Retry-After"] == at_proxy["Retry-After"] == str(customer_auth.RATE_WINDOW)


def _cache_backend(name: str, tmp_path) -> dict:
    if name == "file":  # the embedded default (`make run`, no REDIS_URL)
        return {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path / "cache")}
    return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": settings.REDIS_URL}


@pytest.mark.parametrize("backend", ["file", "redis"])
def test_a_rate_window_ends_on_time_on_every_cache_backend_even_while_requests_keep_coming(
    world, settings, monkeypatch, tmp_path, backend
):
    """W4: the file cache's incr rewrote the counter with the default timeout, so an address
    that kept asking stayed limited for good."""
    settings.CACHES = {"default": _cache_backend(backend, tmp_path)}
    window = 2
    monkeypatch.setattr(customer_auth, "RATE_WINDOW", window)
    monkeypatch.setattr(customer_auth, "RATE_PER_ADDRESS", 3)
    address = _address()
    time.sleep(window - time.time() % window + 0.05)  # start at the beginning of a window
    first_window = int(time.time() // window)
    statuses = [_token(world["id_a"], address=address).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    while int(time.time() // window) == first_window:  # keep asking, as a busy client does
        status = _token(world["id_a"], address=address).status_code
        if int(time.time() // window) == first_window:
            assert status == 429
        time.sleep(0.2)
    assert _token(world["id_a"], f"repository:{API}:pull", address=address).status_code == 200


def test_the_rate_limiter_fails_open_when_the_cache_is_down_and_the_license_is_still_checked(
    world, settings, monkeypatch, caplog
):
    monkeypatch.setattr(customer_auth, "RATE_PER_ADDRESS", 1)
    monkeypatch.setattr(customer_auth, "RATE_PER_CREDENTIAL", 1)
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    caches._connections = Local()  # Django's setting_changed does this too; be explicit
    address = _address()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="delivery.customer_auth"):
        first = _token(world["id_a"], f"repository:{API}:pull", address=address)
        second = _token(world["id_a"], f"repository:{API}:pull", address=address)
    assert time.monotonic() - started < 5
    assert [first.status_code, second.status_code] == [200, 200]
    assert _claims(second)["access"][0]["name"] == API
    assert "rate limiter unavailable" in caplog.text
    licenses.license_revoke(actor=world["actor"], license=world["license_a"])
    _assert_unauthorized(_token(world["id_a"], f"repository:{API}:pull", address=address))


# --- the proxy refuses every token it did not issue for this service and name ----------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unsigned(header: dict, claims: dict) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def _good_claims(license: License, name: str = API, **changes) -> dict:
    now = int(time.time())
    claims = {
        "iss": settings.REGISTRY_TOKEN_ISSUER, "sub": f"license:{license.uid}", "aud": settings.PROXY_SERVICE,
        "exp": now + 300, "nbf": now - 30, "iat": now, "jti": "x",
        "access": [{"type": "repository", "name": name, "actions": ["pull"]}],
    }  # fmt: skip
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(claims: dict, key=None, **headers) -> str:
    ours = registry_tokens.signing_key()
    headers = {"kid": ours.kid, "x5c": [ours.x5c], **headers}
    return jwt.encode(claims, key or ours.private_key, algorithm="RS256", headers=headers)


def _forgeries(license: License) -> dict[str, str]:
    ours = registry_tokens.signing_key()
    public_pem = ours.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_input = _unsigned({"alg": "HS256", "typ": "JWT", "kid": ours.kid}, _good_claims(license))
    hs_signature = _b64(hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest())
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attacker_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(attacker.public_key()))
    now = int(time.time())
    return {
        "alg-none": _unsigned({"alg": "none", "typ": "JWT"}, _good_claims(license)) + ".",
        "alg-none-with-kid": _unsigned({"alg": "none", "kid": ours.kid}, _good_claims(license)) + ".",
        "hs256-with-public-key": f"{hs_input}.{hs_signature}",
        "wrong-aud": _signed(_good_claims(license, aud="someone-else")),
        "aud-list-without-us": _signed(_good_claims(license, aud=["someone-else"])),
        "wrong-iss": _signed(_good_claims(license, iss="attacker")),
        "expired": _signed(_good_claims(license, exp=now - 60, iat=now - 400, nbf=now - 400)),
        "not-yet-valid": _signed(_good_claims(license, nbf=now + 3600)),
        "no-exp": _signed(_good_claims(license, exp=None)),
        "other-key-our-kid": _signed(_good_claims(license), key=attacker),
        "other-key-our-kid-embedded-jwk": _signed(_good_claims(license), key=attacker, jwk=attacker_jwk),
        "access-for-another-name": _signed(_good_claims(license, name=f"proxy/app-a/{HOST}/acme/other")),
        "access-push-only": _signed(
            _good_claims(license, access=[{"type": "repository", "name": API, "actions": ["push"]}])
        ),
        "subject-not-a-license": _signed(_good_claims(license, sub="user:1")),
        "tampered-payload": _signed(_good_claims(license)).split(".")[0]
        + "."
        + _b64(json.dumps(_good_claims(license, sub="license:00000000-0000-0000-0000-000000000000")).encode())
        + "."
        + _signed(_good_claims(license)).split(".")[2],
        "garbage": "not.a.jwt",
    }


def test_the_proxy_refuses_forged_and_foreign_tokens(world):
    license = world["license_a"]
    client = Client()
    # Controls: our own token gets through authentication (then finds nothing upstream).
    genuine = _signed(_good_claims(license))
    assert client.get("/v2/", HTTP_AUTHORIZATION=f"Bearer {genuine}").status_code == 200
    forgeries = _forgeries(license)
    for label, token in forgeries.items():
        for path in ("/v2/", f"/v2/{API}/manifests/1.0.0", f"/v2/{API}/blobs/sha256:{'a' * 64}"):
            if label.startswith("access-") and path == "/v2/":
                continue  # /v2/ names no repository
            response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")
            assert response.status_code == 401, (label, path, response.content)
            assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
            assert response["WWW-Authenticate"].startswith('Bearer realm="http://testserver/v2/token"')
    # A token for the private registry's audience is refused too.
    other_service = _token(world["id_a"], f"repository:{API}:pull", service=settings.REGISTRY_SERVICE).json()["token"]
    assert client.get("/v2/", HTTP_AUTHORIZATION=f"Bearer {other_service}").status_code == 401
    # A genuine token stops working once its license is revoked.
    licenses.license_revoke(actor=world["actor"], license=license)
    assert client.get("/v2/", HTTP_AUTHORIZATION=f"Bearer {genuine}").status_code == 401


@pytest.mark.django_db(transaction=True)  # the view's database work runs on threads of its own
def test_under_asgi_two_token_requests_are_served_at_once_and_each_hands_its_connection_back(world, monkeypatch):
    """Through portal.asgi, as uvicorn serves it: the view's look-ups run on the event loop's
    thread pool, two at once (were they queued on one thread, the barrier would break), and
    the connection a pool thread used is closed (back to the pool) when it is done: nothing
    else would close it."""
    barrier = threading.Barrier(2, timeout=5)
    used = []
    find = licenses.license_find_recent

    def find_both_at_once(license_id: str):
        license = find(license_id)  # neither finds it cached: both ask the database
        used.append(connections["default"])
        barrier.wait()  # the other request's look-up must be under way meanwhile
        return license

    monkeypatch.setattr(licenses, "license_find_recent", find_both_at_once)

    async def two_requests():
        transport = httpx.ASGITransport(app=asgi.application, client=(_address(), 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            params = {"service": settings.PROXY_SERVICE, "scope": f"repository:{API}:pull"}
            headers = {"Authorization": _basic(world["id_a"], world["id_a"])}
            return await asyncio.gather(*(client.get("/v2/token", params=params, headers=headers) for _ in range(2)))

    for response in asyncio.run(two_requests()):
        assert response.status_code == 200, response.text
        claims = registry_tokens.verify(response.json()["token"], audience=settings.PROXY_SERVICE)
        assert claims["access"] == [{"type": "repository", "name": API, "actions": ["pull"]}]
    assert len(used) == 2 and used[0] is not used[1]
    assert [c.connection for c in used] == [None, None]


@pytest.mark.django_db(transaction=True)
def test_token_requests_through_asgi_start_no_thread_each(world, monkeypatch):
    """Django gives each request a thread of its own, started and joined (~0.7 ms of CPU, a
    fifth of a token); token requests use the loop's pool and asgiref's shared thread."""
    started = []
    start = threading.Thread.start

    def counting_start(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counting_start)

    async def requests_one_after_another(count: int):
        transport = httpx.ASGITransport(app=asgi.application, client=(_address(), 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            params = {"service": settings.PROXY_SERVICE, "scope": f"repository:{API}:pull"}
            headers = {"Authorization": _basic(world["id_a"], world["id_a"])}
            return [await client.get("/v2/token", params=params, headers=headers) for _ in range(count)]

    assert [r.status_code for r in asyncio.run(requests_one_after_another(20))] == [200] * 20
    # The loop's pool starts a thread when none is idle at that instant (a few, under load),
    # asgiref its shared one, asyncio.run one to shut the pool down; a thread per request would
    # be 20 more.
    assert len([name for name in started if "_do_shutdown" not in name]) <= 4, started


def test_a_license_found_is_not_asked_of_the_database_again_until_the_services_change_it(
    world, django_assert_num_queries
):
    """`docker pull` asks for a token per repository: the license found is kept in the shared
    cache for LICENSE_CACHE_SECONDS, and a revocation through the services drops it at once."""
    assert _token(world["id_a"], f"repository:{API}:pull").status_code == 200
    with django_assert_num_queries(0):
        assert _token(world["id_a"], f"repository:{API}:pull").status_code == 200
    licenses.license_revoke(actor=world["actor"], license=world["license_a"])
    _assert_unauthorized(_token(world["id_a"], f"repository:{API}:pull"))
