"""What the proxy refuses, with real skopeo and raw HTTP against uvicorn and a real Distribution.

SECURITY-TESTS A4 (another app), A5 (repository outside the app), A6 (revoked/expired within
the license cache TTL), A8 (catalog), A9/I6 (names), S8 (host not configured), push refused.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from licenses import services as licenses
from licenses.models import License
from registries import services as registries
from registries.models import ExternalRegistry
from tests import factories
from tests.proxy.conftest import (
    assert_oci_error,
    basic,
    bearer,
    get_token,
    proxy_name,
    raw_request,
    skopeo,
)

OCI_NAME_ERRORS = {"NAME_INVALID", "NAME_UNKNOWN", "MANIFEST_INVALID", "TAG_INVALID", "DIGEST_INVALID"}

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world(actor, team, outsider_actor, other_team, basic_registry):
    """App A may pull acme/api only; app B is another app of the team; app C's team has no registry."""
    app_a = factories.make_app(team, "app-a")
    app_b = factories.make_app(team, "app-b")
    app_c = factories.make_app(other_team, "app-c")
    registries.registry_create(
        actor=actor, provider="other", endpoint=basic_registry.endpoint,
        username=basic_registry.username, password=basic_registry.password,
    )  # fmt: skip
    host = basic_registry.netloc.replace(":", "__")
    licenses.app_set_repository_rules(actor=actor, app=app_a, rules=[f"{host}/acme/api"])
    _, id_a = licenses.license_create(actor=actor, app=app_a, customer_name="Globex")
    _, id_b = licenses.license_create(actor=actor, app=app_b, customer_name="Initech")
    _, id_c = licenses.license_create(actor=outsider_actor, app=app_c, customer_name="Hooli")
    return {"actor": actor, "app_a": app_a, "id_a": id_a, "id_b": id_b, "id_c": id_c}


def _inspect(server, name: str, tag: str, license_id: str):
    return skopeo(
        "inspect", "--raw", "--tls-verify=false", "--creds", f"{license_id}:{license_id}",
        f"docker://{server.netloc}/{name}:{tag}", timeout=60,
    )  # fmt: skip


def _upstream_requests(registry) -> int:
    """How many requests the Distribution has answered (one access-log line each)."""
    return len(re.findall(r'"(?:GET|HEAD|POST|PUT|PATCH|DELETE) /', registry.log_path.read_text(errors="replace")))


def test_wrong_other_app_and_other_team_licenses_unknown_hosts_and_bad_names_are_refused(
    world, portal_server, basic_registry, loopback_server
):
    api = basic_registry.images["api"]
    secret = basic_registry.images["secret"]
    base = portal_server.url
    name_a = proxy_name("app-a", basic_registry.netloc, "acme/api")
    # The control: license A pulls its own image with skopeo.
    ok = _inspect(portal_server, name_a, api.tag, world["id_a"])
    assert ok.returncode == 0, ok.stderr + portal_server.log()
    assert ok.stdout.encode() == api.manifest

    # Wrong license: skopeo fails at the token service, and so does plain HTTP.
    wrong = _inspect(portal_server, name_a, api.tag, "not-a-license-id")
    assert wrong.returncode != 0 and "unauthorized" in wrong.stderr.lower(), wrong.stderr
    assert_oci_error(httpx.get(f"{base}/v2/{name_a}/manifests/{api.tag}", headers=basic("nope")), 401, "UNAUTHORIZED")
    assert_oci_error(httpx.get(f"{base}/v2/token", headers=basic("nope")), 401, "UNAUTHORIZED")

    # Another app's license (same team): its token grants nothing for app A, and that token
    # and Basic are DENIED (the client is told why, not sent for yet another token), by tag,
    # by digest and for a blob (HEAD too).
    denied = _inspect(portal_server, name_a, api.tag, world["id_b"])
    assert denied.returncode != 0 and "your license does not cover this app" in denied.stderr, denied.stderr
    token_b = get_token(base, world["id_b"], name_a)
    for path in (f"manifests/{api.tag}", f"manifests/{api.digest}", f"blobs/{api.layer_digests[0]}"):
        assert_oci_error(httpx.get(f"{base}/v2/{name_a}/{path}", headers=bearer(token_b)), 403, "DENIED")
        assert_oci_error(httpx.get(f"{base}/v2/{name_a}/{path}", headers=basic(world["id_b"])), 403, "DENIED")
        assert httpx.head(f"{base}/v2/{name_a}/{path}", headers=basic(world["id_b"])).status_code == 403

    # A repository the upstream credentials can read but app A does not allow (confused deputy),
    # and an app whose team has no such upstream: refused before the upstream hears of it.
    upstream_requests_before = _upstream_requests(basic_registry)
    name_secret = proxy_name("app-a", basic_registry.netloc, "acme/secret-internal")
    assert _inspect(portal_server, name_secret, secret.tag, world["id_a"]).returncode != 0
    for path in (f"manifests/{secret.tag}", f"manifests/{secret.digest}", f"blobs/{secret.layer_digests[0]}"):
        assert_oci_error(httpx.get(f"{base}/v2/{name_secret}/{path}", headers=basic(world["id_a"])), 403, "DENIED")
        assert httpx.head(f"{base}/v2/{name_secret}/{path}", headers=basic(world["id_a"])).status_code == 403
    assert_oci_error(httpx.get(f"{base}/v2/{name_secret}/tags/list", headers=basic(world["id_a"])), 403, "DENIED")

    name_c = proxy_name("app-c", basic_registry.netloc, "acme/api")
    assert _inspect(portal_server, name_c, api.tag, world["id_c"]).returncode != 0
    assert_oci_error(
        httpx.get(f"{base}/v2/{name_c}/manifests/{api.tag}", headers=basic(world["id_c"])), 404, "NAME_UNKNOWN"
    )
    assert _upstream_requests(basic_registry) == upstream_requests_before

    # Hosts nobody configured are never contacted, whatever the license.
    listener = loopback_server()
    unknown = [
        proxy_name("app-a", listener.netloc, "acme/api"),
        f"proxy/app-a/{listener.netloc}/acme/api",
        "proxy/app-a/169.254.169.254/latest",
        "proxy/app-a/localhost__5000/acme/api",
        f"proxy/app-a/localhost__{listener.port}/acme/api",
    ]
    for name in unknown:
        response = httpx.get(f"{base}/v2/{name}/manifests/1.0.0", headers=basic(world["id_a"]))
        assert_oci_error(response, 404, "NAME_UNKNOWN")
        assert_oci_error(httpx.get(f"{base}/v2/{name}/tags/list", headers=basic(world["id_a"])), 404, "NAME_UNKNOWN")
    assert _inspect(portal_server, unknown[0], "1.0.0", world["id_a"]).returncode != 0
    assert listener.requests == []

    _names_are_checked_raw_catalog_is_not_offered_and_nothing_can_be_pushed(world, portal_server, basic_registry)


