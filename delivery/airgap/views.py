"""The release page's air-gap bundle card (the page itself is licenses/release_views.py, which
reads the bundle through `release.airgap_bundle`): the Build button and the progress htmx polls."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django_htmx.http import HttpResponseClientRefresh

from accounts.access import Perm
from accounts.decorators import team_view
from delivery.airgap.bundles import bundle_of, bundle_request
from delivery.models import BundleStatus
from licenses.models import Release


def _team_release(request, slug: str, sequence: int) -> Release:
    return get_object_or_404(
        Release.objects.select_related("app"), app__slug=slug, app__team=request.actor.team, sequence=sequence
    )


def _card_url(release: Release) -> str:
    return reverse("licenses:release-detail", args=[release.app.slug, release.sequence]) + "#airgap"


@team_view(Perm.READ)
def bundle_build(request, slug: str, sequence: int):
    """POST (writers): build the release's bundle, or build it again."""
    release = _team_release(request, slug, sequence)
    if request.method != "POST":
        return redirect(_card_url(release))
    try:
        bundle = bundle_request(actor=request.actor, release=release)
    except ValidationError as e:
        messages.error(request, f"Not built: {' '.join(e.messages)}")
    except PermissionDenied as e:
        messages.error(request, f"Not built: {e}")
    else:
        bundle.refresh_from_db()  # the queue may have refused the job after the commit
        if bundle.status == BundleStatus.FAILED:
            messages.error(request, f"Not built: {bundle.error}")
        elif bundle.status == BundleStatus.BUILDING:
            messages.info(request, f"The air-gap bundle of release {release.sequence} is already being built.")
        else:
            messages.success(request, f"The air-gap bundle of release {release.sequence} is queued to be built.")
    return redirect(_card_url(release))


@team_view(Perm.READ)
def bundle_status(request, slug: str, sequence: int):
    """htmx polls this every 2 s while the bundle is queued or building; once it is done the
    page reloads to show its size, digest and download path."""
    release = _team_release(request, slug, sequence)
    if not request.htmx:
        return redirect(_card_url(release))
    bundle = bundle_of(release)
    if bundle is None or bundle.status not in (BundleStatus.QUEUED, BundleStatus.BUILDING):
        return HttpResponseClientRefresh()
    return render(request, "delivery/partials/airgap_status.html", {"release": release, "bundle": bundle})
