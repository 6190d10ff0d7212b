"""Real skopeo pulls through the proxy (uvicorn) from real Distribution upstreams."""

from __future__ import annotations

import hashlib
import json
import subprocess

import httpx
import pytest

from licenses import services as licenses
from licenses.models import PullEvent
from registries import services as registries
from registries.models import ExternalRegistry
from tests import factories
from tests.proxy.conftest import ALLOWED_RESPONSE_HEADERS, basic, wait_for
from tests.realparts.images import DOCKER_MANIFEST, OCI_MANIFEST, push

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


PAGED_TAGS = ("1.0.0", "1.1.0", "2.0.0", "2.1.0", "3.0.0")


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _setup(team, admin, upstream, app_slug="acme-api"):
    actor = factories.actor_of(admin, team)
    app = factories.make_app(team, app_slug)
    registry = registries.registry_create(
        actor=actor,
        provider="other",
        endpoint=upstream.endpoint,
        username=upstream.username,
        password=upstream.password,
    )
    # What the license may pull: the upstream's seeded images, listed in a release on stable.
    factories.make_release(actor, app, [(registry.name, i.repository, i.tag) for i in upstream.images.values()])
    license, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    return app, license, license_id


def _skopeo(*args, check=True):
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120, check=check)


def _proxy_ref(server, app, upstream, image):
    host = upstream.netloc.replace(":", "__")
    return f"docker://{server.netloc}/proxy/{app.slug}/{host}/{image.repository}:{image.tag}"