def test_revoked_and_expired_licenses_stop_pulling_within_the_cache_ttl_even_with_a_live_token(
    world, portal_server, basic_registry
):
    """A token issued before revocation or expiry stops working within LICENSE_CACHE_SECONDS (5 s).

    One license is revoked through the service (which drops the cached state at once), one
    behind its back in the database (the worst case: the cache runs out), one expires."""
    api = basic_registry.images["api"]
    base = portal_server.url
    name = proxy_name("app-a", basic_registry.netloc, "acme/api")
    url = f"{base}/v2/{name}/manifests/{api.tag}"
    actor, app = world["actor"], world["app_a"]
    client = httpx.Client(timeout=10)
    ids, tokens = {}, {}

    def issue(label: str, **fields) -> License:
        license, ids[label] = licenses.license_create(actor=actor, app=app, customer_name=label, **fields)
        tokens[label] = get_token(base, ids[label], name)
        assert client.get(url, headers=bearer(tokens[label])).status_code == 200  # state now cached
        return license

    by_service, in_database = issue("by-service"), issue("in-database")
    expires_at = timezone.now() + timedelta(seconds=3)
    issue("expiring", expires_at=expires_at)
    started = time.monotonic()
    expires_in = (expires_at - timezone.now()).total_seconds()
    licenses.license_revoke(actor=actor, license=by_service)
    License.objects.filter(pk=in_database.pk).update(revoked_at=timezone.now())
    refused_after: dict[str, float] = {}
    while len(refused_after) < 3 and time.monotonic() - started < 12:
        for label, token in tokens.items():
            if label not in refused_after:
                response = client.get(url, headers=bearer(token))
                if response.status_code != 200:
                    assert_oci_error(response, 401, "UNAUTHORIZED")
                    refused_after[label] = time.monotonic() - started
        time.sleep(0.1)
    assert set(refused_after) == set(tokens), refused_after
    assert refused_after["by-service"] <= 1.0, refused_after
    assert refused_after["in-database"] <= 6.0, refused_after
    assert expires_in - 0.3 <= refused_after["expiring"] <= expires_in + 6.0, (expires_in, refused_after)
    for label, token in tokens.items():  # blobs too; no new token; Basic straight to the proxy neither
        assert client.get(f"{base}/v2/{name}/blobs/{api.layer_digests[0]}", headers=bearer(token)).status_code == 401
        assert_oci_error(client.get(f"{base}/v2/token", headers=basic(ids[label])), 401, "UNAUTHORIZED")
        assert client.get(url, headers=basic(ids[label])).status_code == 401
    client.close()


