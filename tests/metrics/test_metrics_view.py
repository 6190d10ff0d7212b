"""/metrics in the web process: who may read it, on which hosts, and the series the token
service, the pull log's writer and the Celery signals count (in this process; the tests in
test_metrics_live.py count in a uvicorn with two workers and a Celery worker)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from celery import signals
from django.utils import timezone

from accounts import domains
from accounts.models import CustomDomain, DomainKind, DomainStatus
from delivery import customer_auth
from delivery.proxy import pull_log
from licenses.models import PullEvent, Refusal
from registries.tasks import registry_refresh_token_task
from tests.metrics.conftest import AUTH, TOKEN, value
from tests.proxy.conftest import basic

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def _scrape(client) -> str:
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200, response.content[:300]
    return response.content.decode()


def test_metrics_answer_404_while_no_token_is_set(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 404
    assert b"portal_" not in response.content


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-token", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer ", f"Bearer {TOKEN[:-1]}"],
)
def test_a_missing_or_wrong_token_gets_401(client, metrics_token, header):
    headers = {"Authorization": header} if header is not None else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"portal_" not in response.content


def test_the_right_token_gets_the_text_format(client, metrics_token, customer_license):
    client.get("/v2/token", {"service": "portal-proxy"}, headers=basic(customer_license.license_id))
    response = client.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"})  # the scheme in any case
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response["Cache-Control"] == "no-store"
    text = response.content.decode()
    assert "# TYPE portal_tokens_total counter" in text
    assert value(text, "portal_tokens_total", service="portal-proxy", result="issued") >= 1
    assert client.head("/metrics", headers=AUTH).status_code == 200


def test_metrics_are_read_only(client, metrics_token):
    assert client.post("/metrics", headers=AUTH).status_code == 405


def test_metrics_never_answer_on_a_custom_domain(client, metrics_token, team):
    for kind, host in ((DomainKind.PROXY, "proxy.vendor.test"), (DomainKind.REGISTRY, "registry.vendor.test")):
        CustomDomain.objects.create(
            team=team, domain=host, kind=kind, status=DomainStatus.VERIFIED, is_default=True, challenge="c" * 32
        )
    domains.forget()
    try:
        for host in ("proxy.vendor.test", "registry.vendor.test", "unknown.example.test"):
            response = client.get("/metrics", headers=AUTH, HTTP_HOST=host)
            assert response.status_code == 404, host
            assert b"portal_" not in response.content
        assert client.get("/metrics", headers=AUTH).status_code == 200  # the portal's own host
    finally:
        domains.forget()


def test_with_a_ui_host_metrics_answer_there_and_on_the_portals_own_host(client, metrics_token, settings):
    settings.PORTAL_UI_HOST = "ui.example.test"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "ui.example.test"]
    assert client.get("/metrics", headers=AUTH, HTTP_HOST="ui.example.test").status_code == 200
    assert client.get("/metrics", headers=AUTH).status_code == 200
    assert client.get("/metrics", headers=AUTH, HTTP_HOST="elsewhere.example.test").status_code == 404


def test_token_requests_count_by_service_and_result(client, metrics_token, customer_license, monkeypatch):
    before = _scrape(client)
    good = basic(customer_license.license_id)
    wrong = basic("not-a-license-id")
    asks = [
        ({"service": "portal-proxy"}, good, "portal-proxy", "issued"),
        ({}, good, "portal-proxy", "issued"),  # the host's first service
        ({"service": "portal-proxy"}, {}, "portal-proxy", "unauthenticated"),
        ({"service": "portal-proxy"}, wrong, "portal-proxy", "refused"),
        ({"service": "portal-registry"}, wrong, "portal-registry", "refused"),
        ({"service": "portal-proxy", "scope": "nonsense"}, good, "portal-proxy", "invalid"),
        ({"service": "somebody-else"}, good, "other", "invalid"),
    ]
    expected: dict[tuple[str, str], int] = {}
    for params, headers, service, result in asks:
        client.get("/v2/token", params, headers=headers)
        expected[(service, result)] = expected.get((service, result), 0) + 1
    monkeypatch.setattr(customer_auth, "RATE_PER_ADDRESS", 1)
    address = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    for _ in range(2):  # the second from that address is one too many
        client.get("/v2/token", {"service": "portal-proxy"}, headers=good, REMOTE_ADDR=address)
    expected[("portal-proxy", "issued")] += 1
    expected[("portal-proxy", "rate_limited")] = 1
    after = _scrape(client)
    for (service, result), n in expected.items():
        counted = value(after, "portal_tokens_total", service=service, result=result)
        assert counted - value(before, "portal_tokens_total", service=service, result=result) == n, (service, result)


def _event(app, kind: str, status: int, size: int = 0, reason: str = "") -> pull_log.Entry:
    event = PullEvent(app_id=app.pk, repository="r", kind=kind, reference="x", status=status, bytes=size,
                      reason=reason, created_at=timezone.now())  # fmt: skip
    return pull_log.Entry("uid", event)


def test_the_pull_log_writer_counts_pulls_bytes_and_license_denials(client, metrics_token, app):
    before = _scrape(client)
    pull_log.count(
        [
            _event(app, "manifest", 200, 1000),
            _event(app, "blob", 200, 5000),
            _event(app, "blob", 502, 700, "digest mismatch"),
            _event(app, "manifest", 401, 0, Refusal.LICENSE_REVOKED),
            _event(app, "token", 401, 0, Refusal.LICENSE_EXPIRED),
            _event(app, "manifest", 403, 0, Refusal.NOT_ALLOWED),
            _event(app, "manifest", 404, 0, "upstream 404"),
            _event(app, "manifest", 429, 0, "rate_limited"),
            _event(app, "manifest", 503, 0, "connect"),
            _event(app, "manifest", 403, 0, "something not a refusal word"),
        ]
    )
    after = _scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    slug = app.slug
    assert delta("portal_pulls_total", app=slug, result="ok") == 1
    assert delta("portal_pulls_total", app=slug, result="refused") == 3
    assert delta("portal_pulls_total", app=slug, result="not_found") == 1
    assert delta("portal_pulls_total", app=slug, result="rate_limited") == 1
    assert delta("portal_pulls_total", app=slug, result="failed") == 1
    assert delta("portal_pull_bytes_total", app=slug, result="ok") == 6000
    assert delta("portal_pull_bytes_total", app=slug, result="failed") == 700
    assert delta("portal_license_denials_total", reason=Refusal.LICENSE_REVOKED) == 1
    assert delta("portal_license_denials_total", reason=Refusal.LICENSE_EXPIRED) == 1
    assert delta("portal_license_denials_total", reason=Refusal.NOT_ALLOWED) == 1
    # Only the pull log's words are reasons: anything else would make a label of free text.
    assert "something not a refusal word" not in after and "upstream 404" not in after


def test_an_app_gone_before_its_rows_are_counted_counts_as_unknown(client, metrics_token, app):
    before = _scrape(client)
    entry = _event(app, "manifest", 200, 10)
    entry.event.app_id = 10**9  # no such app
    pull_log.count([entry])
    after = _scrape(client)
    assert (
        value(after, "portal_pulls_total", app="unknown", result="ok")
        - value(before, "portal_pulls_total", app="unknown", result="ok")
        == 1
    )


def test_a_celery_retry_is_counted(client, metrics_token):
    """The retry receiver, called by Celery's own signal dispatch in this process (the worker's
    success and failure are counted across processes in test_metrics_live.py)."""
    labels = {"task": registry_refresh_token_task.name, "state": "retry"}
    before = value(_scrape(client), "portal_celery_tasks_total", **labels)
    signals.task_retry.send(sender=registry_refresh_token_task, request=None, reason="upstream down", einfo=None)
    assert value(_scrape(client), "portal_celery_tasks_total", **labels) == before + 1


def test_prometheus_client_imported_before_the_settings_stops_the_start():
    """Imported first, prometheus-client would keep every series in its own process: refused."""
    code = (
        "import os, prometheus_client, django\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'portal.settings'\n"
        "django.setup()\n"
        "from portal import metrics\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "PROMETHEUS_MULTIPROC_DIR" in result.stderr
