"""Per-account lockout of password logins (accounts/lockout.py): the login page and the
private registry's password grant at /v2/token count together, from every address; API
tokens and licenses keep working (SECURITY-TESTS L3, per username)."""

from __future__ import annotations

import base64
import itertools
import secrets
import time

import httpx
import pytest
from django.conf import settings as django_settings
from django.contrib.auth import authenticate
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent, Role
from licenses import services as licenses
from tests import factories

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed attempts for this account; try again in 15 minutes."
_addresses = itertools.count(1)


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.LOGIN_FAILURE_LIMIT = 10
    settings.LOGIN_FAILURE_WINDOW = 900
    settings.LOGIN_COOLDOWN = 900


@pytest.fixture
def vendor(team):
    """A member of team Acme with an email of its own per run: counts outlive a run in Redis."""
    return factories.add_member(team, Role.DEVELOPER, factories.make_user(f"v{secrets.token_hex(6)}@acme.test"))


def _address() -> str:
    return f"198.51.100.{next(_addresses) % 250 + 1}"


def _page_login(email: str, password: str):
    client = Client()
    response = client.post(reverse("accounts:login"), {"username": email, "password": password}, REMOTE_ADDR=_address())
    return response, client


def _registry_token(username: str, password: str, address: str | None = None):
    basic = base64.b64encode(f"{username}:{password}".encode()).decode()
    return Client().get(
        "/v2/token",
        {"service": django_settings.REGISTRY_SERVICE},
        HTTP_AUTHORIZATION=f"Basic {basic}",
        REMOTE_ADDR=address or _address(),
    )


def _password_grant(username: str, password: str):
    data = {"grant_type": "password", "username": username, "password": password}
    return Client().post("/v2/token", {**data, "service": django_settings.REGISTRY_SERVICE}, REMOTE_ADDR=_address())


def _assert_locked_page(response) -> None:
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert 0 < int(response["Retry-After"]) <= 900
    assert "_auth_user_id" not in response.wsgi_request.session


def _assert_locked_token(response) -> None:
    assert response.status_code == 429, response.content
    assert response.json()["errors"][0] == {"code": "TOOMANYREQUESTS", "message": LOCKED, "detail": None}
    assert 0 < int(response["Retry-After"]) <= 900


@pytest.mark.parametrize("account", ["existing", "unknown"])
def test_ten_wrong_passwords_on_the_login_page_lock_the_account_from_every_address(vendor, account):
    """The 11th attempt, even with the right password and from a new address, gets 429; an
    email with no account is answered the same way, so the page tells nobody which exist."""
    email = vendor.email if account == "existing" else f"nobody-{secrets.token_hex(6)}@acme.test"
    for _ in range(10):
        response, _ = _page_login(email, "wrong password")
        assert response.status_code == 200
        assert "Please enter a correct email" in response.content.decode()
    response, client = _page_login(email.upper(), factories.PASSWORD)
    _assert_locked_page(response)
    assert client.get(reverse("licenses:app-list")).status_code == 302  # not logged in


def test_ten_wrong_passwords_at_the_registry_token_service_lock_the_password_grant_but_not_tokens(vendor, team):
    token = factories.user_token(vendor, team)
    for _ in range(10):
        assert _registry_token(vendor.email, "wrong password").status_code == 401
    _assert_locked_token(_registry_token(vendor.email, factories.PASSWORD))
    _assert_locked_token(_password_grant(f" {vendor.email.upper()} ", factories.PASSWORD))
    _assert_locked_page(_page_login(vendor.email, factories.PASSWORD)[0])  # one count for every door
    assert authenticate(username=vendor.email, password=factories.PASSWORD) is None  # any other door too
    # API tokens are not passwords: at the token service and at the API.
    assert _registry_token(vendor.email, token).status_code == 200
    assert factories.bearer_client(token).get("/api/v1/team/").status_code == 200
    # A customer's license ID is not refused either, whatever user name comes with it.
    app = factories.make_app(team, "acme-api")
    _, license_id = licenses.license_create(actor=factories.actor_of(vendor, team), app=app, customer_name="Globex")
    assert _registry_token(vendor.email, license_id).status_code == 200


