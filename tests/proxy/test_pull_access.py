"""Deny by default, with real skopeo and raw HTTP against uvicorn and a real Distribution: a
license pulls the repositories listed in the `images:` of releases promoted to its channel,
plus the app's repository rules; anything else on the same upstream is DENIED with a message
that names the fix. Changes made here (a promotion, a rule, a license's channel) reach the
server process at once through the routes' shared version and the license state's cache."""

from __future__ import annotations

import httpx
import pytest
from django.conf import settings

from licenses import releases
from licenses import services as licenses
from licenses.models import PullEvent, Refusal
from portal import registry_tokens
from tests import factories
from tests.proxy.conftest import assert_oci_error, basic, bearer, get_token, proxy_name, skopeo, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FIX = "list it in a release's images: or add a rule in the app's Repository access"


@pytest.fixture
def world(actor, team, basic_registry):
    """App acme on the basic-auth Distribution; release 1 lists acme/api and is on stable; a
    license on stable and one on beta. acme/secret-internal is on the same upstream, in no release."""
    app = factories.make_app(team, "acme")
    registry = factories.connect_registry(actor, basic_registry)
    api = basic_registry.images["api"]
    release = factories.make_release(actor, app, [(registry.name, api.repository, api.tag)])
    stable, stable_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    beta, beta_id = licenses.license_create(actor=actor, app=app, customer_name="Initech", channel="beta")
    return {
        "actor": actor, "app": app, "release": release, "stable": stable, "stable_id": stable_id,
        "beta": beta, "beta_id": beta_id,
        "api": proxy_name("acme", basic_registry.netloc, "acme/api"),
        "secret": proxy_name("acme", basic_registry.netloc, "acme/secret-internal"),
        "upstream": basic_registry.netloc,
    }  # fmt: skip


def _inspect(server, name: str, tag: str, license_id: str):
    return skopeo(
        "inspect", "--raw", "--tls-verify=false", "--creds", f"{license_id}:{license_id}",
        f"docker://{server.netloc}/{name}:{tag}", timeout=60,
    )  # fmt: skip


def _denied_message(world, repository: str, channel: str) -> str:
    return (
        f"{world['upstream']}/{repository} is not in any release promoted to channel {channel} of app acme, "
        f"nor in the app's repository rules; {FIX}"
    )


def test_a_license_pulls_an_image_listed_in_a_release_promoted_to_its_channel(
    world, portal_server, basic_registry, tmp_path
):
    api = basic_registry.images["api"]
    result = skopeo(
        "copy", "--src-tls-verify=false", "--src-creds", f"{world['stable_id']}:{world['stable_id']}",
        f"docker://{portal_server.netloc}/{world['api']}:{api.tag}", f"dir:{tmp_path / 'out'}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + portal_server.log()
    assert (tmp_path / "out" / "manifest.json").read_bytes() == api.manifest


def test_an_image_in_no_release_and_no_rule_is_denied_naming_the_fix(world, portal_server, basic_registry):
    secret = basic_registry.images["secret"]
    message = _denied_message(world, "acme/secret-internal", "stable")
    base = portal_server.url

    # skopeo: its token names no access; the proxy then says why, not "authentication required".
    result = _inspect(portal_server, world["secret"], secret.tag, world["stable_id"])
    assert result.returncode != 0
    assert "denied" in result.stderr.lower() and message in result.stderr, result.stderr

    # A raw token request: the scope is left out of the token, and the refusal is in the pull
    # log with its reason; the token used there anyway gets the same DENIED.
    token = get_token(base, world["stable_id"], world["secret"], world["api"])
    access = registry_tokens.verify(token, audience=settings.PROXY_SERVICE)["access"]
    assert [a["name"] for a in access] == [world["api"]]
    tokens = PullEvent.objects.filter(license=world["stable"], kind="token")
    assert wait_for(lambda: tokens.count() >= 2), "skopeo's token request and this one"
    assert set(tokens.values_list("repository", "status", "reason")) == {(world["secret"], 403, Refusal.NOT_ALLOWED)}
    for headers in (bearer(token), basic(world["stable_id"])):
        for path in (f"manifests/{secret.tag}", f"blobs/{secret.layer_digests[0]}", "tags/list"):
            response = httpx.get(f"{base}/v2/{world['secret']}/{path}", headers=headers)
            assert_oci_error(response, 403, "DENIED")
            assert response.json()["errors"][0]["message"] == message
    # The image the release lists pulls with that token.
    api = basic_registry.images["api"]
    assert httpx.get(f"{base}/v2/{world['api']}/manifests/{api.tag}", headers=bearer(token)).content == api.manifest


def test_a_beta_license_pulls_a_stable_only_image_once_a_release_listing_it_is_promoted_to_beta(
    world, portal_server, basic_registry
):
    api = basic_registry.images["api"]
    before = _inspect(portal_server, world["api"], api.tag, world["beta_id"])
    assert before.returncode != 0
    assert _denied_message(world, "acme/api", "beta") in before.stderr, before.stderr
    # The server keeps the app's routes for seconds; the promotion's commit drops them at once.
    releases.release_promote(actor=world["actor"], release=world["release"], channel="beta")
    after = _inspect(portal_server, world["api"], api.tag, world["beta_id"])
    assert after.returncode == 0, after.stderr + portal_server.log()
    assert after.stdout.encode() == api.manifest


def test_an_app_rule_allows_a_repository_and_removing_it_denies_again_even_a_token_granted_before(
    world, portal_server, basic_registry
):
    secret = basic_registry.images["secret"]
    host = world["upstream"].replace(":", "__")
    assert _inspect(portal_server, world["secret"], secret.tag, world["stable_id"]).returncode != 0
    licenses.app_set_repository_rules(actor=world["actor"], app=world["app"], rules=[f"{host}/acme/*"])
    allowed = _inspect(portal_server, world["secret"], secret.tag, world["stable_id"])
    assert allowed.returncode == 0, allowed.stderr + portal_server.log()
    assert allowed.stdout.encode() == secret.manifest
    token = get_token(portal_server.url, world["stable_id"], world["secret"])

    licenses.app_set_repository_rules(actor=world["actor"], app=world["app"], rules=[])
    again = _inspect(portal_server, world["secret"], secret.tag, world["stable_id"])
    assert again.returncode != 0 and FIX in again.stderr, again.stderr
    # The proxy decides on every request: a token granted under the rule no longer pulls.
    response = httpx.get(f"{portal_server.url}/v2/{world['secret']}/manifests/{secret.tag}", headers=bearer(token))
    assert_oci_error(response, 403, "DENIED")


def test_a_license_moved_to_another_channel_pulls_what_that_channel_has_at_once(world, portal_server, basic_registry):
    api = basic_registry.images["api"]
    token = get_token(portal_server.url, world["stable_id"], world["api"])
    url = f"{portal_server.url}/v2/{world['api']}/manifests/{api.tag}"
    assert httpx.get(url, headers=bearer(token)).content == api.manifest  # the license state is now cached
    licenses.license_update(actor=world["actor"], license=world["stable"], channel="beta")
    response = httpx.get(url, headers=bearer(token))
    assert_oci_error(response, 403, "DENIED")
    assert response.json()["errors"][0]["message"] == _denied_message(world, "acme/api", "beta")
