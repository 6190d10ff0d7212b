"""A team's registry domain against real parts: the private registry (Distribution, configured by
`manage.py registry_config`) and the portal's token service behind one nginx name,
`registry.vendor.test`, routed as docs/custom-domains.md shows; skopeo pushes and pulls there."""

from __future__ import annotations

import os
import subprocess

import httpx
import pytest
from django.core.cache import cache

from accounts.models import DomainKind
from delivery import customer_auth
from portal import ratelimit
from tests import factories
from tests.realparts.env import child_env
from tests.realparts.front_proxy import run_front_proxy

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DOMAIN = "registry.vendor.test"


@pytest.fixture
def settings_for_subprocess(transactional_db) -> dict[str, str]:
    """The portal (and `manage.py registry_config`) trusting only nginx's address."""
    return child_env(PORTAL_TRUSTED_PROXIES="127.0.0.2")


@pytest.fixture
def front(tmp_path, portal_server, private_registry, team, app, make_domain):
    cache.delete(ratelimit.slot("customer-auth:addr:127.0.0.1", customer_auth.RATE_WINDOW))
    make_domain(team, DOMAIN, kind=DomainKind.REGISTRY)
    with run_front_proxy(tmp_path / "nginx", portal_server.netloc, registry=(DOMAIN, private_registry.netloc)) as proxy:
        yield proxy


def _skopeo(front, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy", "https_proxy")}
    env.update(HTTP_PROXY=front.url, HTTPS_PROXY=front.url)
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120, env=env, check=False)


def test_a_teams_registry_domain_takes_pushes_and_pulls_and_hands_out_its_own_realm(
    front, team, other_team, customer_license, oci_layouts, tmp_path, private_registry
):
    base = f"{DOMAIN}:{front.port}"
    ours, theirs = factories.service_token(team), factories.service_token(other_team)
    pushed = _skopeo(
        front, "copy", "--dest-tls-verify=false", "--dest-creds", f"ci:{ours}",
        oci_layouts["api"].source, f"docker://{base}/acme-api/api:1.0.0",
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr + front.log() + private_registry.log()[-2000:]
    license_id = customer_license.license_id
    pulled = _skopeo(
        front, "copy", "--src-tls-verify=false", "--src-creds", f"{license_id}:{license_id}",
        f"docker://{base}/acme-api/api:1.0.0", f"dir:{tmp_path / 'pulled'}",
    )  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    assert f"GET http://{base}/v2/token?" in front.log()  # the realm sent skopeo to this name

    with httpx.Client(proxy=front.url, timeout=15) as http:
        challenge = http.get(f"http://{base}/v2/")
        assert challenge.status_code == 401
        assert challenge.headers["www-authenticate"].startswith(f'Bearer realm="http://{base}/v2/token",service=')
        # Another team's token gets nothing from this name; on the portal's own host it would.
        query = "/v2/token?service=portal-registry&scope=repository:acme-api/api:pull"
        refused = http.get(f"http://{base}{query}", auth=("ci", theirs))
        assert refused.status_code == 401
        assert http.get(f"http://{base}{query}", auth=("ci", ours)).status_code == 200
    assert httpx.get(f"http://127.0.0.1:{front.port}{query}", auth=("ci", theirs), timeout=10).status_code == 200
    pushed_by_them = _skopeo(
        front, "copy", "--dest-tls-verify=false", "--dest-creds", f"ci:{theirs}",
        oci_layouts["api"].source, f"docker://{base}/acme-api/api:theirs",
    )  # fmt: skip
    assert pushed_by_them.returncode != 0
