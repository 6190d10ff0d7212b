"""Real skopeo pulls through the proxy (uvicorn) from real Distribution upstreams."""

from __future__ import annotations

import json
import subprocess

import pytest

from licenses import services as licenses
from registries import services as registries
from tests import factories

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _setup(team, admin, upstream, app_slug="acme-api"):
    actor = factories.actor_of(admin, team)
    app = factories.make_app(team, app_slug)
    registries.registry_create(
        actor=actor, provider="other", endpoint=upstream.endpoint, username=upstream.username, password=upstream.password
    )
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
    app, _, license_id = _setup(team, admin, upstream)
    image = upstream.images["api"]
    result = _skopeo(
        "copy", "--src-tls-verify=false", "--src-creds", f"{license_id}:{license_id}",
        _proxy_ref(portal_server, app, upstream, image), f"dir:{tmp_path / 'out'}", check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + portal_server.log()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [layer["digest"] for layer in manifest["layers"]] == list(image.layer_digests)
