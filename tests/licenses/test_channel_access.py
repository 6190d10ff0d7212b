"""What a license may pull, decided without an upstream: the token service's grants (Django's
test client) and the routes each process keeps. A license pulls the repositories listed in
the `images:` of releases promoted to its channel, plus the app's repository rules; nothing
else, and the refusal names the fix. Registries are saved without contacting them."""

from __future__ import annotations

import base64
import itertools
import secrets

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from delivery import routing
from delivery.proxy import pull_log
from licenses import releases
from licenses import services as licenses
from licenses.models import License, Promotion, PullEvent, Refusal
from portal import registry_tokens
from portal.cache import shared_cache
from registries import services as registries
from tests import factories

pytestmark = pytest.mark.django_db

UPSTREAM = "127.0.0.1:5000"
HOST = "127.0.0.1__5000"
_run = secrets.token_hex(2)
_addresses = itertools.count(1)


def proxy(repository: str, host: str = HOST) -> str:
    return f"proxy/acme/{host}/{repository}"


@pytest.fixture
def world(actor, team):
    """App acme served by `vendor` (127.0.0.1:5000) and Docker Hub; release 1 (acme/api and
    public redis) on stable; a license on stable and one on beta."""
    app = factories.make_app(team, "acme")
    registries.registry_create(
        actor=actor, provider="other", name="vendor", endpoint=f"http://{UPSTREAM}", username="u",
        password="p", skip_validation=True,
    )  # fmt: skip
    registries.registry_create(actor=actor, provider="dockerhub", username="acme", password="p", skip_validation=True)
    release = factories.make_release(actor, app, [("vendor", "acme/api", "1.0.0"), ("public", "redis", "7.2")])
    stable, stable_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    beta, beta_id = licenses.license_create(actor=actor, app=app, customer_name="Initech", channel="beta")
    return {"actor": actor, "app": app, "release": release, "stable": stable, "stable_id": stable_id,
            "beta": beta, "beta_id": beta_id}  # fmt: skip


def _token(license_id: str, *names: str):
    params = "&".join([f"service={settings.PROXY_SERVICE}"] + [f"scope=repository:{n}:pull" for n in names])
    auth = "Basic " + base64.b64encode(f"{license_id}:{license_id}".encode()).decode()
    address = f"2001:db8:{_run}:cc::{next(_addresses):x}"
    return Client().get(f"/v2/token?{params}", HTTP_AUTHORIZATION=auth, REMOTE_ADDR=address)


def _granted(license_id: str, *names: str) -> set[str]:
    response = _token(license_id, *names)
    assert response.status_code == 200, response.content
    claims = registry_tokens.verify(response.json()["token"], audience=settings.PROXY_SERVICE)
    return {a["name"] for a in claims["access"]}


def test_a_license_is_granted_the_images_of_releases_promoted_to_its_channel_and_nothing_else(world):
    asked = [proxy("acme/api"), proxy("acme/secret-internal"), "proxy/acme/docker.io/redis",
             "proxy/acme/index.docker.io/library/redis", "proxy/acme/docker.io/library/postgres"]  # fmt: skip
    # Docker Hub under any of its names, with or without library/: the release stored it as
    # index.docker.io/library/redis.
    assert _granted(world["stable_id"], *asked) == {asked[0], asked[2], asked[3]}
    assert _granted(world["beta_id"], *asked) == set()


@pytest.mark.django_db(transaction=True)  # the pull log's writer thread sees committed rows only
def test_a_refused_repository_is_in_the_pull_log_as_not_allowed(world):
    _granted(world["stable_id"], proxy("acme/api"), proxy("acme/secret-internal"))
    pull_log.flush()
    rows = list(PullEvent.objects.values_list("repository", "kind", "status", "reason"))
    assert rows == [(proxy("acme/secret-internal"), "token", 403, Refusal.NOT_ALLOWED)]


def test_promoting_a_release_to_beta_grants_its_images_to_beta_licenses_at_once(world):
    assert _granted(world["beta_id"], proxy("acme/api")) == set()  # the routes are now kept
    releases.release_promote(actor=world["actor"], release=world["release"], channel="beta")
    assert _granted(world["beta_id"], proxy("acme/api")) == {proxy("acme/api")}


def test_every_release_ever_promoted_to_the_channel_counts_not_only_the_current_one(world):
    actor, app = world["actor"], world["app"]
    factories.make_release(actor, app, [("vendor", "acme/api", "2.0.0")])  # now stable's current
    assert _granted(world["stable_id"], "proxy/acme/docker.io/redis") == {"proxy/acme/docker.io/redis"}


