"""Resolving a release's images against real registries: Distribution with basic, token and no
auth seeded by skopeo (a single-platform OCI image, a Docker schema 2 image, a two-platform
OCI index), the portal's private registry, and a real Celery worker for the whole path from
upload to `ready`. The hostile answers come from the loopback server, which says anything."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from licenses import releases
from licenses.models import Release, ReleaseFinding, ReleaseStatus, Visibility
from portal import crypto
from registries import release_resolve
from registries import services as registries
from registries.models import ExternalRegistry
from registries.release_resolve import RESOLVE_RULES
from tests import factories
from tests.celery_worker import wait_for
from tests.realparts.loopback import Reply
from tests.releasefiles import settings_file

pytestmark = [pytest.mark.slow]


def create(actor, app, *images: dict, extra: dict[str, str] | None = None) -> Release:
    release, _ = releases.release_create(
        actor=actor, app=app, files={"app.yaml": settings_file(*images), **(extra or {})}
    )
    return release


def image_size(manifest: bytes) -> int:
    data = json.loads(manifest)
    return data["config"]["size"] + sum(layer["size"] for layer in data["layers"])


def resolve_findings(release: Release) -> list[ReleaseFinding]:
    return list(release.findings.filter(rule__in=RESOLVE_RULES).select_related("image"))


@pytest.fixture
def wrong_password_registry(actor, basic_registry):
    """The basic-auth registry saved with a password it refuses (validation skipped)."""
    return registries.registry_create(
        actor=actor, provider="other", endpoint=basic_registry.endpoint, name="wrong",
        username=basic_registry.username, password="not-the-password", skip_validation=True,
    )  # fmt: skip


@pytest.fixture
def gone_registry(actor, closed_port):
    """A registry named `gone` on a port nothing listens on (validation skipped)."""
    return registries.registry_create(
        actor=actor, provider="other", endpoint=f"http://127.0.0.1:{closed_port}", name="gone",
        username="vendor", password="secret", skip_validation=True,
    )  # fmt: skip


@pytest.mark.django_db
def test_images_resolve_to_their_digest_platforms_size_and_visibility(
    actor, app, basic_registry, token_registry, open_registry, oci_layouts
):
    factories.connect_registry(actor, basic_registry, name="basic")
    factories.connect_registry(actor, token_registry, name="token")
    factories.connect_registry(actor, open_registry, name="open")
    release = create(
        actor, app,
        {"source": "basic", "name": "acme/api", "tag": "1.0.0"},
        {"source": "token", "name": "acme/multi", "tag": "1.0.0"},
        {"source": "basic", "name": "acme/v2s2", "tag": "1.0.0"},
        {"source": "open", "name": "acme/api", "tag": "1.0.0"},
        {"source": "public", "name": f"{open_registry.netloc}/acme/multi", "digest": open_registry.images["multi"].digest},
    )  # fmt: skip
    assert release.status == ReleaseStatus.RESOLVING

    result = release_resolve.release_resolve(release.pk)

    release.refresh_from_db()
    assert (result.status, result.errors) == (ReleaseStatus.READY, 0)
    assert release.status == ReleaseStatus.READY and release.resolved_at is not None
    assert resolve_findings(release) == []
    api, multi, v2s2, open_api, public_multi = release.images.order_by("position")

    pushed = basic_registry.images["api"]
    assert (api.resolved_digest, api.media_type) == (pushed.digest, pushed.media_type)
    assert (api.platforms, api.size) == (["linux/amd64"], image_size(pushed.manifest))
    # Basic auth and token auth: an anonymous fetch is refused, so the images are private.
    assert api.visibility == Visibility.PRIVATE

    layout = oci_layouts["multi"].directory / "blobs" / "sha256"
    child_sizes = [image_size((layout / d.split(":")[1]).read_bytes()) for d in oci_layouts["multi"].child_digests]
    assert multi.resolved_digest == token_registry.images["multi"].digest
    assert multi.media_type == "application/vnd.oci.image.index.v1+json"
    assert multi.platforms == ["linux/amd64", "linux/arm64"]
    assert multi.size == max(child_sizes)
    assert multi.visibility == Visibility.PRIVATE

    # Docker schema 2: the platform comes from its Docker config blob.
    assert v2s2.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert (v2s2.platforms, v2s2.size) == (["linux/amd64"], image_size(basic_registry.images["v2s2"].manifest))

    # A registry anyone may read: public, whether listed under its name or as `public`.
    assert (open_api.resolved_digest, open_api.visibility) == (open_registry.images["api"].digest, Visibility.PUBLIC)
    assert public_multi.resolved_digest == open_registry.images["multi"].digest
    assert (public_multi.visibility, public_multi.platforms) == (Visibility.PUBLIC, ["linux/amd64", "linux/arm64"])

    event = AuditEvent.objects.get(action="release.resolve")
    assert (event.actor, event.target, event.detail["status"]) == ("release resolver", f"{app.slug}#1", "ready")


@pytest.mark.django_db
def test_wrong_credentials_a_missing_tag_and_a_closed_port_are_findings_and_the_release_fails(
    actor, app, basic_registry, token_registry, wrong_password_registry, gone_registry, closed_port
):
    factories.connect_registry(actor, token_registry, name="token")
    release = create(
        actor, app,
        {"source": "wrong", "name": "acme/api", "tag": "1.0.0"},
        {"source": "token", "name": "acme/api", "tag": "9.9.9"},
        {"source": "gone", "name": "acme/api", "tag": "1.0.0"},
        {"source": "token", "name": "acme/api", "tag": "1.0.0"},
    )  # fmt: skip

    result = release_resolve.release_resolve(release.pk)

    release.refresh_from_db()
    assert (release.status, result.errors) == (ReleaseStatus.FAILED, 3)
    assert release.resolved_at is not None
    findings = {f.image.position: f for f in resolve_findings(release)}
    assert {p: f.rule for p, f in findings.items()} == {
        0: "credentials-rejected",
        1: "image-not-found",
        2: "upstream-unreachable",
    }
    for finding in findings.values():
        assert finding.level == "error"
        assert finding.file == "app.yaml" and finding.line is not None
    assert findings[0].line < findings[1].line < findings[2].line
    assert "wrong" in findings[0].message and "update them on the registry's page" in findings[0].message
    assert "acme/api:9.9.9" in findings[1].message and "push it" in findings[1].message
    assert f"127.0.0.1:{closed_port}" in findings[2].message and "connect" in findings[2].message
    # The credentials never appear in a finding.
    assert not any("not-the-password" in f.message or token_registry.password in f.message for f in findings.values())
    # The image that resolved keeps what was found; the failed ones have nothing.
    images = list(release.images.order_by("position"))
    assert images[3].resolved_digest == token_registry.images["api"].digest
    assert [i.resolved_digest for i in images[:3]] == ["", "", ""]


@pytest.mark.django_db
def test_an_unreachable_upstream_leaves_the_release_resolving_until_the_last_try(actor, app, gone_registry):
    release = create(actor, app, {"source": "gone", "name": "acme/api", "tag": "1.0.0"})

    early = release_resolve.release_resolve(release.pk, final=False)
    release.refresh_from_db()
    assert (release.status, release.resolved_at) == (ReleaseStatus.RESOLVING, None)
    assert early.retry_after is not None
    assert [f.rule for f in resolve_findings(release)] == ["upstream-unreachable"]
    assert "tries again" in resolve_findings(release)[0].message

    last = release_resolve.release_resolve(release.pk, final=True)
    release.refresh_from_db()
    assert (release.status, last.retry_after) == (ReleaseStatus.FAILED, None)
    assert [f.rule for f in resolve_findings(release)] == ["upstream-unreachable"]  # not one per try


@pytest.mark.django_db
def test_resolving_again_replaces_its_own_findings_and_keeps_the_lints(
    actor, app, basic_registry, wrong_password_registry
):
    release = create(actor, app, {"source": "wrong", "name": "acme/api", "tag": "1.0.0"})
    # A finding of the lint, as release_create stores it (the lint's own rules are its business).
    ReleaseFinding.objects.create(
        release=release, level="warning", rule="latest-tag", file="deploy.yaml", line=9, message="redis has no tag"
    )
    lints = sorted(release.findings.values_list("rule", flat=True))

    release_resolve.release_resolve(release.pk)
    release_resolve.release_resolve(release.pk)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.FAILED
    assert [f.rule for f in resolve_findings(release)] == ["credentials-rejected"]

    # The vendor fixes the password; resolving again makes the same release ready.
    registries.registry_update(actor=actor, registry=wrong_password_registry, password=basic_registry.password)
    release_resolve.release_resolve(release.pk)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.READY
    assert resolve_findings(release) == []
    assert sorted(release.findings.values_list("rule", flat=True)) == lints


@pytest.mark.django_db
def test_the_task_tries_an_unreachable_upstream_again_before_failing_the_release(
    actor, app, gone_registry, monkeypatch
):
    """Run eagerly (`apply`): Celery then runs each retry at once instead of after its countdown."""
    from registries import tasks

    calls = []
    resolve = release_resolve.release_resolve

    def counted(release_id, *, final):
        calls.append(final)
        return resolve(release_id, final=final)

    monkeypatch.setattr(release_resolve, "release_resolve", counted)
    release = create(actor, app, {"source": "gone", "name": "acme/api", "tag": "1.0.0"})

    tasks.release_resolve_task.apply(args=[release.pk])

    assert calls == [False] * release_resolve.RETRIES + [True]
    release.refresh_from_db()
    assert release.status == ReleaseStatus.FAILED
    assert [f.rule for f in resolve_findings(release)] == ["upstream-unreachable"]


@pytest.mark.django_db
def test_a_refused_minted_ecr_token_is_minted_again_once(actor, app, moto_ecr, ecr_basic_registry):
    registry = registries.registry_create(
        actor=actor, provider="ecr", endpoint=ecr_basic_registry.endpoint, region="us-east-1", name="ecr",
        username="AKIAIOSFODNN7EXAMPLE", secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )  # fmt: skip
    # A cached token the registry no longer takes (expired early, or revoked upstream).
    stale = crypto.encrypt(
        json.dumps({"username": "AWS", "password": "stale"}), aad=registries._aad(registry, "minted")
    )
    ExternalRegistry.objects.filter(pk=registry.pk).update(
        minted_token=stale, minted_token_expires_at=timezone.now() + timedelta(hours=1)
    )
    release = create(actor, app, {"source": "ecr", "name": "acme/api", "tag": "1.0.0"})

    release_resolve.release_resolve(release.pk)

    release.refresh_from_db()
    assert release.status == ReleaseStatus.READY, [f.message for f in resolve_findings(release)]
    image = release.images.get()
    assert (image.resolved_digest, image.visibility) == (ecr_basic_registry.images["api"].digest, Visibility.PRIVATE)
    registry.refresh_from_db()
    cached = json.loads(crypto.decrypt(registry.minted_token, aad=registries._aad(registry, "minted")))
    assert cached["password"] != "stale"


@pytest.mark.django_db
def test_a_listed_digest_the_tag_does_not_point_to_is_an_error(actor, app, basic_registry):
    factories.connect_registry(actor, basic_registry, name="basic")
    other = basic_registry.images["secret"].digest
    release = create(actor, app, {"source": "basic", "name": "acme/api", "tag": "1.0.0", "digest": other})

    release_resolve.release_resolve(release.pk)

    release.refresh_from_db()
    assert release.status == ReleaseStatus.FAILED
    (finding,) = resolve_findings(release)
    assert finding.rule == "digest-mismatch"
    assert basic_registry.images["api"].digest in finding.message and other in finding.message
    assert release.images.get().resolved_digest == basic_registry.images["api"].digest


@pytest.mark.django_db
def test_hostile_upstream_answers_become_findings_never_a_crash(actor, app, loopback_server, monkeypatch):
    monkeypatch.setattr(release_resolve, "IMAGE_TIMEOUT", 2.0)
    server = loopback_server()
    server.on("/v2/", Reply(200, {"Docker-Distribution-API-Version": "registry/2.0"}))
    huge = json.dumps({"schemaVersion": 2, "padding": "x" * (5 * 1024 * 1024)}).encode()
    server.on("/v2/huge/manifests/1", Reply(200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, huge))
    server.on("/v2/deep/manifests/1", Reply(200, {"Content-Type": "application/json"}, b"[" * 100_000))
    server.on(
        "/v2/html/manifests/1", Reply(200, {"Content-Type": "text/html"}, b'{"schemaVersion": 2, "x": "SECRET-BODY"}')
    )
    server.on("/v2/hangs/manifests/1", Reply.hanging())
    names = ["huge", "deep", "html", "hangs"]
    release = create(actor, app, *({"source": "public", "name": f"{server.netloc}/{n}", "tag": "1"} for n in names))

    result = release_resolve.release_resolve(release.pk)

    release.refresh_from_db()
    assert (release.status, result.errors) == (ReleaseStatus.FAILED, 4)
    rules = {f.image.name.rsplit("/", 1)[1]: f for f in resolve_findings(release)}
    assert {n: f.rule for n, f in rules.items()} == {
        "huge": "invalid-manifest",
        "deep": "invalid-manifest",
        "html": "invalid-manifest",
        "hangs": "upstream-unreachable",
    }
    assert "too large" in rules["huge"].message
    assert "timeout" in rules["hangs"].message
    assert not any("SECRET-BODY" in f.message for f in rules.values())


@pytest.mark.django_db
def test_an_index_of_a_hundred_platforms_is_read_only_up_to_its_first_32(actor, app, loopback_server):
    oci = "application/vnd.oci.image.manifest.v1+json"
    child = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": oci,
            "config": {"mediaType": "application/vnd.example.config", "digest": "sha256:" + "1" * 64, "size": 7},
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": "sha256:" + "2" * 64,
                    "size": 1000,
                }
            ],
        }  # fmt: skip
    ).encode()
    child_digest = "sha256:" + hashlib.sha256(child).hexdigest()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": oci,
                    "digest": child_digest,
                    "size": len(child),
                    "platform": {"os": "linux", "architecture": f"arch{i}"},
                }
                for i in range(100)
            ],
        }  # fmt: skip
    ).encode()
    server = loopback_server()
    server.on("/v2/", Reply(200))
    server.on("/v2/many/manifests/1", Reply(200, {"Content-Type": "application/vnd.oci.image.index.v1+json"}, index))
    server.on(f"/v2/many/manifests/{child_digest}", Reply(200, {"Content-Type": oci}, child))
    release = create(actor, app, {"source": "public", "name": f"{server.netloc}/many", "tag": "1"})

    release_resolve.release_resolve(release.pk)

    image = release.images.get()
    assert image.platforms == [f"linux/arch{i}" for i in range(32)]
    assert image.size == 1007
    assert sum(r.path.endswith(child_digest) for r in server.requests) == 32


@pytest.mark.django_db
def test_a_registry_deleted_since_the_upload_is_a_finding(actor, app, basic_registry):
    registry = factories.connect_registry(actor, basic_registry, name="basic")
    release = create(actor, app, {"source": "basic", "name": "acme/api", "tag": "1.0.0"})
    registries.registry_delete(actor=actor, registry=registry)

    release_resolve.release_resolve(release.pk)

    release.refresh_from_db()
    (finding,) = resolve_findings(release)
    assert (release.status, finding.rule) == (ReleaseStatus.FAILED, "upstream-unreachable")
    assert "no registry named “basic”" in finding.message


@pytest.mark.django_db
def test_the_sweep_queues_releases_stuck_resolving_and_gives_up_after_a_day(actor, app, basic_registry):
    factories.connect_registry(actor, basic_registry, name="basic")
    image = {"source": "basic", "name": "acme/api", "tag": "1.0.0"}
    fresh, stuck, ancient = (create(actor, app, image) for _ in range(3))
    now = timezone.now()
    Release.objects.filter(pk=stuck.pk).update(created_at=now - timedelta(minutes=15))
    Release.objects.filter(pk=ancient.pk).update(created_at=now - timedelta(days=2))

    assert release_resolve.releases_stuck() == [stuck.pk]

    ancient.refresh_from_db()
    assert ancient.status == ReleaseStatus.FAILED
    assert [f.rule for f in ancient.findings.filter(rule__in=RESOLVE_RULES)] == ["upstream-unreachable"]
    fresh.refresh_from_db()
    assert fresh.status == ReleaseStatus.RESOLVING


@pytest.mark.django_db(transaction=True)
def test_a_replicated_image_resolves_from_the_private_registry(
    private_registry, settings, actor, app, admin, team, oci_layouts
):
    settings.REGISTRY_URL = f"http://{private_registry.netloc}"
    settings.REGISTRY_HOST = private_registry.netloc
    creds = f"admin@acme.test:{factories.user_token(admin, team)}"
    layout = oci_layouts["multi"]
    private_registry.push(layout.source, f"{app.slug}/worker:1.4.2", creds)
    release = create(
        actor, app,
        {"source": "replicated", "name": "worker", "tag": "1.4.2"},
        {"source": "replicated", "name": "worker", "tag": "0.0.1"},
    )  # fmt: skip

    release_resolve.release_resolve(release.pk)

    worker, missing = release.images.order_by("position")
    assert worker.resolved_digest == layout.digest
    assert (worker.platforms, worker.visibility) == (["linux/amd64", "linux/arm64"], Visibility.PRIVATE)
    assert worker.size is not None and worker.size > 0
    (finding,) = resolve_findings(release)
    assert (finding.image_id, finding.rule) == (missing.pk, "image-not-found")


@pytest.mark.django_db(transaction=True)
def test_a_new_release_is_resolved_by_the_worker_and_becomes_ready(celery_worker_process, actor, app, basic_registry):
    factories.connect_registry(actor, basic_registry, name="basic")
    release = create(
        actor, app,
        {"source": "basic", "name": "acme/api", "tag": "1.0.0"},
        {"source": "basic", "name": "acme/multi", "tag": "1.0.0"},
    )  # fmt: skip

    assert wait_for(lambda: Release.objects.get(pk=release.pk).status != ReleaseStatus.RESOLVING, timeout=30), (
        celery_worker_process.log.read_text()
    )
    release.refresh_from_db()
    assert release.status == ReleaseStatus.READY
    assert [i.resolved_digest for i in release.images.order_by("position")] == [
        basic_registry.images["api"].digest,
        basic_registry.images["multi"].digest,
    ]


@pytest.mark.django_db(transaction=True)
def test_a_release_created_while_the_queue_is_down_stays_resolving_for_the_sweep(
    actor, app, basic_registry, private_queue, monkeypatch, caplog
):
    from portal.celery import app as celery_app

    url = "redis://127.0.0.1:1/0"
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    monkeypatch.setitem(celery_app.conf, "broker_url", url)
    monkeypatch.setattr(celery_app, "_pool", None)
    monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)
    factories.connect_registry(actor, basic_registry, name="basic")

    release = create(actor, app, {"source": "basic", "name": "acme/api", "tag": "1.0.0"})

    release.refresh_from_db()
    assert release.status == ReleaseStatus.RESOLVING
    assert "resolving not queued" in caplog.text
