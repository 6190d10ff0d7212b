"""delivery/customer_auth.py as a door to come (an install kit, an air-gap download) calls it:
a request in, a Verdict out (the license, or why not), whatever the credentials were."""

from __future__ import annotations

import base64
import itertools
import secrets
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import RequestFactory
from django.utils import timezone

from delivery import customer_auth
from delivery.customer_auth import Denial
from delivery.scopes import Scope
from licenses import services as licenses
from licenses.models import License, Refusal
from portal import registry_tokens
from tests import factories

pytestmark = pytest.mark.django_db

_run = secrets.token_hex(2)
_addresses = itertools.count(1)
SCOPE = Scope("repository", "proxy/app-a/quay.io/acme/api", ("pull",))


def _request(authorization: str | None, address: str | None = None):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    address = address or f"2001:db8:{_run}:ca::{next(_addresses):x}"
    return RequestFactory().get("/download", REMOTE_ADDR=address, **headers)


def _basic(license_id: str) -> str:
    return "Basic " + base64.b64encode(f"customer:{license_id}".encode()).decode()


def _bearer(uid, *access: Scope) -> str:
    grants = [{"type": s.type, "name": s.name, "actions": list(s.actions)} for s in access]
    token, _, _ = registry_tokens.issue(subject=f"license:{uid}", audience=settings.PROXY_SERVICE, access=grants)
    return f"Bearer {token}"


@pytest.fixture
def made(team, admin):
    actor = factories.actor_of(admin, team)
    app = factories.make_app(team, "app-a")
    license, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    return actor, license, license_id


def test_a_valid_license_by_basic_or_by_our_token_for_the_scope_is_allowed_with_its_app(made):
    _, license, license_id = made
    for authorization in (_basic(license_id), _bearer(license.uid, SCOPE)):
        verdict = customer_auth.authorize(_request(authorization), SCOPE)
        assert verdict.allowed and verdict.denial is None
        assert (verdict.license_uid, verdict.app_id) == (str(license.uid), license.app_id)


def test_no_credentials_nobodys_id_and_a_token_for_another_scope_are_told_apart(made):
    _, license, _ = made
    assert customer_auth.authorize(_request(None)).denial == Denial.NO_CREDENTIALS
    assert customer_auth.authorize(_request("Digest x")).denial == Denial.NO_CREDENTIALS
    unknown = customer_auth.authorize(_request(_basic("nobodys-license-id")))
    assert unknown.denial == Denial.UNKNOWN and unknown.license_uid == "" and not unknown.refused_license
    other = Scope("repository", "proxy/app-a/quay.io/acme/other", ("pull",))
    # A valid license's token for another scope: the door still learns whose it is, to say
    # why the license may not pull (or send the client for a token that covers the scope).
    elsewhere = customer_auth.authorize(_request(_bearer(license.uid, other)), SCOPE)
    assert elsewhere.denial == Denial.NOT_IN_TOKEN and not elsewhere.allowed and not elsewhere.refused_license
    assert (elsewhere.license_uid, elsewhere.app_id, elsewhere.channel_id) == (
        str(license.uid), license.app_id, license.channel_id
    )  # fmt: skip
    assert customer_auth.authorize(_request(_bearer(license.uid, other))).allowed  # no scope asked


def test_a_revoked_licenses_token_for_another_scope_is_nobodys(made):
    actor, license, _ = made
    licenses.license_revoke(actor=actor, license=license)
    other = Scope("repository", "proxy/app-a/quay.io/acme/other", ("pull",))
    assert customer_auth.authorize(_request(_bearer(license.uid, other)), SCOPE).denial == Denial.UNKNOWN


def test_the_verdict_names_the_channel_the_license_follows_by_basic_and_by_token(made):
    actor, license, license_id = made
    stable = customer_auth.authorize(_request(_bearer(license.uid, SCOPE)), SCOPE)  # now cached
    assert stable.channel_id == license.app.channels.get(name="stable").pk
    licenses.license_update(actor=actor, license=license, channel="beta")
    beta = license.app.channels.get(name="beta")
    for authorization in (_basic(license_id), _bearer(license.uid, SCOPE)):
        assert customer_auth.authorize(_request(authorization), SCOPE).channel_id == beta.pk


@pytest.mark.parametrize("how", ["revoked", "expired"])
def test_a_revoked_or_expired_license_is_refused_naming_it_and_why_for_its_pull_log(made, how):
    actor, license, license_id = made
    if how == "revoked":
        licenses.license_revoke(actor=actor, license=license)
    else:
        License.objects.filter(pk=license.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        licenses.license_state_forget(license)
    reason = Refusal.LICENSE_REVOKED if how == "revoked" else Refusal.LICENSE_EXPIRED
    for authorization in (_basic(license_id), _bearer(license.uid, SCOPE)):
        verdict = customer_auth.authorize(_request(authorization), SCOPE)
        assert verdict.denial == reason and verdict.refused_license
        assert (verdict.license_uid, verdict.app_id) == (str(license.uid), license.app_id)


def test_an_address_that_failed_its_limit_is_refused_even_the_right_id_until_the_window_ends(made, monkeypatch):
    _, license, license_id = made
    monkeypatch.setattr(customer_auth, "RATE_PER_ADDRESS", 2)
    address = f"2001:db8:{_run}:cb::1"
    denials = [customer_auth.authorize(_request(_basic(f"guess-{i}"), address)).denial for i in range(2)]
    assert denials == [Denial.UNKNOWN, Denial.UNKNOWN]
    limited = customer_auth.authorize(_request(_basic(license_id), address))
    assert limited.denial == Denial.TOO_MANY_ATTEMPTS and limited.retry_after == customer_auth.RATE_WINDOW
    assert "your address" in limited.message
    assert customer_auth.authorize(_request(_bearer(license.uid), address)).allowed  # a token is no guess
