"""Releases: numbered per app, linted before anything is stored, promoted to channels."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from licenses import releases
from licenses.models import Release, ReleaseStatus
from tests.factories import make_app
from tests.releasefiles import DEPLOYMENT

# Tags as YAML would misread them (7.2 and "1.10" as numbers) and an image listed by digest.
SETTINGS = """\
images:
- source: public
  name: redis
  tag: 7.2
- source: replicated
  name: worker
  tag: "1.10"
- source: public
  name: ghcr.io/acme/tool
  digest: sha256:%s
additionalNamespaces: [monitoring]
""" % ("a" * 64)


@pytest.mark.django_db
def test_a_release_is_numbered_after_the_apps_last_and_keeps_its_files_and_images(actor, app, settings):
    settings.REGISTRY_HOST = "registry.example.test:5000"
    files = {"app.yaml": SETTINGS, "manifests/api.yaml": DEPLOYMENT}
    first, _ = releases.release_create(actor=actor, app=app, files=files, version="1.0.0")
    second, _ = releases.release_create(actor=actor, app=app, files=files, version="1.0.1")
    assert (first.sequence, second.sequence) == (1, 2)
    assert second.status == ReleaseStatus.RESOLVING
    assert sorted(second.files.values_list("path", flat=True)) == ["app.yaml", "manifests/api.yaml"]
    assert [(i.host, i.repository, i.tag, i.digest) for i in second.images.all()] == [
        ("index.docker.io", "library/redis", "7.2", ""),
        ("registry.example.test:5000", f"{app.slug}/worker", "1.10", ""),  # "1.10", not the float 1.1
        ("ghcr.io", "acme/tool", "", "sha256:" + "a" * 64),
    ]
    assert second.additional_namespaces == ["monitoring"]
    # Sequences are per app.
    other, _ = releases.release_create(actor=actor, app=make_app(actor.team), files=files)
    assert other.sequence == 1


@pytest.mark.django_db
def test_lint_errors_block_the_release_and_store_nothing(actor, app):
    files = {"app.yaml": "images:\n- source: quay-prod\n  name: acme/api\n  tag: 1.0\n", "bad.yaml": "a: [1\n"}
    with pytest.raises(releases.LintFailed) as raised:
        releases.release_create(actor=actor, app=app, files=files)
    lines = raised.value.message_dict["files"]
    assert any(line.startswith("ERROR yaml-syntax bad.yaml:2 ") for line in lines), lines
    assert any(line.startswith("ERROR unknown-source app.yaml:2 ") and "quay-prod" in line for line in lines), lines
    assert not Release.objects.exists()


@pytest.mark.django_db
def test_a_channel_keeps_its_history_and_its_current_release_is_the_last_promoted(actor, app):
    files = {"app.yaml": "images: []\n"}
    one, _ = releases.release_create(actor=actor, app=app, files=files)
    two, _ = releases.release_create(actor=actor, app=app, files=files, promote_to="beta")
    stable = releases.channel_get(app, "stable")
    assert releases.channel_current(stable) is None
    releases.release_promote(actor=actor, release=one, channel="stable")
    releases.release_promote(actor=actor, release=two, channel="stable")
    assert releases.channel_current(stable) == two
    assert [p.release.sequence for p in stable.promotions.all()] == [2, 1]
    assert releases.channel_release(stable, 1) == one
    assert releases.channel_release(releases.channel_get(app, "beta"), 1) is None


@pytest.mark.django_db
def test_promoting_to_a_channel_the_app_does_not_have_names_the_channels_it_has(actor, app):
    release, _ = releases.release_create(actor=actor, app=app, files={"app.yaml": "images: []\n"})
    with pytest.raises(ValidationError) as raised:
        releases.release_promote(actor=actor, release=release, channel="nightly")
    assert raised.value.message_dict["channel"] == [
        f"No channel “nightly” in {app.slug}; choose one of: stable, beta, unstable."
    ]
