"""The dashboard at `/`: what a new team does next, license counts, registries with health,
pulls and bytes over 30 days, the latest failed pulls."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from licenses import services as licenses
from licenses.models import PullEvent, Refusal
from registries.models import ExternalRegistry, Health
from tests import factories

pytestmark = pytest.mark.django_db


def test_anonymous_visitors_go_to_the_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_user_without_a_team_is_sent_to_create_one(client):
    client.force_login(factories.make_user())
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/teams/new/"


def test_a_new_team_is_told_what_to_do_next(admin_client):
    html = admin_client.get("/").content.decode()
    assert "Get started" in html
    assert html.index("Connect a registry") < html.index("Create an app")
    assert "No refused or failed pulls." in html and "No registry connected yet." in html


def test_next_steps_follow_what_the_team_has_done(admin_client, app):
    html = admin_client.get("/").content.decode()
    assert "Create an app" not in html and "Upload a release" in html and "Issue a license" in html


def test_licenses_are_counted_active_expiring_and_revoked(actor, app, admin_client):
    soon, _ = licenses.license_create(
        actor=actor, app=app, customer_name="Soon Ltd", expires_at=timezone.now() + timedelta(days=10)
    )
    licenses.license_create(
        actor=actor, app=app, customer_name="Later Ltd", expires_at=timezone.now() + timedelta(days=90)
    )
    gone, _ = licenses.license_create(actor=actor, app=app, customer_name="Gone Ltd")
    licenses.license_revoke(actor=actor, license=gone)
    response = admin_client.get("/")
    counts = response.context["counts"]
    assert (counts.active, counts.expiring, counts.revoked) == (2, 1, 1)
    html = response.content.decode()
    assert "Soon Ltd" in html and "Later Ltd" not in html


def test_registries_show_their_health_and_reason(team, admin_client):
    ExternalRegistry.objects.create(team=team, name="quay-acme", provider="other", endpoint="quay.io/acme",
                                    health=Health.UNHEALTHY, health_reason="quay.io rejected the credentials")  # fmt: skip
    html = admin_client.get("/").content.decode()
    assert "quay-acme" in html and "quay.io rejected the credentials" in html


def test_the_latest_failed_pulls_show_with_their_reason_and_the_egress_chart(admin_client, customer_license):
    license = customer_license.license
    PullEvent.objects.create(license=license, app=license.app, repository="acme/api", kind="blob", reference="x",
                             status=200, bytes=2_000_000)  # fmt: skip
    PullEvent.objects.create(license=license, app=license.app, repository="acme/secret", kind="manifest",
                             reference="1.0", status=403, reason=Refusal.NOT_ALLOWED)  # fmt: skip
    html = admin_client.get("/").content.decode()
    assert "acme/secret" in html and Refusal.NOT_ALLOWED in html
    assert '<svg class="chart"' in html and "1.9\xa0MB" in html


def test_a_read_only_member_sees_the_dashboard(viewer_client):
    assert viewer_client.get("/").status_code == 200


def test_the_proxy_cache_card_counts_only_the_teams_own_objects(admin_client, team, other_team, customer_license):
    from delivery.models import CachedObject

    assert "Nothing cached yet." in admin_client.get("/").content.decode()
    for digest, size in (("a", 3_000_000), ("b", 2_000_000)):
        CachedObject.objects.create(team=team, digest=f"sha256:{digest * 64}", kind="blob", size=size)
    CachedObject.objects.create(team=other_team, digest="sha256:" + "c" * 64, kind="blob", size=9_000_000_000)
    PullEvent.objects.create(
        license=customer_license.license, app=customer_license.license.app, repository="proxy/x", kind="manifest",
        reference="1.0", status=200, reason="served from the cache: the upstream registry failed (connect)",
    )  # fmt: skip
    html = admin_client.get("/").content.decode()
    card = html[html.index('id="cache"') : html.index('id="failed"')]
    assert "4.8\xa0MB" in card and "in 2 layers and manifests" in card, card
    assert "8.4\xa0GB" not in card  # the other team's
    assert "1 answer in the last 30 days came from the cache while a registry of yours failed" in card


def test_the_proxy_cache_card_says_when_the_cache_is_off(admin_client, settings):
    settings.PROXY_CACHE_MAX_BYTES = 0
    html = admin_client.get("/").content.decode()
    assert "The proxy&#x27;s cache is off on this portal" in html or "The proxy's cache is off on this portal" in html