def test_a_release_not_promoted_anywhere_grants_nothing(world):
    factories.make_release(world["actor"], world["app"], [("vendor", "acme/tools", "1.0")], promote_to="")
    assert _granted(world["stable_id"], proxy("acme/tools")) == set()


def test_images_of_the_portals_own_registry_are_never_proxied(world, settings):
    settings.REGISTRY_HOST = UPSTREAM  # even where the private registry's host is a vendor's registry's
    factories.make_release(world["actor"], world["app"], [("replicated", "worker", "1.0")])
    assert _granted(world["stable_id"], proxy("acme/worker")) == set()


def test_an_app_rule_allows_and_removing_it_denies_again(world):
    actor, app = world["actor"], world["app"]
    licenses.app_set_repository_rules(actor=actor, app=app, rules=[f"{HOST}/acme/*"])
    assert _granted(world["beta_id"], proxy("acme/secret-internal")) == {proxy("acme/secret-internal")}
    licenses.app_set_repository_rules(actor=actor, app=app, rules=[])
    assert _granted(world["beta_id"], proxy("acme/secret-internal")) == set()


def test_moving_a_license_to_another_channel_changes_what_it_is_granted(world):
    licenses.license_update(actor=world["actor"], license=world["beta"], channel="stable")
    assert _granted(world["beta_id"], proxy("acme/api")) == {proxy("acme/api")}


def test_the_denial_names_the_repository_the_channel_the_app_and_the_fix(world):
    routes = routing.app_routes("acme")
    name = routing.parse_proxy_name(proxy("acme/secret-internal"))
    with pytest.raises(routing.Denied) as denied:
        routing.route_pull(routes, name, world["stable"].channel_id)
    assert str(denied.value) == (
        "127.0.0.1:5000/acme/secret-internal is not in any release promoted to channel stable of app acme, "
        "nor in the app's repository rules; list it in a release's images: or add a rule in the app's "
        "Repository access"
    )
    hub = routing.parse_proxy_name("proxy/acme/docker.io/postgres")
    with pytest.raises(routing.Denied, match=r"^index\.docker\.io/library/postgres is not in any release"):
        routing.route_pull(routes, hub, world["beta"].channel_id)
    # A host no registry of the app serves is unknown, not denied.
    with pytest.raises(routing.NameUnknown):
        routing.route_pull(routes, routing.parse_proxy_name("proxy/acme/quay.io/acme/api"), world["stable"].channel_id)


def test_the_routes_keep_each_channels_images_and_a_second_look_up_asks_nothing(world):
    routing.app_routes("acme")
    with CaptureQueriesContext(connection) as asked:
        routes = routing.app_routes("acme")
    assert len(asked.captured_queries) == 0
    by_name = {c.name: c.repositories for c in routes.channels.values()}
    assert by_name == {
        "stable": frozenset({"127.0.0.1:5000/acme/api", "index.docker.io/library/redis"}),
        "beta": frozenset(),
        "unstable": frozenset(),
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["promote", "create", "delete promotion", "new channel"])
def test_a_committed_release_or_promotion_publishes_a_new_routes_version(world, change):
    actor, app = world["actor"], world["app"]
    routing.app_routes("acme")
    before = shared_cache().get(routing.ROUTES_VERSION_KEY)
    if change == "promote":
        releases.release_promote(actor=actor, release=world["release"], channel="unstable")
    elif change == "create":
        factories.make_release(actor, app, [("vendor", "acme/api", "2.0")], promote_to="")
    elif change == "delete promotion":
        Promotion.objects.filter(release=world["release"]).delete()
    else:
        releases.channel_create(actor=actor, app=app, name="lts")
    assert shared_cache().get(routing.ROUTES_VERSION_KEY) not in (None, before)
    assert "acme" not in routing._routes


def test_a_license_state_cached_before_a_channel_change_is_forgotten(world):
    uid = str(world["beta"].uid)
    assert licenses.license_state(uid).channel_id == world["beta"].channel_id  # now cached
    licenses.license_update(actor=world["actor"], license=world["beta"], channel="stable")
    assert licenses.license_state(uid).channel_id == License.objects.get(pk=world["beta"].pk).channel_id
    assert licenses.license_state(uid).channel_id == world["stable"].channel_id
