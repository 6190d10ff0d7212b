"""Minted ECR / GCR tokens: cached and reused, refreshed by beat before expiry, retried with backoff,
and re-minted exactly once when the registry refuses a cached one. Against moto and the loopback
Google token endpoint; the registries are real Distribution instances."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from portal import crypto
from portal.celery import app as celery_app
from registries import services
from registries.models import CheckStatus, ExternalRegistry, Health, RegistryTest
from registries.tasks import REFRESH_RETRIES, registries_refresh_tokens_task, registry_refresh_token_task
from tests.registries.conftest import MOTO_ECR_PASSWORD

pytestmark = [pytest.mark.slow]

AWS_KEY_ID, AWS_SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ECR_ENDPOINT = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


@pytest.fixture
def eager(monkeypatch):
    """`.delay()` runs the task in this process, so a beat task's fan-out can be observed."""
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)


class MotoCalls:
    """API requests moto_server received since this was made, read from its request log."""

    def __init__(self, server) -> None:
        self.server = server
        self.start = self._count()

    def _count(self) -> int:
        last = -1
        while True:  # the log line is written just after the response: wait until it settles
            count = self.server.log_path.read_text().count("POST / HTTP/1.1")
            if count == last:
                return count
            last = count
            time.sleep(0.05)

    @property
    def new(self) -> int:
        return self._count() - self.start


def _ecr(actor, endpoint: str, *, key_id: str = AWS_KEY_ID, secret: str = AWS_SECRET) -> ExternalRegistry:
    return services.registry_create(
        actor=actor,
        provider="ecr",
        endpoint=endpoint,
        region="us-east-1",
        username=key_id,
        secret_access_key=secret,
        skip_validation=True,
    )


def _gcr(actor, endpoint: str, key) -> ExternalRegistry:
    return services.registry_create(
        actor=actor, provider="gcr", endpoint=endpoint, service_account_key=key.text, skip_validation=True
    )


def _cache(registry: ExternalRegistry, password: str, expires_in: timedelta) -> None:
    """Store a minted token as services would, with the given lifetime left."""
    username = "AWS" if registry.provider == "ecr" else "oauth2accesstoken"
    ExternalRegistry.objects.filter(pk=registry.pk).update(
        minted_token=crypto.encrypt(
            json.dumps({"username": username, "password": password}), aad=services._aad(registry, "minted")
        ),
        minted_token_expires_at=timezone.now() + expires_in,
    )
    registry.refresh_from_db()


def _cached_password(registry: ExternalRegistry) -> str:
    registry.refresh_from_db()
    return json.loads(crypto.decrypt(registry.minted_token, aad=services._aad(registry, "minted")))["password"]


def _run_test(registry: ExternalRegistry, image: str) -> RegistryTest:
    test = RegistryTest.objects.create(registry=registry, image=image, requested_by="test")
    return services.registry_test_run(test.pk)


@pytest.mark.django_db
def test_the_beat_task_refreshes_only_tokens_about_to_expire(
    actor, eager, moto_ecr, ecr_basic_registry, service_account_key, google_token_endpoint, gcr_token_registry
):
    key = service_account_key()
    ecr_due, ecr_fresh = _ecr(actor, ecr_basic_registry.endpoint), _ecr(actor, ECR_ENDPOINT)
    gcr_due, gcr_fresh = _gcr(actor, gcr_token_registry.endpoint, key), _gcr(actor, "gcr.io", key)
    # ECR is refreshed within 2 h of expiry, GCR within 15 min. (The ECR token expires in a
    # minute: moto's own token is only trusted for 5, see FACTS.md, and must still move it forward.)
    _cache(ecr_due, "old-ecr", timedelta(minutes=1))
    _cache(ecr_fresh, "fresh-ecr", timedelta(hours=3))
    _cache(gcr_due, "old-gcr", timedelta(minutes=10))
    _cache(gcr_fresh, "fresh-gcr", timedelta(minutes=30))
    before = {r.pk: (r.minted_token, r.minted_token_expires_at) for r in (ecr_due, ecr_fresh, gcr_due, gcr_fresh)}
    moto = MotoCalls(moto_ecr)

    assert registries_refresh_tokens_task.apply().get() == "2 due"

    assert moto.new == 1 and len(google_token_endpoint.requests) == 1
    assert _cached_password(ecr_due) == MOTO_ECR_PASSWORD
    assert _cached_password(gcr_due) == google_token_endpoint.issued[-1]
    assert ecr_due.minted_token_expires_at > before[ecr_due.pk][1]
    assert gcr_due.minted_token_expires_at > before[gcr_due.pk][1] + timedelta(minutes=40)  # Google's hour
    for fresh in (ecr_fresh, gcr_fresh):
        fresh.refresh_from_db()
        assert (fresh.minted_token, fresh.minted_token_expires_at) == before[fresh.pk]

    # moto's token claims to have expired in 2015: the next beat refreshes it once more (one mint
    # per run, no loop); the GCR token is fresh now and left alone.
    assert registries_refresh_tokens_task.apply().get() == "1 due"
    assert moto.new == 2 and len(google_token_endpoint.requests) == 1


