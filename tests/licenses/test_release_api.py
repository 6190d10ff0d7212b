"""The releases API: /api/v1/apps/<slug>/releases/ (upload as .tar.gz, files or JSON; lint;
promote), …/channels/ and …/repository-rules/, and a license's channel."""

from __future__ import annotations

import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import AuditEvent
from licenses import releases, services
from licenses.models import Channel, License, Release, ReleaseFinding, ReleaseStatus
from licenses.release_files import MAX_ARCHIVE_BYTES, MAX_FILES
from tests import factories
from tests.releasefiles import DEPLOYMENT, EMPTY, FILES, SETTINGS, create_release, tarball

pytestmark = pytest.mark.django_db

DIGEST = "sha256:" + "b" * 64


def url(app, rest: str = "") -> str:
    return f"/api/v1/apps/{app.slug}/releases/{rest}"


def upload(data: bytes, name: str = "release.tar.gz") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/gzip")


def assert_invalid(response, field: str) -> dict:
    assert response.status_code == 400, response.content[:500]
    body = response.json()
    assert body["code"] == "invalid" and field in body["errors"], body
    assert body["message"].startswith(f"{field}: "), body
    return body


# --- create --------------------------------------------------------------------------------


def test_create_from_a_tarball_stores_files_images_and_promotes(developer_api, app, settings):
    settings.REGISTRY_HOST = "registry.example.test"
    body = {
        "archive": upload(tarball(FILES, top="acme-1.4.2/")),
        "version": "1.4.2",
        "notes": "Faster.",
        "promote": "beta",
    }
    response = developer_api.post(url(app), body, format="multipart")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert (data["sequence"], data["version"], data["notes"], data["status"]) == (1, "1.4.2", "Faster.", "resolving")
    assert data["created_by"] == "dev@acme.test" and data["channels"] == ["beta"]
    assert data["files"] == ["app.yaml", "manifests/api.yaml"], "the archive's top folder is not part of the paths"
    assert data["additional_namespaces"] == ["monitoring"]
    assert [(i["source"], i["name"], i["tag"], i["host"], i["repository"]) for i in data["images"]] == [
        ("public", "redis", "7.2", "index.docker.io", "library/redis"),
        ("replicated", "worker", "1.4.2", "registry.example.test", "acme-api/worker"),
    ]
    assert data["images"][0]["digest"] == "" and data["images"][0]["visibility"] == ""
    release = Release.objects.get(app=app)
    assert release.promotions.get().channel.name == "beta"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"release.create", "release.promote"} <= actions


def test_create_from_several_file_parts(developer_api, app):
    parts = [
        SimpleUploadedFile(name, text.encode()) for name, text in {"app.yaml": SETTINGS, "api.yml": DEPLOYMENT}.items()
    ]
    parts.append(SimpleUploadedFile("README.md", b"# not YAML, left out"))
    response = developer_api.post(url(app), {"files": parts, "version": "2"}, format="multipart")
    assert response.status_code == 201, response.json()
    assert response.json()["files"] == ["api.yml", "app.yaml"]


