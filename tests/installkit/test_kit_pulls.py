"""End to end with real parts: a customer downloads the kit from the portal (uvicorn), kubectl
renders it, and skopeo pulls every rewritten reference through the proxy from a real
Distribution upstream, with nothing but the kit's own Secret as credentials."""

from __future__ import annotations

import base64
import subprocess

import httpx
import pytest

from licenses import releases
from licenses import services as licenses
from tests import factories
from tests.installkit import kits

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120, check=False)


def test_every_rewritten_reference_pulls_through_the_proxy_with_the_kits_secret(
    portal_server, basic_registry, team, admin, tmp_path
):
    actor = factories.actor_of(admin, team)
    app = factories.make_app(team, "acme-api")
    registry = factories.connect_registry(actor, basic_registry)
    upstream = basic_registry.netloc
    # Pulls follow the app's repository rules (and, with deny by default, the released images).
    licenses.app_set_repository_rules(actor=actor, app=app, rules=[f"{upstream.replace(':', '__')}/acme/*"])
    license, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    api, multi, v2s2 = (basic_registry.images[name] for name in ("api", "multi", "v2s2"))
    settings_file = f"""\
images:
- {{source: "{registry.name}", name: {api.repository}, tag: "{api.tag}"}}
- {{source: "{registry.name}", name: {multi.repository}, digest: "{multi.digest}"}}
- {{source: "{registry.name}", name: {v2s2.repository}, tag: "{v2s2.tag}"}}
- {{source: public, name: redis, tag: "7"}}
"""
    manifests = "---\n".join(
        [
            kits.workload(
                "Deployment", "api", f'containers: [{{name: api, image: "{upstream}/{api.repository}:{api.tag}"}}]'
            ),
            kits.cronjob("report", f"{upstream}/{multi.repository}@{multi.digest}"),
            f"""\
apiVersion: v1
kind: Pod
metadata: {{name: tools}}
spec:
  containers:
  - {{name: open, image: "{upstream}/{v2s2.repository}:{v2s2.tag}"}}
  - {{name: cache, image: "redis:7"}}
""",
        ]
    )
    release, _ = releases.release_create(
        actor=actor, app=app, files={"acme.yaml": settings_file, "app.yaml": manifests}, promote_to="stable"
    )
    # What the resolver would find: api private, v2s2 public; multi not resolved yet (private).
    release.images.filter(repository=api.repository).update(visibility="private")
    release.images.filter(repository=v2s2.repository).update(visibility="public")

    response = httpx.get(
        f"{portal_server.url}/customer/v1/install-kit.tar.gz", auth=(license_id, license_id), timeout=30
    )
    assert response.status_code == 200, response.text + portal_server.log()
    folder = kits.unpack(response.content, tmp_path)
    rendered = kits.kustomize(folder)

    proxy = f"{portal_server.netloc}/proxy/acme-api/{upstream.replace(':', '__')}"
    rewritten = sorted(i for i in kits.images(rendered) if i.startswith(portal_server.netloc))
    assert rewritten == sorted([f"{proxy}/{api.repository}:{api.tag}", f"{proxy}/{multi.repository}@{multi.digest}"])
    assert f"{upstream}/{v2s2.repository}:{v2s2.tag}" in kits.images(rendered) and "redis:7" in kits.images(rendered)

    (secret,) = kits.secrets(rendered)
    authfile = tmp_path / "auth.json"
    authfile.write_bytes(base64.b64decode(secret["data"][".dockerconfigjson"]))  # as the kubelet reads it
    for number, reference in enumerate(rewritten):
        pulled = _skopeo(
            "copy", "--all", "--src-tls-verify=false", "--authfile", str(authfile),
            f"docker://{reference}", f"dir:{tmp_path / f'pulled-{number}'}",
        )  # fmt: skip
        assert pulled.returncode == 0, reference + "\n" + pulled.stderr + portal_server.log()
    # The Secret is what lets them in.
    anonymous = _skopeo("inspect", "--raw", "--tls-verify=false", "--no-creds", f"docker://{rewritten[0]}")
    assert anonymous.returncode != 0 and "unauthorized" in anonymous.stderr.lower(), anonymous.stderr

    # Revoked: the kit's Secret stops working at the proxy, and no new kit is handed out.
    licenses.license_revoke(actor=actor, license=license)
    refused = httpx.get(f"{portal_server.url}/customer/v1/install-kit.tar.gz", auth=(license_id, license_id))
    assert refused.status_code == 401 and refused.json()["message"].startswith("This license is revoked")
