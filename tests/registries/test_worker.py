"""Connection tests end to end: API → Redis → a real Celery worker → the stored result.

Also what the broker holds (the test id, never a credential) and what happens when a worker is
`kill -9`ed mid-test: the message stays unacked in Redis (task_acks_late) and is handed out again
once the broker's visibility_timeout has passed; the next worker runs the test to the end.
"""

from __future__ import annotations

import base64
import itertools
import json
import signal
from contextlib import ExitStack

import pytest
import redis
from django.conf import settings

from registries import services
from registries.models import CheckStatus, RegistryTest
from tests import factories
from tests.celery_worker import Worker, celery_worker, wait_for
from tests.realparts.cloud import canary
from tests.realparts.loopback import Reply

pytestmark = [pytest.mark.slow]

TASK = "registries.tasks.registry_test_task"


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    yield client
    client.close()


@pytest.fixture
def workers(transactional_db, private_queue, tmp_path):
    """`start()` runs one more worker on the test's private queue and returns it; all are stopped
    after, cold (SIGQUIT): nothing is in flight any more. Several workers take turns here, hence
    this fixture of its own rather than `celery_worker_process`."""
    numbers = itertools.count(1)
    with ExitStack() as started:

        def start() -> Worker:
            log = tmp_path / f"worker-{next(numbers)}.log"
            return started.enter_context(
                celery_worker(
                    log, "--without-mingle", "--without-gossip", queue=private_queue, stop_signal=signal.SIGQUIT
                )
            )

        yield start


def _request_test(admin_api, registry_id: int) -> int:
    response = admin_api.post(
        f"/api/v1/external-registries/{registry_id}/test/", {"image": "acme/api:1.0.0"}, format="json"
    )
    assert response.status_code == 202, response.content
    return response.json()["id"]


def _decoded(raw: bytes) -> tuple[dict, list]:
    """A kombu message from the Redis list: (headers, [args, kwargs, embed])."""
    message = json.loads(raw)
    return message["headers"], json.loads(base64.b64decode(message["body"]))


def _leak_forms(secret: str) -> list[str]:
    forms = []
    for raw in (secret, f"acme:{secret}"):
        forms += [raw, base64.b64encode(raw.encode()).decode(), base64.urlsafe_b64encode(raw.encode()).decode()]
    return forms


def _everything_in(broker: redis.Redis) -> str:
    """Every key and value in the broker's database, raw, plus each message body decoded."""
    parts: list[bytes] = []
    for key in broker.scan_iter():
        kind = broker.type(key)
        if kind == b"list":
            values = broker.lrange(key, 0, -1)
        elif kind == b"hash":
            values = [v for pair in broker.hgetall(key).items() for v in pair]
        elif kind == b"zset":
            values = broker.zrange(key, 0, -1)
        elif kind == b"set":
            values = list(broker.smembers(key))
        elif kind == b"string":
            values = [broker.get(key) or b""]
        else:
            values = []
        parts += [key, *values]
        for value in values:  # message bodies are base64: look inside too
            try:
                loaded = json.loads(value)
                message = loaded[0] if isinstance(loaded, list) else loaded  # unacked: [message, exchange, key]
                parts.append(base64.b64decode(message["body"]))
            except (ValueError, TypeError, KeyError, IndexError):
                pass
    return b"\n".join(parts).decode("utf-8", "replace")


def test_a_connection_test_runs_on_a_real_worker_and_reports_the_digest(workers, admin_api, actor, basic_registry):
    registry = factories.connect_registry(actor, basic_registry)
    worker = workers()
    test_id = _request_test(admin_api, registry.pk)
    result = lambda: admin_api.get(f"/api/v1/registry-tests/{test_id}/").json()  # noqa: E731
    assert wait_for(lambda: result()["done"]), worker.log.read_text()
    body = result()
    assert body["status"] == "succeeded", body
    assert body["result"]["digest"] == basic_registry.images["api"].digest
    assert basic_registry.password not in worker.log.read_text()


def test_the_broker_message_carries_only_the_test_id(db, private_queue, admin_api, broker):
    """C3, with no worker running: the queued message and every other broker key."""
    password = canary()
    created = admin_api.post(
        "/api/v1/external-registries/",
        {"provider": "other", "endpoint": "127.0.0.1:5999", "username": "acme", "password": password,
         "skip_validation": True},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    test_id = _request_test(admin_api, created.json()["id"])
    mine = [raw for raw in broker.lrange(private_queue, 0, -1) if _decoded(raw)[0]["task"] == TASK and _decoded(raw)[1][0] == [test_id]]  # fmt: skip
    try:
        assert len(mine) == 1
        headers, (args, kwargs, _) = _decoded(mine[0])
        assert (args, kwargs) == ([test_id], {})
        assert headers["argsrepr"] == f"({test_id},)"
        dump = _everything_in(broker)
        assert str(test_id) in dump
        assert [form for form in _leak_forms(password) if form in dump] == []
        assert "v1:" not in mine[0].decode() + json.dumps(_decoded(mine[0])[1])  # not even the ciphertext
    finally:
        for raw in mine:
            broker.lrem(private_queue, 0, raw)


def test_a_worker_killed_mid_test_leaves_it_redelivered_and_finished(
    workers, admin_api, actor, broker, loopback_server, private_queue
):
    """F8(a). Redis redelivers an unacked message only after visibility_timeout (settings: 1 h), so the
    test ages the message instead of waiting; until then the test reads "running"."""
    upstream = loopback_server().on("*", Reply.hanging())
    password = canary()
    registry = services.registry_create(
        actor=actor, provider="other", endpoint=upstream.url, username="acme", password=password, skip_validation=True
    )
    first = workers()
    test_id = _request_test(admin_api, registry.pk)
    running = lambda: RegistryTest.objects.get(pk=test_id).status == CheckStatus.RUNNING  # noqa: E731
    assert wait_for(lambda: running() and upstream.requests), first.log.read_text()
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)

    # Not acked (task_acks_late): the message waits in Redis' unacked hash, still only the test id.
    unacked = {tag: json.loads(raw) for tag, raw in broker.hgetall("unacked").items()}
    tags = [tag for tag, (message, _, routing_key) in unacked.items() if routing_key == private_queue]
    assert [json.loads(base64.b64decode(unacked[tag][0]["body"]))[0] for tag in tags] == [[test_id]]
    assert [form for form in _leak_forms(password) if form in _everything_in(broker)] == []
    assert running()

    # The hour passes (the message is made older than visibility_timeout), the upstream answers
    # again, a new worker starts: it takes the message back and runs the test to the end.
    broker.zadd("unacked_index", {tags[0]: 0})
    upstream.on("*", Reply.error(503))
    seen = len(upstream.requests)
    second = workers()
    test = lambda: RegistryTest.objects.get(pk=test_id)  # noqa: E731
    assert wait_for(lambda: test().done, timeout=30), second.log.read_text()
    assert (test().status, test().category) == (CheckStatus.FAILED, "upstream_error")
    assert test().finished_at is not None and len(upstream.requests) > seen
    assert not broker.hexists("unacked", tags[0])  # acked this time
