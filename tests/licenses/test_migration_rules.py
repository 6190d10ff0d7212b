"""Migration 0005: apps that relied on "no repository rules = everything" get explicit rules
(one `host/*` or `host/prefix/*` per registry serving them) and their licenses follow stable,
because pulls are now denied unless a release or a rule names the repository. Run with
Django's MigrationExecutor from 0004 to 0006 on the test database."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

REGISTRIES = ("registries", "0002_private_images")  # the latest; it needs licenses 0002 only
BEFORE = [("licenses", "0004_releases_channels"), REGISTRIES]
AFTER = [("licenses", "0006_license_channel_required"), REGISTRIES]


@pytest.fixture
def executor(transactional_db):
    """The schema at 0004 for the test, the latest again afterwards (for the tests after it)."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    yield executor
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def _old_rows(executor):
    """Teams, apps, registries and licenses as rows at 0004 (historical models: no channels yet)."""
    models = executor.loader.project_state(BEFORE).apps
    Team = models.get_model("accounts", "Team")
    App = models.get_model("licenses", "App")
    License = models.get_model("licenses", "License")
    ExternalRegistry = models.get_model("registries", "ExternalRegistry")

    acme = Team.objects.create(name="Acme", slug="acme")
    other = Team.objects.create(name="Other", slug="other")
    shop = App.objects.create(team=acme, name="Shop", slug="shop")
    tools = App.objects.create(team=acme, name="Tools", slug="tools")
    narrowed = App.objects.create(team=acme, name="Narrowed", slug="narrowed", repository_rules=["quay.io/acme/api"])
    lonely = App.objects.create(team=other, name="Lonely", slug="lonely")

    def registry(team, name, endpoint, *, apps=None):
        row = ExternalRegistry.objects.create(
            team=team, name=name, provider="other", endpoint=endpoint, all_apps=apps is None
        )
        if apps:
            row.apps.set(apps)
        return row

    registry(acme, "local", "http://127.0.0.1:5000")  # serves all of Acme's apps
    registry(acme, "hub", "docker.io")  # Docker Hub under another of its names
    registry(acme, "quay", "https://Quay.io/acme/", apps=[shop])  # a prefix, named apps only
    registry(other, "elsewhere", "https://ghcr.io/other")  # another team's: never Acme's rules
    for app, customer in ((shop, "Globex"), (tools, "Initech"), (lonely, "Hooli")):
        License.objects.create(
            app=app, customer_name=customer, lookup_hash=f"hash-{customer}", license_id_encrypted="x", id_prefix="abc"
        )
    return {"shop": shop.pk, "tools": tools.pk, "narrowed": narrowed.pk, "lonely": lonely.pk}


def test_apps_without_rules_get_a_rule_per_registry_serving_them_and_licenses_follow_stable(executor):
    ids = _old_rows(executor)
    executor = MigrationExecutor(connection)  # a fresh graph, as `manage.py migrate` would load it
    executor.migrate(AFTER)
    models = executor.loader.project_state(AFTER).apps
    App = models.get_model("licenses", "App")
    License = models.get_model("licenses", "License")

    rules = {slug: App.objects.get(slug=slug).repository_rules for slug in ("shop", "tools", "narrowed", "lonely")}
    assert rules == {
        # Docker Hub canonical, a port kept, an endpoint prefix as host/prefix/*, the host lower case.
        "shop": ["127.0.0.1:5000/*", "index.docker.io/*", "quay.io/acme/*"],
        "tools": ["127.0.0.1:5000/*", "index.docker.io/*"],  # quay serves Shop only
        "narrowed": ["quay.io/acme/api"],  # explicit rules are left as they were
        "lonely": ["ghcr.io/other/*"],  # its own team's registry, nobody else's
    }
    for slug in ("shop", "tools", "narrowed", "lonely"):
        app = App.objects.get(slug=slug)
        assert sorted(app.channels.values_list("name", flat=True)) == ["beta", "stable", "unstable"]
    channels = {lic.customer_name: (lic.channel.app_id, lic.channel.name) for lic in License.objects.all()}
    assert channels == {
        "Globex": (ids["shop"], "stable"),
        "Initech": (ids["tools"], "stable"),
        "Hooli": (ids["lonely"], "stable"),
    }


def test_a_migrated_rule_is_one_the_proxy_reads_as_everything_on_that_registry(executor):
    """The rules the migration writes keep what the app's licenses pulled before: the proxy's
    decision (routing.rules_allow) on them allows that registry's repositories and no other."""
    from delivery.routing import rules_allow

    _old_rows(executor)
    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    App = executor.loader.project_state(AFTER).apps.get_model("licenses", "App")
    rules = App.objects.get(slug="shop").repository_rules
    assert rules_allow(rules, "127.0.0.1:5000/acme/secret-internal")
    assert rules_allow(rules, "index.docker.io/library/redis")
    assert rules_allow(rules, "quay.io/acme/api")
    assert not rules_allow(rules, "quay.io/other/api")
    assert not rules_allow(rules, "127.0.0.1:5001/acme/api")
    assert not rules_allow([], "127.0.0.1:5000/acme/api")
