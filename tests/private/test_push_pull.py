"""Vendors push to and customers pull from the private registry, authorised by the portal."""

from __future__ import annotations

import subprocess

import pytest

from tests import factories

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _skopeo(*args):
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)


def test_a_vendor_pushes_with_a_user_token_and_a_license_pulls(
    private_registry, oci_layouts, team, admin, customer_license, tmp_path
):
    token = factories.user_token(admin, team)
    layout = oci_layouts["api"]
    push = _skopeo(
        "copy", "--dest-tls-verify=false", "--dest-creds", f"admin@acme.test:{token}",
        f"oci:{layout.directory}:{layout.tag}", f"docker://{private_registry.netloc}/acme-api/api:1.0.0",
    )  # fmt: skip
    assert push.returncode == 0, push.stderr + private_registry.log()
    pull = _skopeo(
        "copy", "--src-tls-verify=false", "--src-creds", f"LICENSE_ID:{customer_license.license_id}",
        f"docker://{private_registry.netloc}/acme-api/api:1.0.0", f"dir:{tmp_path / 'out'}",
    )  # fmt: skip
    assert pull.returncode == 0, pull.stderr + private_registry.log()
