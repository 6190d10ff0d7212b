"""F9: PostgreSQL restarts under load; the portal fails fast meanwhile and heals by itself."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.realparts.env import stop
from tests.realparts.portal_server import start_portal
from tests.realparts.postgres_cluster import ThrowawayPostgres

ROOT = Path(__file__).resolve().parent.parent
# Long enough that psycopg_pool's own retry pauses (1, 2, 4, 8, 16 s…) would outlast it.
OUTAGE_SECONDS = 17
HEALED_WITHIN = 5  # seconds after the database is back
# LICENSE_CACHE_SECONDS: a license the token service found is answered from the shared cache
# that long, database or not (licenses.services.license_find_recent).
LICENSE_TRUSTED_FOR = 5


@dataclass
class Sample:
    kind: str
    started: float
    took: float
    status: int  # 0: no HTTP answer at all
    shape: str = ""  # the error code of a JSON error answer, else its Content-Type


def _shape(response: httpx.Response) -> str:
    """The answer's error code (OCI `errors[0].code`, the API's `code`, /healthz's `status`), or
    its Content-Type when it is no JSON object."""
    try:
        body = response.json()
    except ValueError:
        return response.headers.get("content-type", "")
    if not isinstance(body, dict):
        return response.headers.get("content-type", "")
    if body.get("errors"):
        return body["errors"][0]["code"]
    return body.get("code") or body.get("status") or ""


def _manage(env: dict[str, str], *args: str, stdin: str = "") -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _stream(client: httpx.Client, kind: str, request: dict, samples: list[Sample], done: threading.Event) -> None:
    """One request after another until `done`, each one timed."""
    with client:
        while not done.is_set():
            started = time.monotonic()
            try:
                response = client.request(**request)
                status, shape = response.status_code, _shape(response) if response.status_code != 200 else ""
            except httpx.HTTPError:
                status, shape = 0, ""
            samples.append(Sample(kind, started, time.monotonic() - started, status, shape))
            time.sleep(0.05)


@pytest.mark.slow
def test_a_database_restart_fails_requests_fast_and_the_next_ones_succeed_without_a_process_restart(
    throwaway_postgres: ThrowawayPostgres, tmp_path
):
    throwaway_postgres.createdb("portal")
    env = {
        **os.environ,
        "DATABASE_URL": throwaway_postgres.url("portal"),
        "PORTAL_VAR_DIR": str(tmp_path),
        "TOKEN_RATE_PER_CREDENTIAL": "100000",  # one license asks many times a second here
    }
    _manage(env, "migrate", "--noinput", "-v0")
    _manage(
        env, "createteam", "Acme", "--admin-email", "admin@acme.test", "--admin-password-stdin", stdin="a-Long-passw0rd"
    )
    token = _manage(env, "createtoken", "--email", "admin@acme.test", "--team", "Acme").strip()
    web = start_portal(env, tmp_path / "web.log")
    samples: list[Sample] = []
    done = threading.Event()
    threads: list[threading.Thread] = []
    try:
        with httpx.Client(base_url=web.url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as api:
            assert api.post("/api/v1/apps/", json={"name": "Acme API", "slug": "acme-api"}).status_code == 201
            created = api.post("/api/v1/apps/acme-api/licenses/", json={"customer_name": "Initech"})
            assert created.status_code == 201, created.text
        license_id = created.json()["license_id"]
        streams = {
            "health": {"method": "GET", "url": "/healthz"},
            # The API token is checked against the database.
            "api": {"method": "GET", "url": "/api/v1/apps/", "headers": {"Authorization": f"Bearer {token}"}},
            # The license is checked against the database before a pull token is issued.
            "license": {
                "method": "GET",
                "url": "/v2/token",
                "params": {"service": "portal-proxy", "scope": "repository:proxy/acme-api/x/y:pull"},
                "auth": (license_id, license_id),
            },
        }
        for kind, request in streams.items():
            client = httpx.Client(base_url=web.url, timeout=20)
            threads.append(threading.Thread(target=_stream, args=(client, kind, request, samples, done)))
            threads[-1].start()
        time.sleep(2)
        stopping = time.monotonic()  # requests answered while it shuts down may fail already
        throwaway_postgres.stop()
        down = time.monotonic()
        time.sleep(OUTAGE_SECONDS)
        restarting = time.monotonic()
        throwaway_postgres.start()
        up = time.monotonic()
        time.sleep(HEALED_WITHIN + 3)
    finally:
        done.set()
        for thread in threads:
            thread.join()
        alive = web.process.poll() is None
        stop(web.process)

    before = [s for s in samples if s.started + s.took < stopping]
    outage = [s for s in samples if down <= s.started and s.started + s.took < restarting]
    healed = [s for s in samples if s.started >= up + HEALED_WITHIN]
    assert before and all(s.status == 200 for s in before), [s for s in before if s.status != 200]
    # While the database is down: answers, and fast; nothing is let through on an unchecked credential.
    for kind in streams:
        assert len([s for s in outage if s.kind == kind]) >= 2, (kind, outage)
    assert all(s.status and s.took < 5 for s in outage), outage
    trusted = [s for s in outage if s.kind == "license" and s.started < down + LICENSE_TRUSTED_FOR]
    checked = [s for s in outage if s not in trusted]
    assert all(s.status != 200 for s in checked), [s for s in checked if s.status == 200]
    # ...and in each front door's own shape, never an HTML page: clients are told to try again.
    expected = {"health": (503, "error"), "api": (503, "database_unavailable"), "license": (503, "UNAVAILABLE")}
    assert {(s.kind, s.status, s.shape) for s in checked} == {(kind, *answer) for kind, answer in expected.items()}
    assert all((s.status, s.shape) in ((200, ""), expected["license"]) for s in trusted), trusted
    # Back: every request succeeds again, from the same process.
    for kind in streams:
        assert [s.status for s in healed if s.kind == kind] and all(s.status == 200 for s in healed), healed
    assert alive and web.log().count("Started server process") == 1
