"""POST /hooks/registry: the private registry's notifications become the Images page's list.

The envelopes here have the shape Distribution 2.8.2 sends (captured from the real binary);
the end-to-end tests in test_images.py let the real registry send them.
"""

from __future__ import annotations

import json
import uuid

import pytest
from django.conf import settings

from accounts.models import ApiToken
from registries.models import PrivateImage, PrivateTag, RegistryNotification
from tests import factories

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
URL = "/hooks/registry"


def event(action: str, repository: str = "acme-api/api", *, tag: str = "1.0.0", digest: str = DIGEST_A, **extra):
    target = {"repository": repository}
    if action != "delete":
        target |= {"mediaType": OCI_MANIFEST, "size": 559, "length": 559,
                   "url": f"http://127.0.0.1:5000/v2/{repository}/manifests/{digest}"}  # fmt: skip
    if tag:
        target["tag"] = tag
    if digest:
        target["digest"] = digest
    return {
        "id": extra.pop("id", str(uuid.uuid4())),
        "timestamp": extra.pop("timestamp", "2026-01-02T03:04:05.123456789Z"),
        "action": action,
        "target": target | extra.pop("target", {}),
        "request": {"id": str(uuid.uuid4()), "addr": "127.0.0.1:4000", "method": "PUT", "useragent": "skopeo"},
        "actor": extra.pop("actor", {"name": "portal"}),
        "source": {"addr": "vm:5000", "instanceID": str(uuid.uuid4())},
    }


def post(client, *events, secret: str | None = None, **headers):
    secret = settings.REGISTRY_NOTIFY_SECRET if secret is None else secret
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
    return client.post(
        URL,
        json.dumps({"events": list(events)}),
        content_type="application/vnd.docker.distribution.events.v1+json",
        **auth,
        **headers,
    )


def tags() -> dict[str, str]:
    return {f"{t.image.repository}:{t.tag}": t.digest for t in PrivateTag.objects.select_related("image")}


@pytest.fixture
def hook(client, app):
    return lambda *events, **kw: post(client, *events, **kw)


def test_a_push_is_recorded_with_its_digest_type_size_time_and_pusher(hook, app, admin, team):
    factories.user_token(admin, team)
    token = ApiToken.objects.get(user=admin)
    response = hook(event("push", actor={"name": f"token:{token.pk}"}))
    assert response.status_code == 200, response.content
    assert response.json() == {"received": 1, "applied": 1}
    tag = PrivateTag.objects.select_related("image__app").get()
    assert (tag.image.app, tag.image.repository, tag.image.image, tag.tag) == (app, "acme-api/api", "api", "1.0.0")
    assert (tag.digest, tag.media_type, tag.size) == (DIGEST_A, OCI_MANIFEST, 559)
    assert tag.pushed_at.isoformat() == "2026-01-02T03:04:05.123456+00:00"
    assert tag.pushed_by == "admin@acme.test"


def test_the_pusher_is_named_by_service_account_or_email_login(hook, app, team, admin):
    factories.service_token(team, name="ci")
    service = ApiToken.objects.get(name="ci")
    hook(event("push", tag="a", actor={"name": f"token:{service.pk}"}))
    hook(event("push", tag="b", actor={"name": f"user:{admin.pk}"}))
    hook(event("push", tag="c", actor={"name": "token:999999"}))
    by_tag = dict(PrivateTag.objects.values_list("tag", "pushed_by"))
    assert by_tag == {"a": "service account ci", "b": "admin@acme.test", "c": "token:999999"}


def test_pushing_a_tag_again_moves_it_and_an_older_push_does_not_move_it_back(hook, app):
    hook(event("push", timestamp="2026-01-02T00:00:00Z"))
    hook(event("push", digest=DIGEST_B, timestamp="2026-01-03T00:00:00Z"))
    assert tags() == {"acme-api/api:1.0.0": DIGEST_B}
    late = hook(event("push", digest=DIGEST_A, timestamp="2026-01-02T12:00:00Z"))
    assert late.json()["applied"] == 0
    assert tags() == {"acme-api/api:1.0.0": DIGEST_B}


