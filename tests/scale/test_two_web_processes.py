"""Two web processes (two uvicorn processes on two ports) against one PostgreSQL database and one
Redis, as two web machines behind a load balancer: what one is told, the other follows within
the bound the docs promise (docs/deployment.md). Nothing is shared between them but the
database, the cache and var/; for the proxy's cache, one bucket (moto's S3 server), each with a
PORTAL_NODE_NAME and a staging folder of its own, as on two machines."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
from contextlib import ExitStack

import httpx
import pytest

from delivery.models import CachedObject
from delivery.proxy import cache, fill
from licenses import services as licenses
from registries import services as registries
from tests import factories
from tests.proxy.conftest import basic, bearer, get_token, proxy_name, skopeo, wait_for
from tests.realparts.env import child_env, stop
from tests.realparts.images import build_image, push
from tests.realparts.portal_server import PortalServer, start_portal
from tests.realparts.slowlink import SlowLink

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DOMAIN_CACHE_SECONDS = 3
REVOCATION_BOUND = 5.0  # seconds: README, "a revoked license stops pulling through the proxy within 5 seconds"
METRICS_TOKEN = "scale-metrics-token"


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
    app, registry, license, license_id = factories.licensed_images(actor, team, basic_registry, "two-procs")
    image = basic_registry.images["api"]
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


# --- the proxy's cache: one bucket, two machines ------------------------------------------


@pytest.fixture
def two_machines_one_bucket(transactional_db, tmp_path, moto_ecr, monkeypatch, settings):
    """Web processes `a` and `b` as on two machines: one database, one Redis and ONE BUCKET (a
    bucket of moto's S3 server as PROXY_CACHE_URL), but each its own PORTAL_NODE_NAME, staging
    folder and metrics folder. This process reads the same bucket (settings.PROXY_CACHE_URL)."""
    import boto3

    bucket = f"proxy-cache-{secrets.token_hex(4)}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_ecr.url)
    boto3.client("s3", endpoint_url=moto_ecr.url).create_bucket(Bucket=bucket)
    settings.PROXY_CACHE_URL = f"s3://{bucket}/cache"
    with ExitStack() as stack:
        servers = []
        for name in ("a", "b"):
            env = child_env(
                PROXY_CACHE_URL=settings.PROXY_CACHE_URL,
                PORTAL_NODE_NAME=f"web-{name}",
                PROXY_CACHE_STAGING_DIR=str(tmp_path / f"staging-{name}"),
                PROMETHEUS_MULTIPROC_DIR=str(tmp_path / f"metrics-{name}"),
                METRICS_TOKEN=METRICS_TOKEN,
            )
            server = start_portal(env, tmp_path / f"web-{name}.log")
            stack.callback(stop, server.process)
            servers.append(server)
        yield tuple(servers)


def _cache_counts(server: PortalServer, kind: str) -> dict[str, float]:
    """portal_proxy_cache_total of this process alone (its own metrics folder), by result."""
    text = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10).text
    pattern = re.compile(rf'^portal_proxy_cache_total{{kind="{kind}",result="(\w+)"}} (\S+)$', re.M)
    return {result: float(value) for result, value in pattern.findall(text)}


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_an_image_pulled_through_one_machine_is_served_by_the_other_from_the_bucket_without_the_upstream(
    two_machines_one_bucket, own_upstream, actor, team, tmp_path
):
    a, b = two_machines_one_bucket
    app, registry, license, license_id = factories.licensed_images(actor, team, own_upstream, "one-bucket")
    image = own_upstream.images["api"]
    name = proxy_name(app.slug, own_upstream.netloc, image.repository)

    def pull(server: PortalServer, into):
        return skopeo("copy", "--src-tls-verify=false", "--src-creds", f"{license_id}:{license_id}",
                      f"docker://{server.netloc}/{name}:{image.tag}", f"dir:{into}")  # fmt: skip

    first = pull(a, tmp_path / "via-a")
    assert first.returncode == 0, first.stderr + a.log()
    blobs = CachedObject.objects.filter(team=team, kind=CachedObject.BLOB)
    assert wait_for(lambda: blobs.count() == len(image.layer_digests) + 1), list(blobs.values_list("digest"))
    for row in blobs:  # in the bucket, under the team's key, whole
        assert cache.store().kind == "s3"
        assert cache.store().stat(cache.object_key(team.pk, row.digest)).size == row.size
    assert not list((tmp_path / "staging-a").iterdir()), "a staging file was left behind"
    fetched = {d: own_upstream.answered_gets("blobs", d) for d in blobs.values_list("digest", flat=True)}
    assert set(fetched.values()) == {1}
    manifests = own_upstream.answered_gets("manifests", image.tag)

    own_upstream.stop()
    second = pull(b, tmp_path / "via-b")
    assert second.returncode == 0, second.stderr + b.log()
    for digest in fetched:
        assert _sha256((tmp_path / "via-b" / digest.partition(":")[2]).read_bytes()) == digest
    assert _sha256((tmp_path / "via-b" / "manifest.json").read_bytes()) == image.digest
    # Not one more request reached the upstream (its log outlives it), and b says it hit its cache.
    assert {d: own_upstream.answered_gets("blobs", d) for d in fetched} == fetched
    assert own_upstream.answered_gets("manifests", image.tag) == manifests
    assert _cache_counts(b, "blob").get("hit") == len(fetched)
    assert "miss" not in _cache_counts(b, "blob")


LINK_RATE = 4 * 1024 * 1024  # bytes per second: the 8 MiB layer takes ~2 s to fetch


def test_cold_requests_for_one_blob_on_two_machines_make_one_upstream_fetch(
    two_machines_one_bucket, own_upstream, actor, team, tmp_path
):
    a, b = two_machines_one_bucket
    big = push(
        build_image(tmp_path / "big", seed="scale-big", layers=1, layer_size=8 * 1024 * 1024),
        own_upstream.netloc, "acme/big", creds=own_upstream.creds,
    )  # fmt: skip
    link = SlowLink(own_upstream.port, LINK_RATE)  # so the fetch is still running when b asks
    try:
        registry = registries.registry_create(
            actor=actor, provider="other", endpoint=f"http://{link.netloc}",
            username=own_upstream.username, password=own_upstream.password,
        )  # fmt: skip
        app = factories.make_app(team, "one-fetch")
        factories.make_release(actor, app, [(registry.name, big.repository, big.tag)])
        license, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
        digest = big.layer_digests[0]
        path = f"/v2/{proxy_name(app.slug, link.netloc, big.repository)}/blobs/{digest}"
        key = fill.claim_key(team.pk, digest)

        async def pull_all() -> tuple[list, list, fill.Claim | None]:
            async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=12)) as client:

                async def one(server: PortalServer):
                    response = await client.get(server.url + path, headers=basic(license_id))
                    return response.status_code, _sha256(response.content)

                on_a = [asyncio.create_task(one(a)) for _ in range(3)]
                # b asks only once a's fetch is under way: the claim names its size.
                deadline = time.monotonic() + 30
                while (claim := await fill.read_claim(key)) is None or claim.size is None:
                    assert time.monotonic() < deadline, a.log()[-3000:]
                    await asyncio.sleep(0.02)
                on_b = [asyncio.create_task(one(b)) for _ in range(3)]
                return await asyncio.gather(*on_a), await asyncio.gather(*on_b), claim

        from_a, from_b, claim = asyncio.run(pull_all())
    finally:
        link.stop()
    assert claim.node == "web-a" and claim.state == fill.FILLING
    assert from_a == [(200, digest)] * 3, from_a
    assert from_b == [(200, digest)] * 3, (from_b, b.log()[-3000:])
    assert own_upstream.answered_gets("blobs", digest) == 1, own_upstream.log_tail()
    # b followed a's fetch (through the bucket: its node name differs), it did not fetch its own.
    assert _cache_counts(b, "blob") == {"joined": 3.0}, _cache_counts(b, "blob")
    assert _cache_counts(a, "blob") == {"miss": 1.0, "joined": 2.0}, _cache_counts(a, "blob")
    cached = CachedObject.objects.get(team=team, digest=digest)
    assert cache.store().stat(cache.object_key(team.pk, digest)).size == cached.size