def test_create_from_json(developer_api, app):
    response = developer_api.post(url(app), {"files": EMPTY, "version": " 1.0 ", "promote": "stable"}, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert (data["sequence"], data["version"], data["status"], data["images"]) == (1, "1.0", "ready", [])
    assert data["channels"] == ["stable"]


def test_lint_errors_answer_400_with_every_finding_naming_files_and_store_nothing(developer_api, app):
    files = {
        "app.yaml": "images:\n- source: quay-prod\n  name: acme/api\n  tag: '1.0'\n",
        "broken.yaml": "a: [1\n",
        "api.yaml": DEPLOYMENT,  # redis:7.2 is not listed: a warning, reported too
    }
    response = developer_api.post(url(app), {"archive": upload(tarball(files))}, format="multipart")
    body = assert_invalid(response, "files")
    errors = body["errors"]["files"]
    assert any(line.startswith("ERROR yaml-syntax broken.yaml:") for line in errors), errors
    assert any(line.startswith("ERROR unknown-source app.yaml:2 ") and "quay-prod" in line for line in errors), errors
    assert all(line.startswith("ERROR ") for line in errors)
    by_rule = {f["rule"]: f for f in body["findings"]}
    assert by_rule["unknown-source"] == {
        "level": "error", "rule": "unknown-source", "file": "app.yaml", "line": 2,
        "message": by_rule["unknown-source"]["message"], "image": None, "text": by_rule["unknown-source"]["text"],
    }  # fmt: skip
    assert body["lines"] == [f["text"] for f in body["findings"]]
    assert "(and 1 more)" in body["message"]
    assert not Release.objects.exists() and not ReleaseFinding.objects.exists()


@pytest.mark.parametrize(
    ("body", "fmt", "reason"),
    [
        ({}, "json", 'Send {"files"'),
        ({"files": ["app.yaml"]}, "json", '"files" maps each path to its text'),
        ({"files": {"app.yaml": 3}}, "json", '"files" maps each path to its text'),
        ({"files": {"../../etc/passwd.yaml": "a: 1"}}, "json", "is not a path inside the release"),
        ({"files": {"notes.txt": "hello"}}, "json", "No .yaml or .yml files found"),
        ({"version": "1"}, "multipart", "as an `archive` part (.tar.gz) or as `files` parts"),
        ({"archive": "not-a-file"}, "multipart", "as an `archive` part"),
    ],
)
def test_an_upload_without_usable_files_is_refused_by_field(developer_api, app, body, fmt, reason):
    body = assert_invalid(developer_api.post(url(app), body, format=fmt), "files")
    assert reason in body["errors"]["files"][0]
    assert not Release.objects.exists()


def test_an_archive_that_is_not_a_tarball_or_too_large_is_refused(developer_api, app):
    body = assert_invalid(
        developer_api.post(url(app), {"archive": upload(b"PK\x03\x04zip")}, format="multipart"), "files"
    )
    assert "Not a readable .tar.gz" in body["errors"]["files"][0]
    big = upload(os.urandom(MAX_ARCHIVE_BYTES + 10))
    body = assert_invalid(developer_api.post(url(app), {"archive": big}, format="multipart"), "files")
    assert body["errors"]["files"] == ["The archive is larger than 16 MiB."]
    both = {"archive": upload(tarball(EMPTY)), "files": [SimpleUploadedFile("a.yaml", b"a: 1")]}
    body = assert_invalid(developer_api.post(url(app), both, format="multipart"), "files")
    assert body["errors"]["files"] == ["Send an archive or files, not both."]
    assert not Release.objects.exists()


def test_a_folder_of_more_files_than_a_release_holds_is_refused(developer_api, app, settings):
    parts = [SimpleUploadedFile(f"f{n}.yaml", b"a: 1\n") for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FILES + 1)]
    response = developer_api.post(url(app), {"files": parts}, format="multipart")
    assert response.status_code == 400
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
    assert response.json() == {"code": "too_many_files", "message": f"Too many files in one request: at most {limit}."}
    over = [SimpleUploadedFile(f"f{n}.yaml", b"a: 1\n") for n in range(MAX_FILES + 1)]
    body = assert_invalid(developer_api.post(url(app), {"files": over}, format="multipart"), "files")
    assert body["errors"]["files"] == ["A release holds at most 1000 YAML files."]
    assert not Release.objects.exists()


def test_a_bad_version_or_unknown_channel_is_refused_by_field(developer_api, app):
    assert_invalid(developer_api.post(url(app), {"files": EMPTY, "version": "v" * 65}, format="json"), "version")
    body = assert_invalid(developer_api.post(url(app), {"files": EMPTY, "promote": "gold"}, format="json"), "channel")
    assert "stable, beta, unstable" in body["message"]
    assert not Release.objects.exists()