@pytest.mark.parametrize("upstream_fixture", ["basic_registry", "token_registry"])
def test_skopeo_copies_an_image_through_the_proxy(request, upstream_fixture, portal_server, team, admin, tmp_path):
    upstream = request.getfixturevalue(upstream_fixture)
    app, license, license_id = _setup(team, admin, upstream)
    image = upstream.images["api"]
    result = _skopeo(
        "copy", "--src-tls-verify=false", "--src-creds", f"{license_id}:{license_id}",
        _proxy_ref(portal_server, app, upstream, image), f"dir:{tmp_path / 'out'}", check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + portal_server.log()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [layer["digest"] for layer in manifest["layers"]] == list(image.layer_digests)
    _assert_pull_logged(app, license, upstream, image)


def _wait_for_pull_events(license, count: int) -> list[PullEvent]:
    """The pull log is written off the byte stream; give it a moment."""
    done = wait_for(lambda: PullEvent.objects.filter(license=license).count() >= count, timeout=5)
    assert done, list(PullEvent.objects.filter(license=license).values_list("kind", "reference", "status", "reason"))
    return list(PullEvent.objects.filter(license=license).order_by("created_at", "pk"))


def _assert_pull_logged(app, license, upstream, image) -> None:
    """The pull log holds the manifest and every blob skopeo fetched, with their sizes."""
    manifest = json.loads(image.manifest)
    blobs = {d["digest"]: d["size"] for d in [manifest["config"], *manifest["layers"]]}
    events = _wait_for_pull_events(license, 1 + len(blobs))
    name = f"proxy/{app.slug}/{upstream.netloc.replace(':', '__')}/{image.repository}"
    assert {e.repository for e in events} == {name}
    assert all(e.app_id == app.pk and e.status == 200 and e.reason == "" for e in events)
    manifests = [e for e in events if e.kind == "manifest"]
    assert manifests and manifests[0].reference == image.tag and manifests[0].bytes == len(image.manifest)
    assert {e.reference: e.bytes for e in events if e.kind == "blob"} == blobs
    license.refresh_from_db()
    assert license.last_pull_at is not None and license.last_pull_at >= events[0].created_at


def test_pull_variants_multi_arch_digests_docker_v2s2_head_range_tags_and_headers(
    portal_server, team, admin, basic_registry, oci_layouts, tmp_path
):
    app, license, license_id = _setup(team, admin, basic_registry)
    creds = ["--src-tls-verify=false", "--src-creds", f"{license_id}:{license_id}"]
    host = basic_registry.netloc.replace(":", "__")
    base = f"{portal_server.netloc}/proxy/{app.slug}/{host}"

    # The whole multi-arch index, then by index digest and by one child's digest.
    multi = basic_registry.images["multi"]
    out = tmp_path / "all"
    result = _skopeo("copy", "--all", *creds, f"docker://{base}/acme/multi:{multi.tag}", f"dir:{out}", check=False)
    assert result.returncode == 0, result.stderr + portal_server.log()
    assert _sha256((out / "manifest.json").read_bytes()) == multi.digest
    for child in multi.child_digests:
        assert _sha256((out / f"{child.split(':')[1]}.manifest.json").read_bytes()) == child
    assert all((out / d.split(":")[1]).exists() for d in multi.layer_digests)
    raw = _skopeo("inspect", "--raw", "--tls-verify=false", "--creds", f"{license_id}:{license_id}",
                  f"docker://{base}/acme/multi@{multi.digest}")  # fmt: skip
    assert _sha256(raw.stdout.encode()) == multi.digest
    child = multi.child_digests[1]
    result = _skopeo("copy", *creds, f"docker://{base}/acme/multi@{child}", f"dir:{tmp_path / 'child'}", check=False)
    assert result.returncode == 0, result.stderr
    child_manifest = (tmp_path / "child" / "manifest.json").read_bytes()
    assert _sha256(child_manifest) == child
    assert json.loads(child_manifest)["layers"][0]["digest"] in multi.layer_digests

    # Docker schema 2, byte for byte.
    v2s2 = basic_registry.images["v2s2"]
    result = _skopeo("copy", *creds, f"docker://{base}/acme/v2s2:{v2s2.tag}", f"dir:{tmp_path / 'v2s2'}", check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "v2s2" / "manifest.json").read_bytes() == v2s2.manifest
    assert json.loads(v2s2.manifest)["mediaType"] == DOCKER_MANIFEST

    # Plain HTTP with Basic credentials straight to the proxy (no token).
    api = basic_registry.images["api"]
    v2 = f"http://{portal_server.netloc}/v2/proxy/{app.slug}/{host}"
    url = f"{v2}/acme/api"
    seen: list[httpx.Response] = []
    with httpx.Client(headers=basic(license_id), timeout=15, event_hooks={"response": [seen.append]}) as http:
        assert http.get(f"http://{portal_server.netloc}/v2/").status_code == 200
        anonymous = httpx.get(f"http://{portal_server.netloc}/v2/")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == (
            f'Bearer realm="http://{portal_server.netloc}/v2/token",service="portal-proxy"'
        )
        got = http.get(f"{url}/manifests/{api.tag}")
        assert got.status_code == 200 and got.content == api.manifest
        assert got.headers["docker-content-digest"] == api.digest
        assert got.headers["content-type"] == OCI_MANIFEST
        head = http.head(f"{url}/manifests/{api.tag}")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["docker-content-digest"] == api.digest
        assert int(head.headers["content-length"]) == len(api.manifest)
        docker_only = http.head(f"{v2}/acme/v2s2/manifests/{v2s2.tag}", headers={"Accept": DOCKER_MANIFEST})
        assert docker_only.headers["content-type"] == DOCKER_MANIFEST
        assert docker_only.headers["docker-content-digest"] == v2s2.digest

        layer = api.layer_digests[0]
        data = (oci_layouts["api"].directory / "blobs" / "sha256" / layer.split(":")[1]).read_bytes()
        blob = http.get(f"{url}/blobs/{layer}")
        assert blob.status_code == 200 and blob.content == data
        assert blob.headers["docker-content-digest"] == layer
        blob_head = http.head(f"{url}/blobs/{layer}")
        assert blob_head.status_code == 200 and int(blob_head.headers["content-length"]) == len(data)
        ranged = http.get(f"{url}/blobs/{layer}", headers={"Range": "bytes=100-1123"})
        assert ranged.status_code == 206 and ranged.content == data[100:1124]
        assert ranged.headers["content-range"] == f"bytes 100-1123/{len(data)}"
        tail = http.get(f"{url}/blobs/{layer}", headers={"Range": f"bytes={len(data) - 10}-"})
        assert tail.status_code == 206 and tail.content == data[-10:]

        # tags/list, paginated; n is capped, and bad values are refused.
        for tag in PAGED_TAGS:
            push(oci_layouts["api"], basic_registry.netloc, "acme/paged", tag=tag, creds=basic_registry.creds)
        factories.allow_whole_registry(factories.actor_of(admin, team), app, ExternalRegistry.objects.get(team=team))
        paged = f"{v2}/acme/paged/tags/list"
        first = http.get(paged, params={"n": 2})
        assert first.status_code == 200, first.text
        assert first.json() == {"name": f"proxy/{app.slug}/{host}/acme/paged", "tags": sorted(PAGED_TAGS)[:2]}
        link = first.headers["link"]
        assert link.startswith(f"</v2/proxy/{app.slug}/{host}/acme/paged/tags/list?n=2&last=") and 'rel="next"' in link
        pages = [first.json()["tags"]]
        while link:
            page = http.get(f"http://{portal_server.netloc}{link[1 : link.index('>')]}")
            pages.append(page.json()["tags"])
            link = page.headers.get("link")
        assert pages == [["1.0.0", "1.1.0"], ["2.0.0", "2.1.0"], ["3.0.0"]]
        assert http.get(paged, params={"n": 10**9}).json()["tags"] == sorted(PAGED_TAGS)
        assert http.get(paged).json()["tags"] == sorted(PAGED_TAGS)
        for bad in ({"n": -1}, {"n": 0}, {"n": "ten"}, {"n": 2, "last": "x" * 10_000}):
            response = http.get(paged, params=bad)
            assert response.status_code in (400, 414), (bad, response.status_code)

        # Errors are OCI JSON too, and leak nothing of the upstream.
        missing = http.get(f"{url}/manifests/9.9.9")
        assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        unknown_blob = http.get(f"{url}/blobs/sha256:{'0' * 64}")
        assert unknown_blob.status_code == 404 and unknown_blob.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
        assert http.get(f"{v2}/acme/nothing-here/tags/list").status_code == 404

    secrets_ = [basic_registry.netloc, basic_registry.password, "test-registry", 'realm="test', "Docker-Distribution"]
    for response in seen:
        assert set(response.headers) <= ALLOWED_RESPONSE_HEADERS, (response.url, set(response.headers))
        head_text = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        assert basic_registry.netloc not in head_text and basic_registry.password not in head_text
        if response.headers.get("content-type", "").startswith("application/json"):
            assert not any(s in response.text for s in secrets_[:3]), response.text


def test_ecr_and_gcr_upstreams_pull_through_the_proxy(
    moto_ecr, ecr_basic_registry, service_account_key, google_token_endpoint, gcr_token_registry,
    portal_server, actor, team, tmp_path,
):  # fmt: skip
    app = factories.make_app(team, "cloud-app")
    ecr = registries.registry_create(
        actor=actor, provider="ecr", endpoint=ecr_basic_registry.endpoint, region="us-east-1",
        username="AKIAIOSFODNN7EXAMPLE", secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )  # fmt: skip
    key = service_account_key()
    gcr = registries.registry_create(
        actor=actor, provider="gcr", endpoint=gcr_token_registry.endpoint, service_account_key=key.text
    )
    factories.allow_whole_registry(actor, app, ecr, gcr)
    _, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    for upstream, short in ((ecr_basic_registry, "api"), (gcr_token_registry, "v2s2")):
        image = upstream.images[short]
        out = tmp_path / f"{short}-{upstream.port}"
        result = _skopeo(
            "copy", "--src-tls-verify=false", "--src-creds", f"{license_id}:{license_id}",
            _proxy_ref(portal_server, app, upstream, image), f"dir:{out}", check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr + portal_server.log()
        assert (out / "manifest.json").read_bytes() == image.manifest
        assert all((out / d.split(":")[1]).exists() for d in image.layer_digests)
    assert google_token_endpoint.requests, "the GCR access token came from google-auth's flow"
    assert key.secret_marker not in portal_server.log()
