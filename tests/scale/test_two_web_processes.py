"""Two web processes (two uvicorn processes on two ports) against one PostgreSQL database and one
Redis, as two web machines behind a load balancer: what one is told, the other follows within
the bound the docs promise (docs/deployment.md). Nothing is shared between them but the
database, the cache and var/."""

from __future__ import annotations

import time
from contextlib import ExitStack

import httpx
import pytest

from licenses import services as licenses
from tests import factories
from tests.proxy.conftest import bearer, get_token, proxy_name, skopeo, wait_for
from tests.realparts.env import child_env, stop
from tests.realparts.portal_server import PortalServer, start_portal

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DOMAIN_CACHE_SECONDS = 3
REVOCATION_BOUND = 5.0  # seconds: README, "a revoked license stops pulling through the proxy within 5 seconds"


@pytest.fixture
def two_web_processes(transactional_db, tmp_path, dns_server):
    """Web processes `a` and `b`, each a uvicorn of its own on a port of its own, on the test's
    database, Redis and var dir; custom domains looked up on the loopback dnsmasq."""
    env = child_env(PORTAL_DNS_NAMESERVERS=dns_server.address, DOMAIN_CACHE_SECONDS=str(DOMAIN_CACHE_SECONDS))
    with ExitStack() as stack:
        servers = []
        for name in ("a", "b"):
            server = start_portal(env, tmp_path / f"web-{name}.log")
            stack.callback(stop, server.process)
            servers.append(server)
        assert servers[0].port != servers[1].port and servers[0].process.pid != servers[1].process.pid
        yield tuple(servers)


def _manifest(server: PortalServer, name: str, tag: str, token: str) -> int:
    return httpx.get(f"{server.url}/v2/{name}/manifests/{tag}", headers=bearer(token), timeout=10).status_code


def test_a_license_revoked_through_one_process_is_refused_by_the_other_within_5_seconds(
    two_web_processes, basic_registry, actor, admin, team, tmp_path
):
    a, b = two_web_processes
    app = factories.make_app(team, "two-procs")
    registry = factories.connect_registry(actor, basic_registry)
    image = basic_registry.images["api"]
    factories.make_release(actor, app, [(registry.name, image.repository, image.tag)])
    license, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    name = proxy_name(app.slug, basic_registry.netloc, image.repository)
    ref = f"docker://{b.netloc}/{name}:{image.tag}"

    # b pulls for the license (a real skopeo pull), so the license's state is in the shared cache.
    pulled = skopeo("copy", "--src-tls-verify=false", "--src-creds", f"{license_id}:{license_id}",
                    ref, f"dir:{tmp_path / 'before'}")  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr + b.log()
    # A client in mid-pull holds a token from b: a Bearer request is judged on the license's
    # cached state (LICENSE_CACHE_SECONDS), not its row, so this is the path the bound is about.
    token = get_token(b.url, license_id, name)
    assert _manifest(b, name, image.tag, token) == 200

    api = {"Authorization": f"Bearer {factories.user_token(admin, team)}"}
    revoked = httpx.post(f"{a.url}/api/v1/licenses/{license.pk}/revoke/", headers=api, timeout=10)
    assert revoked.status_code == 200, revoked.text
    started = time.monotonic()
    assert revoked.json()["revoked_at"]

    refused = wait_for(lambda: _manifest(b, name, image.tag, token) == 401, timeout=REVOCATION_BOUND + 1)
    elapsed = time.monotonic() - started
    assert refused and elapsed <= REVOCATION_BOUND, f"b still served the revoked license after {elapsed:.1f}s"
    again = skopeo("copy", "--src-tls-verify=false", "--src-creds", f"{license_id}:{license_id}",
                   ref, f"dir:{tmp_path / 'after'}")  # fmt: skip
    assert again.returncode != 0
    assert "401" in again.stderr or "unauthorized" in again.stderr.lower(), again.stderr


def _v2_on(server: PortalServer, host: str) -> httpx.Response:
    return httpx.get(f"{server.url}/v2/", headers={"Host": host}, timeout=10)


def test_a_custom_domain_verified_through_one_process_is_answered_by_the_other_within_the_cache_time(
    two_web_processes, dns_server, admin, team
):
    a, b = two_web_processes
    domain = "proxy.two-procs.test"
    # b has just read its map of verified domains, and the domain is not in it: unknown host.
    assert _v2_on(b, domain).status_code in (400, 404)

    api = {"Authorization": f"Bearer {factories.user_token(admin, team)}"}
    added = httpx.post(
        f"{a.url}/api/v1/custom-domains/", json={"domain": domain, "kind": "proxy"}, headers=api, timeout=10
    )
    assert added.status_code == 201, added.text
    challenge = next(r for r in added.json()["records"] if r["type"] == "TXT")
    dns_server.serve({challenge["name"]: challenge["value"]})
    verified = httpx.post(f"{a.url}/api/v1/custom-domains/{domain}/verify/", headers=api, timeout=10)
    assert verified.status_code == 200 and verified.json()["status"] == "verified", verified.text
    started = time.monotonic()
    assert _v2_on(a, domain).status_code == 401  # a forgot its own map on the change

    def answered_by_b() -> httpx.Response | None:
        response = _v2_on(b, domain)
        return response if response.status_code == 401 else None

    response = wait_for(answered_by_b, timeout=DOMAIN_CACHE_SECONDS + 2)
    elapsed = time.monotonic() - started
    assert response is not None, b.log()[-2000:]
    assert elapsed <= DOMAIN_CACHE_SECONDS + 0.5, f"b answered the new domain only after {elapsed:.1f}s"
    # b answers as that team's proxy door: the token realm names the custom domain.
    assert f"//{domain}/v2/token" in response.headers["www-authenticate"]
