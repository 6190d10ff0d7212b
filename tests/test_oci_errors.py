"""The one OCI error answer (portal/ocierrors.py): the token service and the proxy write it alike."""

from __future__ import annotations

import pytest
from django.test import Client

from portal.ocierrors import oci_error

pytestmark = pytest.mark.django_db


def test_an_error_code_clients_do_not_know_is_refused_when_written():
    with pytest.raises(ValueError, match="NOT_A_CODE"):
        oci_error(400, "NOT_A_CODE", "typo")


@pytest.mark.parametrize("path", ["/v2/token", "/v2/", "/v2/_catalog"])
def test_token_service_and_proxy_errors_have_one_shape_and_the_registry_api_version(path):
    response = Client().get(path, REMOTE_ADDR="192.0.2.10")
    assert response.status_code in (401, 404), response.content
    [error] = response.json()["errors"]
    assert set(error) == {"code", "message", "detail"} and error["code"] in ("UNAUTHORIZED", "UNSUPPORTED")
    assert response["Docker-Distribution-API-Version"] == "registry/2.0"
