"""Against real parts: Distribution upstream, the portal under uvicorn, nginx in front of it as
the operator's front proxy, skopeo pulling through `proxy.vendor.test` (a name only the
clients' HTTP proxy setting maps to nginx; see tests/realparts/front_proxy.py)."""

from __future__ import annotations

import json
import os
import subprocess

import httpx
import pytest

from accounts.models import DomainStatus
from licenses import services as licenses
from registries import services as registries
from tests import factories
from tests.hosts.conftest import set_status
from tests.proxy.conftest import basic, wait_for
from tests.realparts.env import child_env
from tests.realparts.front_proxy import run_front_proxy
from tests.realparts.portal_server import run_portal_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DOMAIN = "proxy.vendor.test"


def _app_with_license(actor, team, upstream, slug: str):
    app = factories.make_app(team, slug)
    registry = registries.registry_create(
        actor=actor,
        provider="other",
        endpoint=upstream.endpoint,
        username=upstream.username,
        password=upstream.password,
    )
    image = upstream.images["api"]
    factories.make_release(actor, app, [(registry.name, image.repository, image.tag)])
    _, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    return app, license_id


@pytest.fixture
def stack(tmp_path, actor, team, outsider_actor, other_team, basic_registry, make_domain):
    """Acme (owner of proxy.vendor.test) and Other, each with an app on the upstream and a
    license; the portal trusting only nginx's address; nginx in front."""
    acme_app, acme_id = _app_with_license(actor, team, basic_registry, "acme-api")
    other_app, other_id = _app_with_license(outsider_actor, other_team, basic_registry, "other-api")
    domain = make_domain(team, DOMAIN)
    env = child_env(PORTAL_TRUSTED_PROXIES="127.0.0.2", DOMAIN_CACHE_SECONDS="1")
    with run_portal_server(tmp_path, env) as portal, run_front_proxy(tmp_path / "nginx", portal.netloc) as front:
        yield {
            "portal": portal,
            "front": front,
            "domain": domain,
            "acme": (acme_app, acme_id),
            "other": (other_app, other_id),
            "upstream": basic_registry,
            "base": f"{DOMAIN}:{front.port}",
        }


def _ref(stack, app) -> str:
    upstream = stack["upstream"]
    image = upstream.images["api"]
    return (
        f"docker://{stack['base']}/proxy/{app.slug}/{upstream.netloc.replace(':', '__')}/{image.repository}:{image.tag}"
    )


def _skopeo_via_front(stack, license_id: str, ref: str, out) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy", "https_proxy")}
    env.update(HTTP_PROXY=stack["front"].url, HTTPS_PROXY=stack["front"].url)
    return subprocess.run(
        ["skopeo", "copy", "--src-tls-verify=false", "--src-creds", f"{license_id}:{license_id}", ref, f"dir:{out}"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip


def _via_front(stack, path: str, **kwargs) -> httpx.Response:
    with httpx.Client(proxy=stack["front"].url, timeout=15) as http:
        return http.get(f"http://{stack['base']}{path}", **kwargs)


def test_skopeo_pulls_through_the_custom_domain_with_the_owning_teams_license_only(stack, tmp_path):
    acme_app, acme_id = stack["acme"]
    other_app, other_id = stack["other"]
    done = _skopeo_via_front(stack, acme_id, _ref(stack, acme_app), tmp_path / "acme")
    assert done.returncode == 0, done.stderr + stack["portal"].log() + stack["front"].log()
    manifest = json.loads((tmp_path / "acme" / "manifest.json").read_text())
    assert [layer["digest"] for layer in manifest["layers"]] == list(stack["upstream"].images["api"].layer_digests)
    # Every request of that pull went through nginx under the custom name, token included.
    access = stack["front"].log()
    assert f"GET http://{stack['base']}/v2/token?" in access and "/blobs/sha256:" in access

    refused = _skopeo_via_front(stack, other_id, _ref(stack, other_app), tmp_path / "other")
    assert refused.returncode != 0
    assert "unauthorized" in refused.stderr.lower() or "401" in refused.stderr, refused.stderr
    assert not (tmp_path / "other" / "manifest.json").exists()
    # Another team's valid license gets what a wrong one gets, at the token service and at /v2/.
    for path in ("/v2/token?service=portal-proxy", "/v2/"):
        theirs = _via_front(stack, path, headers=basic(other_id))
        wrong = _via_front(stack, path, headers=basic("no-such-license"))
        assert (theirs.status_code, theirs.content) == (wrong.status_code, wrong.content) == (401, wrong.content)
        assert theirs.headers.get("www-authenticate") == wrong.headers.get("www-authenticate")
    # The same license pulls on the portal's own host.
    direct = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", f"{other_id}:{other_id}",
         _ref(stack, other_app).replace(stack["base"], stack["portal"].netloc)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert direct.returncode == 0, direct.stderr


def test_the_challenge_names_the_custom_host_and_a_forged_forwarded_host_changes_nothing(stack):
    challenge = _via_front(stack, "/v2/")
    assert challenge.status_code == 401
    assert challenge.headers["www-authenticate"] == (
        f'Bearer realm="http://{stack["base"]}/v2/token",service="portal-proxy"'
    )
    # Straight to uvicorn from 127.0.0.1, which is no trusted proxy: X-Forwarded-* are ignored.
    portal = stack["portal"]
    forged = {"X-Forwarded-Host": stack["base"], "X-Forwarded-Proto": "https"}
    answer = httpx.get(f"{portal.url}/v2/", headers=forged, timeout=10)
    assert answer.headers["www-authenticate"].startswith(f'Bearer realm="http://{portal.netloc}/v2/token"')
    # The portal's own host serves every team, the forged header notwithstanding.
    _, other_id = stack["other"]
    assert httpx.get(f"{portal.url}/v2/", headers={**forged, **basic(other_id)}, timeout=10).status_code == 200


def test_a_domain_that_becomes_lost_stops_being_served(stack, tmp_path):
    _, acme_id = stack["acme"]
    assert _via_front(stack, "/v2/", headers=basic(acme_id)).status_code == 200
    set_status(stack["domain"], DomainStatus.LOST)
    # The portal's process re-reads the verified domains within DOMAIN_CACHE_SECONDS (1 s here).
    gone = wait_for(lambda: _via_front(stack, "/v2/", headers=basic(acme_id)).status_code == 404, timeout=10)
    assert gone, stack["portal"].log()
    answer = _via_front(stack, "/v2/token?service=portal-proxy", headers=basic(acme_id))
    assert answer.status_code == 404 and answer.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    # The pages were never served there; an unknown name gets the same 404 at /v2/.
    with httpx.Client(proxy=stack["front"].url, timeout=15) as http:
        assert http.get(f"http://nobody.vendor.test:{stack['front'].port}/v2/").status_code == 404
        assert http.get(f"http://{stack['base']}/login/").status_code == 400