def test_a_redelivered_event_changes_nothing(hook, app):
    push = event("push", id="event-1", timestamp="2026-01-02T00:00:00Z")
    hook(push)
    hook(event("delete", tag="", id="event-2", timestamp="2026-01-02T00:00:01Z"))
    assert tags() == {}
    again = hook(push)
    assert again.status_code == 200 and again.json() == {"received": 1, "applied": 0}
    assert tags() == {}
    assert RegistryNotification.objects.filter(event_id__in=["event-1", "event-2"]).count() == 2


def test_deleting_a_manifest_removes_every_tag_pointing_to_it_and_an_empty_repository(hook, app):
    hook(event("push", tag="1.0.0"), event("push", tag="latest"), event("push", tag="2.0.0", digest=DIGEST_B))
    hook(event("delete", tag="", digest=DIGEST_A, timestamp="2026-02-01T00:00:00Z"))
    assert tags() == {"acme-api/api:2.0.0": DIGEST_B}
    hook(event("delete", tag="2.0.0", digest="", timestamp="2026-02-01T00:00:00Z"))
    assert tags() == {}
    assert not PrivateImage.objects.exists()


def test_a_delete_older_than_the_push_it_would_remove_is_ignored(hook, app):
    hook(event("push", timestamp="2026-03-01T00:00:00Z"))
    hook(event("delete", tag="1.0.0", digest="", timestamp="2026-02-01T00:00:00Z"))
    assert tags() == {"acme-api/api:1.0.0": DIGEST_A}


def test_events_for_unknown_apps_pulls_blobs_and_untagged_manifests_are_ignored(hook, app, other_team):
    factories.make_app(other_team, "other-app")
    response = hook(
        event("push", "nobody/api"),
        event("push", "api"),  # no app slug at all
        event("pull"),
        event("push", tag="", digest=DIGEST_B),  # a platform manifest of an index, by digest
        event("push", target={"mediaType": "application/octet-stream", "url": "http://r/v2/acme-api/api/blobs/x"}),
        event("delete", tag="", target={"url": "http://r/v2/acme-api/api/blobs/sha256:x"}),
        event("push", "other-app/api"),
    )
    assert response.status_code == 200
    assert response.json() == {"received": 7, "applied": 1}
    assert tags() == {"other-app/api:1.0.0": DIGEST_A}
    assert PrivateImage.objects.get().app.team == other_team


def test_malformed_fields_are_skipped_not_fatal(hook, app):
    response = hook(
        event("push", tag="bad tag"),
        event("push", digest="md5:short"),
        event("push", repository="Acme-API/api"),
        {"action": "push"},
        "not an object",
        event("push", tag="ok"),
    )
    assert response.status_code == 200
    assert tags() == {"acme-api/api:ok": DIGEST_A}


@pytest.mark.parametrize("secret", ["", "wrong", "Bearer"])
def test_a_missing_or_wrong_secret_is_refused_with_401(client, app, secret):
    response = post(client, event("push"), secret=secret or "")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert not PrivateTag.objects.exists()


def test_basic_auth_or_a_secret_with_a_different_scheme_is_refused(client, app):
    for header in (f"Basic {settings.REGISTRY_NOTIFY_SECRET}", settings.REGISTRY_NOTIFY_SECRET):
        response = client.post(URL, json.dumps({"events": [event("push")]}), content_type="application/json",
                               HTTP_AUTHORIZATION=header)  # fmt: skip
        assert response.status_code == 401


def test_only_post_is_accepted_and_no_csrf_token_is_needed(app):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    assert csrf_client.get(URL).status_code == 405
    assert post(csrf_client, event("push")).status_code == 200


def test_bodies_that_are_too_large_or_not_an_envelope_are_refused(hook, client, app):
    big = event("push", target={"padding": "x" * 300_000})
    assert hook(big).status_code == 413
    auth = {"HTTP_AUTHORIZATION": f"Bearer {settings.REGISTRY_NOTIFY_SECRET}"}
    assert client.post(URL, "{not json", content_type="application/json", **auth).status_code == 400
    deep = "[" * 100_000 + "]" * 100_000  # within the size limit, deeper than json parses
    assert client.post(URL, deep, content_type="application/json", **auth).status_code == 400
    assert client.post(URL, "[]", content_type="application/json", **auth).status_code == 400
    assert client.post(URL, '{"events": {}}', content_type="application/json", **auth).status_code == 400
    assert not PrivateTag.objects.exists()
