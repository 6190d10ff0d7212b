"""A vendor-controlled upstream trying to turn its bytes into a page on the portal's origin,
or to crash the proxy with JSON nested 200k deep, malformed or of the wrong shape.

The upstream is a loopback server (tests/realparts/loopback.py) playing the hostile registry;
the portal runs under uvicorn as in production. SECURITY-TESTS W1 and W2.
"""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from licenses import services as licenses
from licenses.models import PullEvent
from registries import services as registries
from tests import factories
from tests.proxy.conftest import assert_oci_error, basic, get_token, wait_for
from tests.realparts.loopback import Reply

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
REGISTRY_CSP = "default-src 'none'; sandbox"
HTML = b"<html><body><script>fetch('/api/v1/tokens/', {method: 'POST'})</script></body></html>"
# What a hostile upstream adds to everything it answers.
HOSTILE = {"Content-Type": "text/html; charset=utf-8", "Set-Cookie": "sessionid=from-upstream; Path=/"}
DEEP = 200_000


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


CONFIG = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(b"{}"), "size": 2}
TYPED = _json({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": CONFIG, "layers": []})
HTML_MANIFEST = _json({"schemaVersion": 2, "mediaType": "text/html", "layers": [], "x": "<script>alert(1)</script>"})
UNTYPED_MANIFEST = _json({"schemaVersion": 2, "config": CONFIG, "layers": []})
UNTYPED_INDEX = _json({"schemaVersion": 2, "manifests": []})


@pytest.fixture
def hostile(loopback_server, actor, team):
    """(upstream, proxy base URL path, license, license ID) for an app on a loopback upstream."""
    up = loopback_server()
    app = factories.make_app(team, "hostile")
    registry = registries.registry_create(
        actor=actor, provider="other", endpoint=up.url, username="vendor", password="secret", skip_validation=True
    )
    factories.allow_whole_registry(actor, app, registry)
    license, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    return up, registry, license, license_id


def _assert_registry_answer(response: httpx.Response) -> None:
    """Data, never a page: no sniffing, no scripts, no cookie, no upstream content type."""
    assert response.headers.get("x-content-type-options") == "nosniff", (response.url, dict(response.headers))
    assert response.headers.get("content-security-policy") == REGISTRY_CSP, (response.url, dict(response.headers))
    assert "set-cookie" not in response.headers, (response.url, dict(response.headers))
    assert "text/html" not in response.headers.get("content-type", ""), (response.url, dict(response.headers))


def test_upstream_html_never_becomes_a_page_and_every_registry_answer_is_sandboxed(hostile, portal_server):
    up, _registry, license, license_id = hostile
    html_blob = _digest(HTML)
    up.on(f"/v2/acme/web/blobs/{html_blob}", Reply(200, HOSTILE, HTML))
    up.on("/v2/acme/web/manifests/html", Reply(200, HOSTILE, HTML_MANIFEST))
    up.on(f"/v2/acme/web/manifests/{_digest(HTML_MANIFEST)}", Reply(200, HOSTILE, HTML_MANIFEST))
    up.on(f"/v2/acme/web/manifests/{_digest(TYPED)}", Reply(200, {"Content-Type": OCI_MANIFEST}, TYPED))
    up.on("/v2/acme/web/manifests/typed", Reply(200, HOSTILE, TYPED))
    up.on("/v2/acme/web/manifests/untyped", Reply(200, HOSTILE, UNTYPED_MANIFEST))
    up.on("/v2/acme/web/manifests/untyped-index", Reply(200, HOSTILE, UNTYPED_INDEX))
    up.on(
        "/v2/acme/web/manifests/declared", Reply(200, {"Content-Type": f"{DOCKER_LIST}; charset=utf-8"}, UNTYPED_INDEX)
    )
    name = f"proxy/hostile/{up.netloc.replace(':', '__')}/acme/web"
    v2 = f"{portal_server.url}/v2/{name}"
    seen: list[httpx.Response] = []
    with httpx.Client(headers=basic(license_id), timeout=30, event_hooks={"response": [seen.append]}) as http:
        # A blob the upstream calls text/html, with a script and a cookie: bytes, nothing more.
        blob = http.get(f"{v2}/blobs/{html_blob}")
        assert blob.status_code == 200 and blob.content == HTML
        assert blob.headers["content-type"] == "application/octet-stream"
        head = http.head(f"{v2}/blobs/{html_blob}")
        assert head.status_code == 200 and head.headers["content-type"] == "application/octet-stream"

        # A manifest saying it is text/html is no manifest, by tag, by digest or HEAD by digest.
        assert_oci_error(http.get(f"{v2}/manifests/html"), 502, "MANIFEST_INVALID")
        assert_oci_error(http.get(f"{v2}/manifests/{_digest(HTML_MANIFEST)}"), 502, "MANIFEST_INVALID")
        assert http.head(f"{v2}/manifests/{_digest(HTML_MANIFEST)}").status_code == 502
        assert http.head(f"{v2}/manifests/html").status_code == 502

        # The body's manifest type wins over the upstream's text/html; without one, the
        # upstream's type counts only if it is a manifest type, else the shape decides.
        typed = http.get(f"{v2}/manifests/typed")
        assert typed.status_code == 200 and typed.content == TYPED
        assert typed.headers["content-type"] == OCI_MANIFEST
        assert http.get(f"{v2}/manifests/untyped").headers["content-type"] == OCI_MANIFEST
        assert http.get(f"{v2}/manifests/untyped-index").headers["content-type"] == OCI_INDEX
        assert http.get(f"{v2}/manifests/declared").headers["content-type"] == DOCKER_LIST
        by_digest = http.head(f"{v2}/manifests/{_digest(TYPED)}")
        assert by_digest.status_code == 200 and by_digest.headers["content-type"] == OCI_MANIFEST

        # Every other kind of registry answer carries the same headers.
        token = get_token(portal_server.url, license_id, name)
        assert http.get(f"{v2}/manifests/typed", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        anonymous = httpx.Client(timeout=10, event_hooks={"response": [seen.append]})
        assert anonymous.get(f"{portal_server.url}/v2/").status_code == 401  # the challenge
        assert anonymous.get(f"{v2}/manifests/typed").status_code == 401
        assert anonymous.get(f"{portal_server.url}/v2/token", headers=basic("not-a-license")).status_code == 401
        assert anonymous.get(f"{portal_server.url}/v2/token", headers=basic(license_id)).status_code == 200
        assert anonymous.post(f"{portal_server.url}/hooks/registry", content=b"{}").status_code == 401
        assert http.get(f"{portal_server.url}/v2/").status_code == 200
        assert http.get(f"{portal_server.url}/v2/_catalog").status_code == 404
        assert http.post(f"{v2}/blobs/uploads/").status_code == 405
        assert http.get(f"{portal_server.url}/v2/no/such/thing").status_code == 404
        anonymous.close()
    assert len(seen) >= 20
    for response in seen:
        _assert_registry_answer(response)
    assert {r.status_code for r in seen} >= {200, 401, 404, 405, 502}

    refused = wait_for(lambda: PullEvent.objects.filter(license=license, status=502).count() >= 3, timeout=5)
    assert refused, list(PullEvent.objects.values("reference", "status", "reason"))
    reasons = set(PullEvent.objects.filter(license=license, status=502).values_list("reason", flat=True))
    assert reasons == {"invalid manifest: not a manifest media type", "invalid manifest: not a manifest content type"}


def test_deep_malformed_and_misshapen_upstream_json_gets_oci_errors_logged_and_in_the_pull_log(hostile, portal_server):
    up, registry, license, license_id = hostile
    json_type = {"Content-Type": "application/json"}
    manifests = {
        "deep-array": b"[" * DEEP,
        "deep-object": b'{"a":' * DEEP,
        "deep-closed": b"[" * DEEP + b"]" * DEEP,
        "malformed": b'{"schemaVersion": 2, "mediaType": ',
        "not-utf8": b'{"schemaVersion": 2, "x": "\xff\xfe"}',
        "top-level-list": b"[]",
        "top-level-string": _json(OCI_MANIFEST),
        "media-type-number": _json({"schemaVersion": 2, "mediaType": 42}),
    }
    tag_lists = {
        "deep-array": b'{"name": "x", "tags": ' + b"[" * DEEP,
        "malformed": b'{"name": "x", "tags": ["a", ',
        "top-level-list": b'["1.0"]',
        "tags-string": _json({"name": "x", "tags": "1.0"}),
        "tags-numbers": _json({"name": "x", "tags": [1, 2]}),
        "tags-header-injection": _json({"name": "x", "tags": ["a\r\nX-Injected: 1"]}),
    }
    for repository, body in manifests.items():
        assert len(body) < 4 * 1024 * 1024
        up.on(f"/v2/acme/{repository}/manifests/1.0.0", Reply(200, {"Content-Type": OCI_MANIFEST}, body))
    for repository, body in tag_lists.items():
        up.on(f"/v2/acme/{repository}/tags/list", Reply(200, json_type, body))
    # An error body is parsed for its code too (read up to 64 KiB).
    up.on("/v2/acme/deep-404/manifests/1.0.0", Reply(404, json_type, b"[" * 60_000))
    up.on("/v2/acme/deep-404/tags/list", Reply(404, json_type, b'{"errors": ' + b"[" * 60_000))
    up.on("/v2/acme/null-tags/tags/list", Reply.json({"name": "x", "tags": None}))
    base = f"{portal_server.url}/v2/proxy/hostile/{up.netloc.replace(':', '__')}/acme"
    seen: list[httpx.Response] = []
    with httpx.Client(headers=basic(license_id), timeout=30, event_hooks={"response": [seen.append]}) as http:
        for repository in manifests:
            response = http.get(f"{base}/{repository}/manifests/1.0.0")
            assert_oci_error(response, 502, "MANIFEST_INVALID")
        for repository in tag_lists:
            response = http.get(f"{base}/{repository}/tags/list")
            assert_oci_error(response, 502, "UNAVAILABLE")
            assert "tag list is invalid" in response.json()["errors"][0]["message"]
            assert "x-injected" not in response.headers
        assert_oci_error(http.get(f"{base}/deep-404/manifests/1.0.0"), 404, "MANIFEST_UNKNOWN")
        assert_oci_error(http.get(f"{base}/deep-404/tags/list"), 404, "NAME_UNKNOWN")
        assert http.get(f"{base}/null-tags/tags/list").json()["tags"] == []
    for response in seen:
        _assert_registry_answer(response)
        assert response.headers["content-type"] == "application/json"

    log = portal_server.log()
    assert "Traceback" not in log and "Internal Server Error" not in log, log[-3000:]
    name = f"proxy/hostile/{up.netloc.replace(':', '__')}/acme/deep-array"
    assert f"invalid manifest {name}@1.0.0 from registry {registry.pk}: not JSON" in log, log[-3000:]
    assert f"invalid tag list of {name} from registry {registry.pk}" in log, log[-3000:]
    assert "[[[[" not in log and "X-Injected" not in log and "\\xff" not in log

    def rows():
        found = {
            (e.repository.rsplit("/", 1)[1], e.kind): (e.status, e.reason)
            for e in PullEvent.objects.filter(license=license)
        }
        return found if len(found) >= len(manifests) + len(tag_lists) + 3 else None

    events = wait_for(rows, timeout=5)
    assert events, list(PullEvent.objects.values("repository", "kind", "status", "reason"))
    assert events[("deep-array", "manifest")] == (502, "invalid manifest: not JSON")
    assert events[("top-level-list", "manifest")] == (502, "invalid manifest: not a manifest media type")
    assert events[("deep-array", "tags")] == (502, "invalid tag list: not JSON")
    assert events[("top-level-list", "tags")] == (502, "invalid tag list: not a JSON object")
    assert events[("tags-string", "tags")] == (502, "invalid tag list: tags is not a list of tags")
    assert events[("deep-404", "tags")] == (404, "upstream 404")
    assert events[("null-tags", "tags")][0] == 200


def test_sha512_and_malformed_digests_get_digest_invalid_without_asking_upstream(hostile, portal_server):
    up, _registry, _license, license_id = hostile
    base = f"{portal_server.url}/v2/proxy/hostile/{up.netloc.replace(':', '__')}/acme/api"
    sha512 = "sha512:" + hashlib.sha512(b"layer").hexdigest()
    with httpx.Client(headers=basic(license_id), timeout=10) as http:
        for path in (f"manifests/{sha512}", f"blobs/{sha512}"):
            for response in (http.get(f"{base}/{path}"), http.get(f"{base}/{path}", headers={"Authorization": ""})):
                assert_oci_error(response, 400, "DIGEST_INVALID")
                assert response.json()["errors"][0]["message"] == "only sha256 digests are supported"
                _assert_registry_answer(response)
            assert http.head(f"{base}/{path}").status_code == 400
        for digest in ("sha256:abc", "sha256:" + "A" * 64, "sha512:", ":abc"):
            for path in (f"manifests/{digest}", f"blobs/{digest}"):
                response = http.get(f"{base}/{path}")
                assert_oci_error(response, 400, "DIGEST_INVALID")
                assert response.json()["errors"][0]["message"] == "invalid digest"
    assert up.requests == []