@pytest.mark.django_db
def test_a_fresh_minted_token_is_reused_and_moto_expired_token_does_not_loop(
    actor, moto_ecr, ecr_basic_registry, service_account_key, google_token_endpoint, gcr_token_registry
):
    ecr = _ecr(actor, ecr_basic_registry.endpoint)
    moto = MotoCalls(moto_ecr)
    first = _run_test(ecr, "acme/api:1.0.0")
    assert first.status == CheckStatus.SUCCEEDED, first.message
    assert moto.new == 1  # one mint for the test, although the token says it expired in 2015
    ecr.refresh_from_db()
    lifetime = ecr.minted_token_expires_at - timezone.now()
    assert timedelta(minutes=4) < lifetime <= timedelta(minutes=5)  # used now, minted again soon
    assert _run_test(ecr, "acme/api:1.0.0").status == CheckStatus.SUCCEEDED
    assert services.registry_credentials(ecr).password == MOTO_ECR_PASSWORD
    assert moto.new == 1  # reused, not minted again

    gcr = _gcr(actor, gcr_token_registry.endpoint, service_account_key())
    for _ in range(2):
        test = _run_test(gcr, "acme/v2s2:1.0.0")
        assert test.status == CheckStatus.SUCCEEDED, test.message
    gcr.refresh_from_db()
    assert services.registry_credentials(gcr).password == google_token_endpoint.issued[0]
    assert len(google_token_endpoint.requests) == 1


def _at_once(registry_id: int) -> list:
    """services.registry_refresh_token from two threads at the same moment, each on its own connection."""
    barrier, results = threading.Barrier(2), []

    def refresh() -> None:
        try:
            barrier.wait()
            results.append(services.registry_refresh_token(registry_id))
        except Exception as e:  # reported by the caller's assertion
            results.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.mark.django_db(transaction=True)
def test_two_refreshes_at_once_mint_once_and_never_corrupt_the_row(
    actor, moto_ecr, ecr_basic_registry, service_account_key, google_token_endpoint, gcr_token_registry
):
    gcr = _gcr(actor, gcr_token_registry.endpoint, service_account_key())
    _cache(gcr, "old-gcr", timedelta(minutes=1))
    results = _at_once(gcr.pk)
    assert not [r for r in results if isinstance(r, Exception)], results
    # The row lock lets one mint; the other skips the locked row or finds the new token fresh.
    assert len(google_token_endpoint.requests) == 1
    assert _cached_password(gcr) == google_token_endpoint.issued[0]
    assert _run_test(gcr, "acme/v2s2:1.0.0").status == CheckStatus.SUCCEEDED

    # moto's tokens are never "fresh" (5 min < the 2 h margin), so a second refresh right after the
    # first may mint again; what matters is that the row stays whole.
    ecr = _ecr(actor, ecr_basic_registry.endpoint)
    moto = MotoCalls(moto_ecr)
    results = _at_once(ecr.pk)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert 1 <= moto.new <= 2
    assert _cached_password(ecr) == MOTO_ECR_PASSWORD
    assert _run_test(ecr, "acme/api:1.0.0").status == CheckStatus.SUCCEEDED


@pytest.fixture
def retry_countdowns(monkeypatch):
    """The countdowns the refresh task asked for. `.apply()` runs each retry at once, in this process."""
    countdowns: list[int] = []
    real_retry = registry_refresh_token_task.retry

    def retry(*args, **kwargs):
        countdowns.append(kwargs["countdown"])
        return real_retry(*args, **kwargs)

    monkeypatch.setattr(registry_refresh_token_task, "retry", retry)
    return countdowns


def _backoff(registry_id: int) -> list[int]:
    return [10 * 2**n + registry_id % 5 for n in range(REFRESH_RETRIES)]