def test_failures_at_the_page_and_the_token_service_add_up(vendor):
    for _ in range(5):
        assert _page_login(vendor.email, "wrong password")[0].status_code == 200
        assert _registry_token(vendor.email, "wrong password").status_code == 401
    _assert_locked_token(_registry_token(vendor.email, factories.PASSWORD))


def test_a_lockout_is_audited_once_in_each_team_of_the_account(vendor, team, other_team):
    factories.add_member(other_team, Role.READ_ONLY, vendor)
    for _ in range(10):
        _page_login(vendor.email, "wrong password")
    for _ in range(5):  # attempts during the lockout are refused, not audited again
        _assert_locked_page(_page_login(vendor.email, factories.PASSWORD)[0])
        _assert_locked_token(_registry_token(vendor.email, "wrong password"))
        assert authenticate(username=vendor.email, password="wrong password") is None  # counted, refused
    events = AuditEvent.objects.filter(action="account.locked", target=vendor.email)
    assert sorted(e.team_id for e in events) == sorted([team.pk, other_team.pk])
    event = events.first()
    assert event.actor == "unknown"
    assert event.detail["failures"] == 10 and event.detail["seconds"] == 900
    assert event.detail["last_address"].startswith("198.51.100.")


def test_logins_work_again_after_the_cool_down(vendor, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_WINDOW = 2
    settings.LOGIN_COOLDOWN = 2
    time.sleep(2 - time.time() % 2 + 0.05)  # all three in one window
    for _ in range(3):
        _page_login(vendor.email, "wrong password")
    response, _ = _page_login(vendor.email, factories.PASSWORD)
    assert response.status_code == 429
    assert "try again in 1 minute." in response.content.decode()
    time.sleep(2.1)
    response, client = _page_login(vendor.email, factories.PASSWORD)
    assert response.status_code == 302
    assert client.get(reverse("licenses:app-list")).status_code == 200
    assert _registry_token(vendor.email, factories.PASSWORD).status_code == 200


@pytest.mark.parametrize("backend", ["file", "redis"])
def test_failures_older_than_the_window_are_forgotten_on_every_cache_backend(vendor, settings, tmp_path, backend):
    if backend == "file":  # the embedded default (`make run`, no REDIS_URL)
        cache = {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path)}
    else:
        cache = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": django_settings.REDIS_URL}
    settings.CACHES = {"default": cache}
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_WINDOW = 2
    time.sleep(2 - time.time() % 2 + 0.05)  # at the start of a window
    for _ in range(2):
        _page_login(vendor.email, "wrong password")
    time.sleep(2 - time.time() % 2 + 0.05)  # the next window: those two no longer count
    for _ in range(2):
        _page_login(vendor.email, "wrong password")
    assert _page_login(vendor.email, factories.PASSWORD)[0].status_code == 302
    _page_login(vendor.email, "wrong password")  # the third in this window
    _assert_locked_page(_page_login(vendor.email, factories.PASSWORD)[0])


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_lockout_counted_here_is_seen_by_the_running_portal_server(vendor, portal_server):
    """The state is shared between processes (Redis under the suite, as in production)."""
    for _ in range(10):
        _registry_token(vendor.email, "wrong password")
    response = httpx.get(
        f"{portal_server.url}/v2/token",
        params={"service": django_settings.REGISTRY_SERVICE},
        auth=(vendor.email, factories.PASSWORD),
        timeout=10,
    )
    assert response.status_code == 429, response.text
    assert response.json()["errors"][0]["message"] == LOCKED
    with httpx.Client(base_url=portal_server.url, timeout=10) as browser:
        browser.get("/login/")
        data = {"username": vendor.email, "password": factories.PASSWORD}
        page = browser.post("/login/", data={**data, "csrfmiddlewaretoken": browser.cookies["csrftoken"]})
    assert page.status_code == 429 and LOCKED in page.text


def test_logins_go_on_when_the_cache_is_down(vendor, settings, caplog):
    """Like the token limiter, the lockout fails open (DESIGN: rate limiting fails open)."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    for _ in range(10):
        assert _page_login(vendor.email, "wrong password")[0].status_code == 200
    assert _registry_token(vendor.email, factories.PASSWORD).status_code == 200
    assert "login lockout unavailable (ConnectionError)" in caplog.text