def test_narrowing_an_app_or_unlinking_its_registry_is_enforced_at_the_very_next_request(
    world, portal_server, basic_registry
):
    """The server keeps each app's routes in memory; a change made here (another process)
    reaches it through the shared version at once, not after the routes' few seconds."""
    actor, app = world["actor"], world["app_a"]
    host = basic_registry.netloc.replace(":", "__")
    url = f"{portal_server.url}/v2/{proxy_name('app-a', basic_registry.netloc, 'acme/api')}/manifests/1.0.0"
    headers = basic(world["id_a"])
    client = httpx.Client(timeout=10)
    assert client.get(url, headers=headers).status_code == 200  # routes now kept by the server

    licenses.app_set_repository_rules(actor=actor, app=app, rules=[f"{host}/acme/web"])
    assert_oci_error(client.get(url, headers=headers), 403, "DENIED")
    licenses.app_set_repository_rules(actor=actor, app=app, rules=[f"{host}/acme/api"])
    assert client.get(url, headers=headers).status_code == 200

    registry = ExternalRegistry.objects.get(team=app.team)
    registries.registry_update(actor=actor, registry=registry, apps=["app-b"], skip_validation=True)
    assert_oci_error(client.get(url, headers=headers), 404, "NAME_UNKNOWN")
    client.close()


def _names_are_checked_raw_catalog_is_not_offered_and_nothing_can_be_pushed(world, portal_server, basic_registry):
    """A9, I6, A8 and no push, with raw paths (httpx would normalise `..` away)."""
    api = basic_registry.images["api"]
    host = basic_registry.netloc.replace(":", "__")
    auth = basic(world["id_a"])
    good = f"/v2/proxy/app-a/{host}/acme/api"
    assert raw_request(portal_server.netloc, "GET", f"{good}/manifests/{api.tag}", auth).status_code == 200
    tricks = [
        f"/v2/proxy/app-a/{host}/acme/../acme/api/manifests/{api.tag}",
        f"/v2/proxy/app-a/{host}/acme/../acme/secret-internal/manifests/1.0.0",
        f"/v2/proxy/app-b/../app-a/{host}/acme/api/manifests/{api.tag}",
        f"/v2/proxy/app-a/{host}/acme/%2e%2e/acme/api/manifests/{api.tag}",
        f"/v2/proxy/app-a/{host}/acme%2Fapi/manifests/{api.tag}",
        f"/v2/proxy/app-a/{host}/acme%252Fapi/manifests/{api.tag}",
        f"/v2/proxy/app-a/{host}/acme//api/manifests/{api.tag}",
        f"/v2/proxy/app-a/{host}/acme/api//manifests/{api.tag}",
        f"/v2/proxy/app-a/{host}/acme/./api/manifests/{api.tag}",
        f"/v2/proxy/app-a/{host}/Acme/api/manifests/{api.tag}",
        f"/v2/proxy/App-a/{host}/acme/api/manifests/{api.tag}",
        f"/v2/proxy/app-a/{host}/acme\\api/manifests/{api.tag}",
        f"/v2/proxy/app-a/{host}/acme/api%00/manifests/{api.tag}",
        f"/v2/proxy/app-a/{host}/acme/api%0a/manifests/{api.tag}",
        f"/v2/proxy/app-a/{host}/acme/api/manifests/v1%0d%0aX-Injected:%201",
        f"/v2/proxy/app-a/{host}/acme/api/blobs/sha256:..%2F..%2Fetc",
        f"/v2/proxy/app-a/{host}/acme/api/blobs/md5:{'a' * 32}",
        f"/v2/proxy%2Fapp-a/{host}/acme/api/manifests/{api.tag}",
        f"/v2/proxy/app-a/{host}/{'a' * 256}/manifests/{api.tag}",
    ]
    wrong = {}
    for path in tricks:
        response = raw_request(portal_server.netloc, "GET", path, auth)
        assert "x-injected" not in response.headers
        try:
            code = response.json()["errors"][0]["code"]
        except ValueError:
            code = "not an OCI error"
        if response.status_code not in (400, 404) or code not in OCI_NAME_ERRORS:
            wrong[path] = (response.status_code, code)
    assert wrong == {}

    token = get_token(portal_server.url, world["id_a"], f"proxy/app-a/{host}/acme/api")
    for identity in ({}, auth, bearer(token)):
        for path in ("/v2/_catalog", "/v2/_catalog/", "/v2/_catalog?n=1"):
            response = raw_request(portal_server.netloc, "GET", path, identity)
            assert_oci_error(response, (401, 404))
            assert b"acme" not in response.content

    for method, path in [
        ("PUT", f"{good}/manifests/{api.tag}"),
        ("DELETE", f"{good}/manifests/{api.digest}"),
        ("POST", f"{good}/blobs/uploads/"),
        ("POST", f"{good}/blobs/uploads/?mount={api.layer_digests[0]}&from=acme/secret-internal"),
        ("PATCH", f"{good}/blobs/uploads/0b1c2d"),
        ("PUT", f"{good}/blobs/uploads/0b1c2d?digest={api.layer_digests[0]}"),
        ("DELETE", f"{good}/blobs/{api.layer_digests[0]}"),
        ("POST", f"{good}/tags/list"),
    ]:
        for identity in (auth, bearer(token)):
            response = raw_request(portal_server.netloc, method, path, {**identity, "Content-Length": "0"})
            assert_oci_error(response, (401, 403, 404, 405))
    # The upstream still holds exactly what it held.
    tags = httpx.get(f"{basic_registry.url}/v2/acme/api/tags/list", auth=tuple(basic_registry.creds.split(":", 1)))
    assert api.tag in tags.json()["tags"]