@pytest.mark.django_db
def test_a_failing_gcr_refresh_retries_with_backoff_then_marks_the_registry_unhealthy(
    actor, retry_countdowns, service_account_key, google_token_endpoint, gcr_token_registry
):
    gcr = _gcr(actor, gcr_token_registry.endpoint, service_account_key())
    google_token_endpoint.fail(401)
    result = registry_refresh_token_task.apply(args=[gcr.pk])
    assert result.get() == "failed: unauthorized"
    assert retry_countdowns == _backoff(gcr.pk)
    assert len(google_token_endpoint.requests) == REFRESH_RETRIES + 1
    gcr.refresh_from_db()
    assert gcr.health == Health.UNHEALTHY
    assert gcr.health_reason == "token refresh failed: Google rejected the service-account key (invalid_grant)."
    assert gcr.minted_token == ""


@pytest.mark.django_db
def test_a_failing_ecr_refresh_retries_then_marks_the_registry_unhealthy(
    actor, retry_countdowns, ecr_iam_keys, moto_ecr, ecr_basic_registry
):
    key_id, _ = ecr_iam_keys
    ecr = _ecr(actor, ecr_basic_registry.endpoint, key_id=key_id, secret="A" * 40)  # not its secret
    moto = MotoCalls(moto_ecr)
    assert registry_refresh_token_task.apply(args=[ecr.pk]).get() == "failed: unauthorized"
    assert retry_countdowns == _backoff(ecr.pk)
    assert moto.new == REFRESH_RETRIES + 1
    ecr.refresh_from_db()
    assert ecr.health == Health.UNHEALTHY
    assert ecr.health_reason.startswith("token refresh failed: AWS rejected the access key")
    assert "A" * 40 not in ecr.health_reason


@pytest.mark.django_db
def test_a_refresh_that_recovers_on_a_retry_ends_refreshed(
    actor, monkeypatch, service_account_key, google_token_endpoint, gcr_token_registry
):
    gcr = _gcr(actor, gcr_token_registry.endpoint, service_account_key())
    # 502: google-auth itself retries 500/503/429 (with its own backoff) before the task sees them.
    google_token_endpoint.fail(502, "bad_gateway")
    real_retry = registry_refresh_token_task.retry

    def retry(*args, **kwargs):
        if registry_refresh_token_task.request.retries == 1:
            google_token_endpoint.fail_status = None  # Google is back for the third attempt
        return real_retry(*args, **kwargs)

    monkeypatch.setattr(registry_refresh_token_task, "retry", retry)
    assert registry_refresh_token_task.apply(args=[gcr.pk]).get() == "refreshed"
    assert [r.status for r in google_token_endpoint.requests] == [502, 502, 200]
    assert _cached_password(gcr) == google_token_endpoint.issued[0]
    assert gcr.health != Health.UNHEALTHY


@pytest.mark.django_db
def test_a_cached_gcr_token_the_registry_refuses_is_minted_again_once(
    actor, service_account_key, google_token_endpoint, gcr_token_registry
):
    gcr = _gcr(actor, gcr_token_registry.endpoint, service_account_key())
    _cache(gcr, "ya29.revoked-upstream", timedelta(hours=1))  # looks fresh, but the registry says 401
    test = _run_test(gcr, "acme/v2s2:1.0.0")
    assert test.status == CheckStatus.SUCCEEDED, test.message
    assert len(google_token_endpoint.requests) == 1
    assert _cached_password(gcr) == google_token_endpoint.issued[0]


@pytest.mark.django_db
def test_a_cached_ecr_token_the_registry_refuses_is_minted_again_once(actor, moto_ecr, ecr_basic_registry):
    ecr = _ecr(actor, ecr_basic_registry.endpoint)
    _cache(ecr, "expired-upstream", timedelta(hours=6))
    moto = MotoCalls(moto_ecr)
    test = _run_test(ecr, "acme/api:1.0.0")
    assert test.status == CheckStatus.SUCCEEDED, test.message
    assert moto.new == 1
    assert _cached_password(ecr) == MOTO_ECR_PASSWORD


@pytest.mark.django_db
def test_the_retry_after_a_refused_token_happens_exactly_once(actor, moto_ecr, basic_registry):
    """The registry refuses every ECR token (it only knows its own htpasswd user): one re-mint, then a clear failure."""
    ecr = _ecr(actor, basic_registry.endpoint)
    _cache(ecr, "expired-upstream", timedelta(hours=6))
    moto = MotoCalls(moto_ecr)
    test = _run_test(ecr, "acme/api:1.0.0")
    assert (test.status, test.category) == (CheckStatus.FAILED, "unauthorized")
    assert moto.new == 1
