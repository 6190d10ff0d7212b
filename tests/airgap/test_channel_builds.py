"""A channel marked air gap gets each release's bundle without a click: at promotion when the
release is ready, or as soon as it finishes resolving when it was promoted while resolving."""

from __future__ import annotations

import pytest

from delivery.models import AirgapBundle
from licenses import releases
from licenses.models import Channel, ReleaseStatus
from registries import release_resolve
from tests import factories
from tests.releasefiles import settings_file

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def test_a_release_promoted_while_resolving_gets_its_bundle_once_it_is_ready(
    actor, app, basic_registry, django_capture_on_commit_callbacks
):
    factories.connect_registry(actor, basic_registry, name="vendor")
    Channel.objects.filter(app=app, name="stable").update(airgap=True)
    files = {"app.yaml": settings_file({"source": "vendor", "name": "acme/api", "tag": "1.0.0"})}
    with django_capture_on_commit_callbacks(execute=False):  # no worker: resolve by hand below
        release, _ = releases.release_create(actor=actor, app=app, files=files)
    with django_capture_on_commit_callbacks(execute=True):
        releases.release_promote(actor=actor, release=release, channel="stable")
    assert release.status == ReleaseStatus.RESOLVING and not AirgapBundle.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        release_resolve.release_resolve(release.pk)

    bundle = AirgapBundle.objects.get(release=release)
    assert bundle.requested_by == "air-gap channel"


def test_a_release_that_fails_to_resolve_gets_no_bundle(actor, app, basic_registry, django_capture_on_commit_callbacks):
    factories.connect_registry(actor, basic_registry, name="vendor")
    Channel.objects.filter(app=app, name="stable").update(airgap=True)
    files = {"app.yaml": settings_file({"source": "vendor", "name": "acme/missing", "tag": "1.0.0"})}
    with django_capture_on_commit_callbacks(execute=False):
        release, _ = releases.release_create(actor=actor, app=app, files=files)
    releases.release_promote(actor=actor, release=release, channel="stable")

    with django_capture_on_commit_callbacks(execute=True):
        release_resolve.release_resolve(release.pk)

    release.refresh_from_db()
    assert release.status == ReleaseStatus.FAILED and not AirgapBundle.objects.exists()
