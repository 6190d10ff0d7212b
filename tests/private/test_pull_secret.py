"""The pull secret a vendor hands the customer, used verbatim as skopeo's auth file, pulls
through the proxy and from the private registry; revoking the license stops both."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess

import pytest
import yaml

from delivery import pullsecret
from licenses import services as licenses
from registries import services as registries
from tests import factories

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _skopeo(*args):
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120, check=False)


def _auth_file(secret_yaml: str, path) -> dict:
    """Writes the Secret's .dockerconfigjson, byte for byte, to `path`; returns it decoded."""
    document = yaml.safe_load(secret_yaml)
    assert document["type"] == "kubernetes.io/dockerconfigjson"
    raw = base64.b64decode(document["data"][".dockerconfigjson"], validate=True)
    path.write_bytes(raw)
    path.chmod(0o600)
    return json.loads(raw)


def _manifest_layers(directory) -> list[str]:
    return [layer["digest"] for layer in json.loads((directory / "manifest.json").read_text())["layers"]]


def test_the_pull_secret_as_an_auth_file_pulls_through_the_proxy_and_from_the_registry(
    portal_server, basic_registry, private_registry, oci_layouts, actor, team, admin, customer_license,
    admin_api, settings, tmp_path,
):  # fmt: skip
    registry = registries.registry_create(
        actor=actor,
        provider="other",
        endpoint=basic_registry.endpoint,
        username=basic_registry.username,
        password=basic_registry.password,
    )
    api = basic_registry.images["api"]
    factories.make_release(actor, customer_license.license.app, [(registry.name, api.repository, api.tag)])
    layout = oci_layouts["api"]
    pushed = _skopeo(
        "copy", "--dest-tls-verify=false", "--dest-creds", f"admin@acme.test:{factories.user_token(admin, team)}",
        layout.source, f"docker://{private_registry.netloc}/acme-api/api:1.0.0",
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr + private_registry.log()
    license = customer_license.license

    # The vendor downloads the secret from the API, reached at the portal's own address.
    settings.REGISTRY_HOST = private_registry.netloc
    response = admin_api.get(f"/api/v1/licenses/{license.pk}/pull-secret", HTTP_HOST=portal_server.netloc)
    assert response.status_code == 200, response.content
    auth_file = tmp_path / "auth.json"
    config = _auth_file(response.content.decode(), auth_file)
    assert set(config["auths"]) == {portal_server.netloc, private_registry.netloc}

    upstream_image = basic_registry.images["api"]
    through_proxy = (
        f"docker://{portal_server.netloc}/proxy/acme-api/{basic_registry.netloc.replace(':', '__')}/acme/api:1.0.0"
    )
    from_registry = f"docker://{private_registry.netloc}/acme-api/api:1.0.0"
    common = ["copy", "--authfile", str(auth_file), "--src-tls-verify=false"]

    proxied = _skopeo(*common, through_proxy, f"dir:{tmp_path / 'proxied'}")
    assert proxied.returncode == 0, proxied.stderr + portal_server.log()
    assert _manifest_layers(tmp_path / "proxied") == list(upstream_image.layer_digests)

    private = _skopeo(*common, from_registry, f"dir:{tmp_path / 'private'}")
    assert private.returncode == 0, private.stderr + private_registry.log()
    assert _manifest_layers(tmp_path / "private") == list(layout.layer_digests)

    # The same file, once the license is revoked: both token requests are refused.
    licenses.license_revoke(actor=actor, license=license)
    for source, name in ((through_proxy, "proxy"), (from_registry, "registry")):
        refused = _skopeo(*common, source, f"dir:{tmp_path / ('refused-' + name)}")
        assert refused.returncode != 0, name
        assert "unauthorized" in refused.stderr.lower() or "authentication required" in refused.stderr.lower(), (
            name,
            refused.stderr,
        )


def test_the_rendered_secret_with_explicit_hosts_works_as_is(
    portal_server, private_registry, oci_layouts, team, customer_license, tmp_path
):
    """render_pull_secret() itself, with the hosts passed in (no request, no settings)."""
    layout = oci_layouts["api"]
    pushed = _skopeo(
        "copy", "--dest-tls-verify=false", "--dest-creds", f"anything:{factories.service_token(team)}",
        layout.source, f"docker://{private_registry.netloc}/acme-api/api:1.0.0",
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr + private_registry.log()
    text = pullsecret.render_pull_secret(
        customer_license.license,
        customer_license.license_id,
        namespace="globex",
        proxy_host=portal_server.netloc,
        registry_host=private_registry.netloc,
    )
    auth_file = tmp_path / "auth.json"
    _auth_file(text, auth_file)
    inspect = _skopeo(
        "inspect", "--raw", "--authfile", str(auth_file), "--tls-verify=false",
        f"docker://{private_registry.netloc}/acme-api/api:1.0.0",
    )  # fmt: skip
    assert inspect.returncode == 0, inspect.stderr + private_registry.log()
    assert "sha256:" + hashlib.sha256(inspect.stdout.encode()).hexdigest() == layout.digest
