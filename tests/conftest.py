"""The cast: an admin, a developer and a viewer of team Acme, and an outsider of team Other.

Each has a logged-in browser client (`*_client`) and an API client with their own token
(`*_api`), so permission tests read the same way everywhere. `actor` is the admin as the
services see a caller; `app` is Acme's app and `customer_license` a license of it, with the
license ID its customer types. Tests that need something else build it on these members and
say why; the one way to start a Celery worker is in tests/celery_worker.py.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from accounts.access import Actor
from accounts.models import Role, User
from delivery import routing
from licenses import services as licenses
from tests import factories

pytest_plugins = [
    "tests.celery_worker",
    "tests.realparts.dnsmasq",
    "tests.realparts.fixtures_registry",
    "tests.realparts.fixtures_cloud",
    "tests.realparts.portal_server",
    "tests.realparts.postgres_cluster",
    "tests.realparts.private_registry",
]


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_routes_from_earlier_tests():
    """Routes this process keeps would outlive a test's database (a flush fires no signals)."""
    routing._routes.clear()


@pytest.fixture
def team(db):
    return factories.make_team("Acme", admin=factories.make_user("admin@acme.test"))


@pytest.fixture
def admin(team):
    return team.memberships.get(role=Role.ADMIN).user


@pytest.fixture
def developer(team):
    return factories.add_member(team, Role.DEVELOPER, factories.make_user("dev@acme.test"))


@pytest.fixture
def viewer(team):
    return factories.add_member(team, Role.READ_ONLY, factories.make_user("viewer@acme.test"))


@pytest.fixture
def other_team(db):
    return factories.make_team("Other", admin=factories.make_user("boss@other.test"))


@pytest.fixture
def outsider(other_team):
    return other_team.memberships.get(role=Role.ADMIN).user


@pytest.fixture
def actor(admin, team) -> Actor:
    """The admin of Acme, as the services see a caller."""
    return factories.actor_of(admin, team)


@pytest.fixture
def outsider_actor(outsider, other_team) -> Actor:
    """The admin of team Other, as the services see a caller."""
    return factories.actor_of(outsider, other_team)


@pytest.fixture
def app(team):
    return factories.make_app(team, "acme-api", name="Acme API")


@pytest.fixture
def customer_license(actor, app) -> factories.CustomerLicense:
    """Globex's paid license of `app`, issued by the admin."""
    license, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    return factories.CustomerLicense(license, license_id)


@pytest.fixture
def admin_client(admin):
    return factories.browser_client(admin)


@pytest.fixture
def developer_client(developer):
    return factories.browser_client(developer)


@pytest.fixture
def viewer_client(viewer):
    return factories.browser_client(viewer)


@pytest.fixture
def outsider_client(outsider):
    return factories.browser_client(outsider)


@pytest.fixture
def admin_api(admin, team):
    return factories.api_client(admin, team)


@pytest.fixture
def developer_api(developer, team):
    return factories.api_client(developer, team)


@pytest.fixture
def viewer_api(viewer, team):
    return factories.api_client(viewer, team)


@pytest.fixture
def outsider_api(outsider, other_team):
    return factories.api_client(outsider, other_team)


@pytest.fixture
def member_with(request) -> Callable[[str], User]:
    """`member_with(role)` is the member of Acme with that role, for tests parametrized by role."""
    names = {Role.ADMIN: "admin", Role.DEVELOPER: "developer", Role.READ_ONLY: "viewer"}
    return lambda role: request.getfixturevalue(names[role])
