"""The proxy applies the network guard to registries stored before a rule existed (W3, S7)."""

from __future__ import annotations

import asyncio

import pytest

from delivery.proxy import answers
from delivery.proxy.upstream import open_stream
from delivery.routing import Upstream
from licenses import services as licenses
from portal.outbound.errors import RegistryError
from registries import services as registries
from registries.models import ExternalRegistry
from tests import factories
from tests.proxy.conftest import assert_oci_error, basic, proxy_name, raw_request
from tests.realparts.loopback import Reply


@pytest.mark.parametrize("endpoint", ["http://[::a9fe:a9fe]", "http://[64:ff9b:1::a9fe:a9fe]:5000"])
def test_a_stored_registry_at_the_metadata_address_written_as_ipv6_is_refused_by_the_proxy(team, endpoint):
    """Saved as rows written before the check existed: the proxy refuses before connecting."""
    registry = ExternalRegistry.objects.create(team=team, provider="other", name="old", endpoint=endpoint)

    async def pull():
        return await open_stream(Upstream(registry, "acme/api"), "GET", "manifests/1.0.0", {})

    with pytest.raises(RegistryError) as error:
        asyncio.run(pull())
    assert error.value.category == "blocked" and "169.254.169.254" in error.value.message
    response = answers.upstream_failure(error.value)
    assert response.status_code == 502
    assert b"not reachable under the portal's network rules" in response.content


@pytest.fixture
def only_port_443(settings_for_subprocess):
    settings_for_subprocess["REGISTRIES_ALLOWED_PORTS"] = "443"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_stored_registry_on_a_port_no_longer_allowed_is_not_contacted_by_the_proxy(
    loopback_server, only_port_443, portal_server, actor, team
):
    upstream = loopback_server().on("*", Reply.json({}))
    app = factories.make_app(team, "ports")
    registry = registries.registry_create(
        actor=actor, provider="other", endpoint=upstream.url, username="u", password="p", skip_validation=True
    )
    factories.allow_whole_registry(actor, app, registry)
    _, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    name = proxy_name("ports", upstream.netloc, "acme/api")
    response = raw_request(portal_server.netloc, "GET", f"/v2/{name}/manifests/1.0.0", basic(license_id))
    assert_oci_error(response, 502, "UNAVAILABLE")
    assert "network rules" in response.json()["errors"][0]["message"]
    assert upstream.connections == 0
