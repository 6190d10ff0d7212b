"""The proxy keeps each app's routes (the app and its registries) in the process for a few
seconds, and forgets them the moment any process changes an app or a registry."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from delivery import routing
from licenses import services as licenses
from portal.cache import shared_cache
from registries import services as registries
from tests import factories


@pytest.fixture
def registry(actor, app):
    return registries.registry_create(
        actor=actor, provider="other", endpoint="https://registry.example.test/acme",
        username="u", password="p", skip_validation=True,
    )  # fmt: skip


def _queries(call) -> tuple[object, int]:
    with CaptureQueriesContext(connection) as captured:
        result = call()
    return result, len(captured.captured_queries)


def test_a_second_look_up_asks_the_database_nothing(app, registry):
    first, asked = _queries(lambda: routing.app_routes(app.slug))
    assert asked > 0
    assert [r.pk for r in first.registries] == [registry.pk]
    again, asked_again = _queries(lambda: routing.app_routes(app.slug))
    assert asked_again == 0
    assert again is first


def test_an_unknown_app_is_none_and_kept_as_such(db):
    assert routing.app_routes("no-such-app") is None
    assert _queries(lambda: routing.app_routes("no-such-app")) == (None, 0)


def test_changing_a_registry_here_is_seen_at_the_next_look_up(actor, team, app, registry):
    routing.app_routes(app.slug)
    other = factories.make_app(team, "other")
    registries.registry_update(actor=actor, registry=registry, apps=[other.slug])
    routes, asked = _queries(lambda: routing.app_routes(app.slug))
    assert asked > 0
    assert routes.registries == ()


def test_narrowing_the_app_rules_is_seen_at_the_next_look_up(actor, app, registry):
    assert routing.app_routes(app.slug).app.repository_rules == []
    licenses.app_set_repository_rules(actor=actor, app=app, rules=["registry.example.test/acme/api"])
    assert routing.app_routes(app.slug).app.repository_rules == ["registry.example.test/acme/api"]


@pytest.mark.django_db(transaction=True)
def test_a_change_made_by_another_process_is_seen_through_the_shared_version(team, admin, app, registry):
    kept = routing.app_routes(app.slug)
    # Another process changed a registry: its commit published a new version in Redis.
    shared_cache().set(routing.ROUTES_VERSION_KEY, "changed-elsewhere", timeout=None)
    routes, asked = _queries(lambda: routing.app_routes(app.slug))
    assert asked > 0
    assert routes is not kept


@pytest.mark.django_db(transaction=True)
def test_a_committed_change_publishes_a_new_version(actor, app, registry):
    routing.app_routes(app.slug)
    before = shared_cache().get(routing.ROUTES_VERSION_KEY)
    registries.registry_update(actor=actor, registry=registry, name="renamed")
    assert shared_cache().get(routing.ROUTES_VERSION_KEY) not in (None, before)


def test_routes_are_kept_only_for_a_few_seconds(app, registry, monkeypatch):
    monkeypatch.setattr(routing, "ROUTES_CACHE_SECONDS", 0.0)
    routing.app_routes(app.slug)
    assert _queries(lambda: routing.app_routes(app.slug))[1] > 0


def test_without_the_shared_cache_every_look_up_asks_the_database(app, registry, settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}
    }
    first = routing.app_routes(app.slug)
    again, asked = _queries(lambda: routing.app_routes(app.slug))
    assert asked > 0
    assert [r.pk for r in again.registries] == [r.pk for r in first.registries]
    assert len(routing._routes) == 0


def test_the_process_keeps_a_bounded_number_of_apps(db, monkeypatch):
    assert routing._routes.maxsize == routing.ROUTES_CACHE_ENTRIES
    monkeypatch.setattr(routing._routes, "maxsize", 3)
    for n in range(10):
        routing.app_routes(f"missing-{n}")
    routing.app_routes("missing-7")  # used again: kept, while older ones go
    routing.app_routes("missing-10")
    assert list(routing._routes) == ["missing-9", "missing-7", "missing-10"]
