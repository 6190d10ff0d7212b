"""The license page (what the customer gets and how it pulls), the pull secret download and
the preview of the license's install kit."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables

from accounts import customer_hosts
from accounts.access import Perm
from accounts.decorators import team_view
from delivery import downloads, installkit, pullsecret, selectors
from delivery.airgap import download as airgap_download
from licenses import releases, services
from licenses.selectors import team_license
from portal import crypto

DOWNLOADS_SHOWN = 20


@never_cache
@team_view(Perm.READ)
@sensitive_variables("license_id")
def license_detail(request, pk: int):
    license = team_license(request.actor.team, pk)
    try:
        license_id = services.license_id_of(license)
    except crypto.DecryptionError:
        license_id = None
    team = request.actor.team
    proxy_host = customer_hosts.proxy_host(team, request)
    registry_host = customer_hosts.registry_host(team)
    pull_secret = None
    if license_id:
        pull_secret = pullsecret.render_pull_secret(
            license, license_id, proxy_host=proxy_host, registry_host=registry_host
        )
    kit_url = customer_hosts.customer_url(team, reverse("delivery:customer-install-kit"), request)
    context = {
        "license": license,
        "license_id": license_id,
        "pull_secret": pull_secret,
        "pull_secret_name": pullsecret.secret_name(license),
        "registry_host": registry_host,
        "host": proxy_host,
        "pull_examples": selectors.pull_examples(license.app, proxy_host, license.channel_id),
        "pulls": license.pulls.all()[:50],
        "private_images": selectors.private_image_lines(license.app, registry_host),
        "kit_release": releases.channel_current(license.channel),
        "kit_url": kit_url,
        # Docker refuses plain http except on loopback: say so when the customer is shown http.
        "plain_http": kit_url.startswith("http://"),
        "downloads": downloads.license_downloads(license)[:DOWNLOADS_SHOWN],
        "download_count": license.downloads.count(),
        "airgap_url": customer_hosts.customer_url(team, airgap_download.LATEST_PATH, request),
    }
    return render(request, "delivery/license_detail.html", context)


@never_cache
@team_view(Perm.READ)
@sensitive_variables("license_id")
def license_pull_secret(request, pk: int):
    """The customer's Kubernetes image pull secret (YAML), optionally for ?namespace=NS."""
    license = team_license(request.actor.team, pk)
    back = reverse("delivery:license-detail", args=[license.pk]) + "#pull-secret"
    try:
        namespace = pullsecret.validate_namespace(request.GET.get("namespace", "").strip())
    except ValidationError as e:
        messages.error(request, " ".join(e.message_dict["namespace"]))
        return redirect(back)
    try:
        license_id = services.license_id_of(license)
    except crypto.DecryptionError:
        messages.error(request, "The license ID cannot be decrypted with the configured keys; no secret was made.")
        return redirect(back)
    return pullsecret.download(request, license, license_id, namespace=namespace)


@never_cache
@team_view(Perm.READ)
@sensitive_variables("license_id")
def license_install_kit(request, pk: int):
    """The license's install kit, as its customer downloads it (?secret_name=, ?sequence=)."""
    license = team_license(request.actor.team, pk)
    back = reverse("delivery:license-detail", args=[license.pk]) + "#install-kit"
    try:
        sequence, secret_name = installkit.kit_options(request.GET)
    except ValidationError as e:
        for texts in e.message_dict.values():
            messages.error(request, " ".join(texts))
        return redirect(back)
    try:
        license_id = services.license_id_of(license)
    except crypto.DecryptionError:
        messages.error(request, "The license ID cannot be decrypted with the configured keys; no kit was made.")
        return redirect(back)
    try:
        return installkit.download(request, license, license_id, sequence=sequence, secret_name=secret_name)
    except installkit.NoRelease as e:
        messages.error(request, str(e))
        return redirect(back)