def test_a_json_upload_over_the_json_limit_is_refused_in_the_api_shape(developer_api, app, settings):
    big = {"files": {"app.yaml": "images: []\n# " + "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)}}
    response = developer_api.post(url(app), big, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "too_large"
    assert not Release.objects.exists()


# --- list, detail --------------------------------------------------------------------------


def test_list_is_newest_first_and_paginated(developer_api, actor, app):
    for version in ("1", "2", "3"):
        create_release(actor, app, version=version)
    create_release(actor, factories.make_app(actor.team))  # another app's release
    first = developer_api.get(url(app), {"page_size": 2}).json()
    assert first["count"] == 3 and first["next"]
    assert [r["sequence"] for r in first["results"]] == [3, 2]
    assert set(first["results"][0]) == {
        "sequence", "version", "notes", "status", "created_by", "created_at", "resolved_at", "channels",
    }  # fmt: skip
    second = developer_api.get(url(app), {"page_size": 2, "page": 2}).json()
    assert [r["sequence"] for r in second["results"]] == [1] and second["next"] is None


def test_detail_shows_resolved_images_with_their_findings(viewer_api, actor, app):
    release = create_release(actor, app, FILES)
    redis, worker = release.images.all()
    redis.resolved_digest = DIGEST
    redis.visibility, redis.platforms, redis.size = "public", ["linux/amd64", "linux/arm64"], 41_000_000
    redis.media_type = "application/vnd.oci.image.index.v1+json"
    redis.save()
    ReleaseFinding.objects.create(
        release=release, level="error", rule="image-not-found", message="worker:1.4.2 is not there", image=worker
    )
    Release.objects.filter(pk=release.pk).update(status=ReleaseStatus.FAILED)
    data = viewer_api.get(url(app, f"{release.sequence}/")).json()
    assert data["status"] == "failed"
    image = data["images"][0]
    assert (image["digest"], image["listed_digest"], image["visibility"], image["size"]) == (
        DIGEST, "", "public", 41_000_000,
    )  # fmt: skip
    assert image["platforms"] == ["linux/amd64", "linux/arm64"] and image["findings"] == []
    assert data["images"][1]["findings"][0]["text"] == "ERROR image-not-found  worker:1.4.2 is not there"
    image_finding = next(f for f in data["findings"] if f["rule"] == "image-not-found")
    assert image_finding["image"] == 1
    assert data["files"] == ["app.yaml", "manifests/api.yaml"]
    assert viewer_api.get(url(app, "99/")).status_code == 404


# --- promote --------------------------------------------------------------------------------


def test_promote_makes_it_the_channels_current_release(developer_api, actor, app):
    one = create_release(actor, app)
    create_release(actor, app)
    response = developer_api.post(url(app, f"{one.sequence}/promote/"), {"channel": "stable"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["channels"] == ["stable"]
    assert releases.channel_current(releases.channel_get(app, "stable")) == one
    assert AuditEvent.objects.filter(action="release.promote", target=f"{app.slug}#1").exists()


def test_promote_to_an_unknown_channel_or_a_failed_release_is_refused(developer_api, actor, app):
    release = create_release(actor, app)
    assert_invalid(developer_api.post(url(app, "1/promote/"), {"channel": "gold"}, format="json"), "channel")
    assert_invalid(developer_api.post(url(app, "1/promote/"), {}, format="json"), "channel")
    Release.objects.filter(pk=release.pk).update(status=ReleaseStatus.FAILED)
    body = assert_invalid(developer_api.post(url(app, "1/promote/"), {"channel": "stable"}, format="json"), "release")
    assert "failed to resolve" in body["message"]
    assert not release.promotions.exists()


# --- lint ------------------------------------------------------------------------------------


def test_lint_answers_findings_and_ok_and_stores_nothing(viewer_api, app):
    response = viewer_api.post(url(app, "lint/"), {"archive": upload(tarball(FILES))}, format="multipart")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["ok"] is True
    assert [i["name"] for i in data["images"]] == ["redis", "worker"]
    assert data["additional_namespaces"] == ["monitoring"]
    assert data["lines"] == [f["text"] for f in data["findings"]]

    bad = viewer_api.post(url(app, "lint/"), {"files": {"x.yaml": "a: [1\n"}}, format="json").json()
    assert bad["ok"] is False
    assert bad["lines"][0].startswith("ERROR yaml-syntax x.yaml:")
    assert not Release.objects.exists()


# --- permissions and isolation -----------------------------------------------------------------


def test_another_teams_app_and_releases_are_404(outsider_api, actor, app):
    create_release(actor, app)
    calls = {
        "list": lambda: outsider_api.get(url(app)),
        "detail": lambda: outsider_api.get(url(app, "1/")),
        "create": lambda: outsider_api.post(url(app), {"files": EMPTY}, format="json"),
        "lint": lambda: outsider_api.post(url(app, "lint/"), {"files": EMPTY}, format="json"),
        "promote": lambda: outsider_api.post(url(app, "1/promote/"), {"channel": "stable"}, format="json"),
        "channels": lambda: outsider_api.get(f"/api/v1/apps/{app.slug}/channels/"),
        "channel": lambda: outsider_api.get(f"/api/v1/apps/{app.slug}/channels/stable/"),
        "channel create": lambda: outsider_api.post(f"/api/v1/apps/{app.slug}/channels/", {"name": "x"}, format="json"),
        "rules": lambda: outsider_api.get(f"/api/v1/apps/{app.slug}/repository-rules/"),
        "rules put": lambda: outsider_api.put(
            f"/api/v1/apps/{app.slug}/repository-rules/", {"repository_rules": []}, format="json"
        ),
    }
    for name, call in calls.items():
        response = call()
        assert response.status_code == 404, (name, response.content[:300])
        assert response.json()["code"] == "not_found"
    assert Release.objects.count() == 1 and not Release.objects.get().promotions.exists()


def test_a_viewer_reads_and_lints_but_cannot_write(viewer_api, actor, app):
    create_release(actor, app)
    assert viewer_api.get(url(app)).status_code == 200
    assert viewer_api.get(f"/api/v1/apps/{app.slug}/channels/").status_code == 200
    assert viewer_api.get(f"/api/v1/apps/{app.slug}/repository-rules/").status_code == 200
    writes = {
        "create": lambda: viewer_api.post(url(app), {"files": EMPTY}, format="json"),
        "promote": lambda: viewer_api.post(url(app, "1/promote/"), {"channel": "stable"}, format="json"),
        "channel create": lambda: viewer_api.post(f"/api/v1/apps/{app.slug}/channels/", {"name": "x"}, format="json"),
        "rules put": lambda: viewer_api.put(
            f"/api/v1/apps/{app.slug}/repository-rules/", {"repository_rules": ["quay.io/a/*"]}, format="json"
        ),
    }
    for name, call in writes.items():
        response = call()
        assert response.status_code == 403, (name, response.content[:300])
        assert response.json()["code"] == "permission_denied"
    assert Release.objects.count() == 1 and Channel.objects.filter(app=app).count() == 3
    app.refresh_from_db()
    assert app.repository_rules == []


def test_only_the_release_uploads_read_multipart(developer_api, actor, app):
    release = create_release(actor, app)
    response = developer_api.post(f"/api/v1/apps/{app.slug}/channels/", {"name": "lts"}, format="multipart")
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"
    response = developer_api.post(url(app, "1/promote/"), {"channel": "stable"}, format="multipart")
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"
    assert not Channel.objects.filter(name="lts").exists() and not release.promotions.exists()


# --- channels --------------------------------------------------------------------------------


def test_channels_list_their_current_release_and_license_count(developer_api, actor, app, customer_license):
    one = create_release(actor, app, version="1.0")
    two = create_release(actor, app, version="2.0")
    releases.release_promote(actor=actor, release=two, channel="beta")
    releases.release_promote(actor=actor, release=one, channel="beta")  # back to 1: the last promotion counts
    services.license_create(actor=actor, app=app, customer_name="Initech", channel="beta")
    rows = developer_api.get(f"/api/v1/apps/{app.slug}/channels/").json()["results"]
    assert [(c["name"], c["current_release"], c["current_version"], c["license_count"]) for c in rows] == [
        ("stable", None, None, 1),
        ("beta", 1, "1.0", 1),
        ("unstable", None, None, 0),
    ]
    beta = developer_api.get(f"/api/v1/apps/{app.slug}/channels/beta/").json()
    assert [(h["sequence"], h["promoted_by"]) for h in beta["history"]] == [
        (1, "admin@acme.test"),
        (2, "admin@acme.test"),
    ]


def test_create_a_channel(developer_api, app):
    response = developer_api.post(f"/api/v1/apps/{app.slug}/channels/", {"name": "LTS-2026"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json() == {
        "name": "lts-2026", "airgap": False, "current_release": None, "current_version": None, "license_count": 0,
        "created_at": response.json()["created_at"],
    }  # fmt: skip
    assert AuditEvent.objects.filter(action="channel.create", target=f"{app.slug}/lts-2026").exists()
    again = developer_api.post(f"/api/v1/apps/{app.slug}/channels/", {"name": "lts-2026"}, format="json")
    assert "already has a channel" in assert_invalid(again, "name")["message"]
    assert_invalid(developer_api.post(f"/api/v1/apps/{app.slug}/channels/", {"name": "No Way!"}, format="json"), "name")
    assert_invalid(developer_api.post(f"/api/v1/apps/{app.slug}/channels/", {}, format="json"), "name")
    assert Channel.objects.filter(app=app).count() == 4


# --- repository rules -------------------------------------------------------------------------


def test_repository_rules_are_read_and_replaced(developer_api, app):
    rules_url = f"/api/v1/apps/{app.slug}/repository-rules/"
    assert developer_api.get(rules_url).json() == {"repository_rules": []}
    response = developer_api.put(
        rules_url, {"repository_rules": ["Quay.io/acme/*", "127.0.0.1__5000/a/b"]}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {"repository_rules": ["127.0.0.1:5000/a/b", "quay.io/acme/*"]}
    assert developer_api.get(rules_url).json()["repository_rules"] == ["127.0.0.1:5000/a/b", "quay.io/acme/*"]
    assert developer_api.put(rules_url, {"repository_rules": []}, format="json").json() == {"repository_rules": []}
    app.refresh_from_db()
    assert app.repository_rules == []
    assert AuditEvent.objects.filter(action="app.repository_rules").count() == 2


def test_a_bad_repository_rule_changes_nothing(developer_api, app):
    rules_url = f"/api/v1/apps/{app.slug}/repository-rules/"
    developer_api.put(rules_url, {"repository_rules": ["quay.io/acme/*"]}, format="json")
    body = assert_invalid(
        developer_api.put(rules_url, {"repository_rules": ["quay.io/ok", "../etc"]}, format="json"), "repository_rules"
    )
    assert "Rule 2 must look like" in body["message"]
    assert_invalid(developer_api.put(rules_url, {}, format="json"), "repository_rules")
    assert_invalid(developer_api.put(rules_url, {"repository_rules": "quay.io/x"}, format="json"), "repository_rules")
    app.refresh_from_db()
    assert app.repository_rules == ["quay.io/acme/*"]


# --- a license's channel ------------------------------------------------------------------------


def test_a_license_is_created_on_a_channel_and_moved_to_another(developer_api, app):
    created = developer_api.post(
        f"/api/v1/apps/{app.slug}/licenses/", {"customer_name": "Initech", "channel": "beta"}, format="json"
    ).json()
    assert created["channel"] == "beta"
    default = developer_api.post(f"/api/v1/apps/{app.slug}/licenses/", {"customer_name": "Hooli"}, format="json")
    assert default.json()["channel"] == "stable"
    moved = developer_api.patch(f"/api/v1/licenses/{created['id']}/", {"channel": "unstable"}, format="json")
    assert moved.status_code == 200 and moved.json()["channel"] == "unstable"
    assert License.objects.get(pk=created["id"]).channel.name == "unstable"
    listed = developer_api.get(f"/api/v1/apps/{app.slug}/licenses/").json()["results"]
    assert {row["customer_name"]: row["channel"] for row in listed} == {"Initech": "unstable", "Hooli": "stable"}


def test_a_license_on_an_unknown_channel_is_refused_by_field(developer_api, app, customer_license):
    response = developer_api.post(
        f"/api/v1/apps/{app.slug}/licenses/", {"customer_name": "Initech", "channel": "gold"}, format="json"
    )
    assert "choose one of: stable, beta, unstable" in assert_invalid(response, "channel")["message"]
    response = developer_api.patch(
        f"/api/v1/licenses/{customer_license.license.pk}/", {"channel": "gold"}, format="json"
    )
    assert_invalid(response, "channel")
    assert License.objects.count() == 1 and License.objects.get().channel.name == "stable"


def test_the_release_endpoints_are_in_the_api_schema(client):
    schema = client.get("/api/v1/schema/?format=json").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/apps/{app_slug}/channels/",
        "/api/v1/apps/{app_slug}/releases/",
        "/api/v1/apps/{app_slug}/releases/{sequence}/",
        "/api/v1/apps/{app_slug}/releases/{sequence}/promote/",
        "/api/v1/apps/{app_slug}/releases/lint/",
        "/api/v1/apps/{app_slug}/repository-rules/",
    ):
        assert path in paths, path
    create = paths["/api/v1/apps/{app_slug}/releases/"]["post"]["requestBody"]["content"]
    assert set(create) == {"multipart/form-data", "application/json"}
    assert "ReleaseStatusEnum" in schema["components"]["schemas"]
