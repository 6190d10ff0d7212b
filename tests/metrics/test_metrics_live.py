"""/metrics of a real uvicorn with two workers (multi-process mode): real skopeo pulls through
the proxy from Distribution, refused pulls, an unreachable upstream, and the outcomes of
tasks a real Celery worker process ran, all in one scrape of whichever web worker answers."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from accounts.tasks import invites_purge_expired_task
from licenses import services as licenses
from licenses.models import Refusal
from registries import services as registries
from registries.tasks import registry_test_task
from tests import factories
from tests.celery_worker import wait_for
from tests.metrics.conftest import AUTH, TOKEN, value
from tests.proxy.conftest import basic
from tests.realparts.env import child_env
from tests.realparts.loopback import Reply
from tests.realparts.portal_server import run_portal_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def metrics_server(transactional_db, tmp_path):
    """uvicorn with two workers, METRICS_TOKEN set, on the test database and metrics folder."""
    with run_portal_server(tmp_path, child_env(METRICS_TOKEN=TOKEN), "--workers", "2") as server:
        yield server


def _scrape(server) -> str:
    response = httpx.get(f"{server.url}/metrics", headers=AUTH, timeout=10)
    assert response.status_code == 200, response.text[:300]
    return response.text


def _skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120, check=False)


def test_a_skopeo_pull_and_refused_pulls_move_the_counters(metrics_server, basic_registry, team, admin, tmp_path):
    actor = factories.actor_of(admin, team)
    app = factories.make_app(team, "metrics-app")
    registry = factories.connect_registry(actor, basic_registry)
    image = basic_registry.images["api"]
    factories.make_release(actor, app, [(registry.name, image.repository, image.tag)])
    _, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    revoked, revoked_id = licenses.license_create(actor=actor, app=app, customer_name="Initech")
    licenses.license_revoke(actor=actor, license=revoked)
    before = _scrape(metrics_server)
    # Series come from both web workers' files: counts are compared, never a worker's own.
    assert value(before, "portal_pulls_total", app=app.slug, result="ok") == 0

    host = basic_registry.netloc.replace(":", "__")
    name = f"proxy/{app.slug}/{host}/{image.repository}"
    ref = f"docker://{metrics_server.netloc}/{name}:{image.tag}"
    pulled = _skopeo("copy", "--src-tls-verify=false", "--src-creds", f"{license_id}:{license_id}",
                     ref, f"dir:{tmp_path / 'out'}")  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr + metrics_server.log()
    manifest = json.loads(image.manifest)
    blob_bytes = sum(d["size"] for d in [manifest["config"], *manifest["layers"]])

    # The revoked license: skopeo is refused its token; a manifest request straight to the
    # proxy is refused as well; a valid license asking for a repository not released, too.
    refused = _skopeo("copy", "--src-tls-verify=false", "--src-creds", f"{revoked_id}:{revoked_id}",
                      ref, f"dir:{tmp_path / 'refused'}")  # fmt: skip
    assert refused.returncode != 0
    direct = httpx.get(f"{metrics_server.url}/v2/{name}/manifests/{image.tag}", headers=basic(revoked_id), timeout=10)
    assert direct.status_code == 401
    other = f"proxy/{app.slug}/{host}/acme/not-released"
    assert httpx.get(f"{metrics_server.url}/v2/{other}/manifests/1.0", headers=basic(license_id)).status_code == 403

    def counted(text: str, name: str, **labels: str) -> float:
        return value(text, name, **labels) - value(before, name, **labels)

    def settled() -> str | None:  # the pull log's writer counts within about a second
        text = _scrape(metrics_server)
        done = counted(text, "portal_license_denials_total", reason=Refusal.NOT_ALLOWED) >= 1
        done = done and counted(text, "portal_pulls_total", app=app.slug, result="ok") >= 1
        # A blob's row is queued once its stream has ended, which may be after skopeo has exited.
        done = done and counted(text, "portal_pull_bytes_total", app=app.slug, result="ok") >= blob_bytes + len(
            image.manifest
        )
        return text if done else None

    assert wait_for(settled, timeout=10)
    after = _scrape(metrics_server)
    assert counted(after, "portal_pulls_total", app=app.slug, result="ok") == 1
    assert counted(after, "portal_pull_bytes_total", app=app.slug, result="ok") == blob_bytes + len(image.manifest)
    assert counted(after, "portal_pulls_total", app=app.slug, result="refused") == 2  # revoked, not released
    assert counted(after, "portal_license_denials_total", reason=Refusal.LICENSE_REVOKED) >= 2  # token and manifest
    assert counted(after, "portal_license_denials_total", reason=Refusal.NOT_ALLOWED) == 1
    assert counted(after, "portal_tokens_total", service="portal-proxy", result="issued") >= 1
    assert counted(after, "portal_tokens_total", service="portal-proxy", result="refused") >= 1
    requests_upstream = counted(after, "portal_upstream_request_seconds_count", registry=registry.name)
    assert requests_upstream >= 1 + len(manifest["layers"]) + 1  # the manifest, the config and every layer
    assert counted(after, "portal_upstream_request_seconds_sum", registry=registry.name) > 0
    assert counted(after, "portal_upstream_errors_total", registry=registry.name, category="connect") == 0
    blobs = 1 + len(manifest["layers"])
    assert counted(after, "portal_proxy_cache_total", kind="blob", result="miss") == blobs
    assert counted(after, "portal_proxy_cache_total", kind="manifest", result="miss") == 1

    # A second pull: every blob from the cache, none fetched upstream again.
    again = _skopeo("copy", "--src-tls-verify=false", "--src-creds", f"{license_id}:{license_id}",
                    ref, f"dir:{tmp_path / 'again'}")  # fmt: skip
    assert again.returncode == 0, again.stderr
    cached = _scrape(metrics_server)
    assert counted(cached, "portal_proxy_cache_total", kind="blob", result="hit") == blobs
    assert counted(cached, "portal_proxy_cache_total", kind="blob", result="miss") == blobs
    assert counted(cached, "portal_upstream_request_seconds_count", registry=registry.name) == requests_upstream
    # Low cardinality: no license ID, digest or repository in any label.
    for secret in (license_id, revoked_id, image.repository, *image.layer_digests):
        assert secret not in after


def test_an_unreachable_upstream_counts_as_an_error_of_its_registry(
    loopback_server, closed_port, metrics_server, actor, team
):
    # The upstream starts before the portal, so it stops after it (it waits for open connections).
    failing = loopback_server()
    failing.on("*", Reply.error(500))
    app = factories.make_app(team, "metrics-down")
    down = registries.registry_create(actor=actor, provider="other", endpoint=f"http://127.0.0.1:{closed_port}",
                                      name="down", username="u", password="p", skip_validation=True)  # fmt: skip
    broken = registries.registry_create(actor=actor, provider="other", endpoint=failing.url,
                                        name="broken", username="u", password="p", skip_validation=True)  # fmt: skip
    factories.allow_whole_registry(actor, app, down, broken)
    _, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    before = _scrape(metrics_server)
    v2 = f"{metrics_server.url}/v2/proxy/{app.slug}"
    for _ in range(2):
        answer = httpx.get(f"{v2}/127.0.0.1__{closed_port}/acme/api/manifests/1.0.0", headers=basic(license_id))
        assert answer.status_code == 503
    answer = httpx.get(f"{v2}/{failing.netloc.replace(':', '__')}/acme/api/manifests/1.0.0", headers=basic(license_id))
    assert answer.status_code == 503
    after = _scrape(metrics_server)

    def counted(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # Once per request, whatever retries it took.
    assert counted("portal_upstream_errors_total", registry="down", category="connect") == 2
    assert counted("portal_upstream_errors_total", registry="broken", category="upstream_error") == 1
    assert counted("portal_upstream_request_seconds_count", registry="down") == 0  # never answered
    assert counted("portal_upstream_request_seconds_count", registry="broken") == 3  # each attempt answered


def test_celery_outcomes_of_a_worker_process_appear_in_the_web_processes_metrics(metrics_server, celery_worker_process):
    before = _scrape(metrics_server)
    invites_purge_expired_task.delay()
    registry_test_task.delay(10**9)  # no such test: the task fails
    success = {"task": invites_purge_expired_task.name, "state": "success"}
    failure = {"task": registry_test_task.name, "state": "failure"}

    def counted(text: str, labels: dict[str, str]) -> float:
        return value(text, "portal_celery_tasks_total", **labels) - value(before, "portal_celery_tasks_total", **labels)

    def both() -> bool:
        text = _scrape(metrics_server)
        return counted(text, success) == 1 and counted(text, failure) == 1

    assert wait_for(both, timeout=20), celery_worker_process.log.read_text()[-3000:]
