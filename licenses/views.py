"""App pages and the licenses to them."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables

from accounts import customer_hosts
from accounts.access import Perm
from accounts.decorators import team_view
from licenses import licensefile, release_selectors, selectors, services
from licenses.forms import (
    AirgapPlatformsForm,
    AppForm,
    AppRenameForm,
    LicenseCreateForm,
    LicenseEditForm,
    RepositoryRulesForm,
)
from licenses.models import App, License, RetiredSlug
from licenses.validators import validate_app_slug
from portal import crypto
from portal.forms import apply_errors


def _team_app(request, slug: str) -> App:
    return get_object_or_404(App, slug=slug, team=request.actor.team)


@team_view(Perm.READ)
def app_list(request):
    apps = App.objects.filter(team=request.actor.team).select_related("created_by")
    page = Paginator(apps, 25).get_page(request.GET.get("page"))
    return render(request, "licenses/app_list.html", {"page": page})


@team_view(Perm.WRITE)
def app_create(request):
    form = AppForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            app = services.app_create(actor=request.actor, **form.cleaned_data)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(request, f"App “{app.name}” created with slug {app.slug}.")
            return redirect("licenses:app-detail", slug=app.slug)
    return render(request, "licenses/app_form.html", {"form": form})


@team_view(Perm.WRITE)
def app_slug_preview(request):
    """htmx: what slug the name would get, and whether it is free."""
    slug = (request.GET.get("slug") or "").strip() or services.app_slug_suggest(request.GET.get("name", ""))
    problem = None
    if slug:
        try:
            validate_app_slug(slug)
            if App.objects.filter(slug=slug).exists() or RetiredSlug.objects.filter(slug=slug).exists():
                problem = "taken"
        except ValidationError as e:
            problem = " ".join(e.messages)
    return render(request, "licenses/partials/slug_preview.html", {"slug": slug, "problem": problem})


@team_view(Perm.READ)
def app_detail(request, slug: str):
    app = _team_app(request, slug)
    form = AppRenameForm(request.POST or None, initial={"name": app.name})
    if request.method == "POST" and form.is_valid():
        try:
            services.app_update(actor=request.actor, app=app, name=form.cleaned_data["name"])
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(request, "App renamed.")
            return redirect("licenses:app-detail", slug=app.slug)
    return _render_app_detail(request, app, form=form)


def _render_app_detail(request, app: App, *, form=None, rules_form=None, platforms_form=None):
    form = form or AppRenameForm(initial={"name": app.name})
    rules_form = rules_form or RepositoryRulesForm(initial={"repository_rules": "\n".join(_rules_text(app))})
    platforms_form = platforms_form or AirgapPlatformsForm(
        initial={"airgap_platforms": " ".join(app.airgap_platforms or [])}
    )
    counts = selectors.license_status_counts(License.objects.filter(app=app))
    context = {
        "app": app,
        "form": form,
        "rules_form": rules_form,
        "platforms_form": platforms_form,
        "rules": _rules_text(app),
        "registries": selectors.app_registries(app).order_by("name"),
        "recent_licenses": License.objects.filter(app=app).select_related("channel")[:5],
        "counts": counts,
        "broad_hosts": release_selectors.broad_rule_hosts(app),
        "channels": release_selectors.channel_summaries(app, history=0),
        "release_count": app.releases.count(),
        "proxy_host": customer_hosts.proxy_host(app.team_id, request),
    }
    return render(request, "licenses/app_detail.html", context)


def _rules_text(app: App) -> list[str]:
    """Rules as the vendor writes them: an upstream port as host__port, like in proxy paths."""
    return [rule.replace(":", "__", 1) for rule in app.repository_rules or []]


@team_view(Perm.READ)
def app_repository_rules(request, slug: str):
    app = _team_app(request, slug)
    if request.method != "POST":
        return redirect(reverse("licenses:app-detail", args=[app.slug]) + "#repository-access")
    form = RepositoryRulesForm(request.POST)
    if form.is_valid():
        try:
            services.app_set_repository_rules(actor=request.actor, app=app, rules=form.rules())
        except ValidationError as e:
            apply_errors(form, e)
        else:
            if app.repository_rules:
                messages.success(request, f"Repository access saved: {len(app.repository_rules)} rule(s).")
            else:
                messages.success(
                    request,
                    "Repository access saved with no rules: licenses pull only what their channel's releases list.",
                )
            return redirect(reverse("licenses:app-detail", args=[app.slug]) + "#repository-access")
    return _render_app_detail(request, app, rules_form=form)


@team_view(Perm.READ)
def app_airgap_platforms(request, slug: str):
    """POST (writers): the platforms air-gap bundles keep of each multi-arch image."""
    app = _team_app(request, slug)
    back = reverse("licenses:app-detail", args=[app.slug]) + "#airgap-platforms"
    if request.method != "POST":
        return redirect(back)
    form = AirgapPlatformsForm(request.POST)
    if form.is_valid():
        try:
            services.app_update(actor=request.actor, app=app, airgap_platforms=form.platforms())
        except ValidationError as e:
            apply_errors(form, e)
        else:
            shown = ", ".join(app.airgap_platforms) or "every platform"
            messages.success(request, f"Air-gap bundles of {app.name} keep: {shown}.")
            return redirect(back)
    return _render_app_detail(request, app, platforms_form=form)


@team_view(Perm.WRITE)
def app_delete(request, slug: str):
    app = _team_app(request, slug)
    if request.method == "POST":
        services.app_delete(actor=request.actor, app=app)
        messages.success(request, f"App “{app.name}” deleted.")
        return redirect("licenses:app-list")
    return render(
        request,
        "confirm.html",
        {
            "title": f"Delete “{app.name}”?",
            "message": f"Images under proxy/{app.slug}/… stop being served and the slug is retired: no app can use it again. "
            "This cannot be undone.",
            "button": "Delete app",
            "cancel_url": reverse("licenses:app-detail", args=[app.slug]),
        },
    )


# --- licenses --------------------------------------------------------------------------

LICENSES_PER_PAGE = 25


@team_view(Perm.READ)
def license_list(request):
    apps = App.objects.filter(team=request.actor.team)
    app = None
    if request.GET.get("app"):
        app = apps.filter(slug=request.GET["app"]).first()
    return _license_list(request, apps=apps, app=app, app_fixed=False)


@team_view(Perm.READ)
def app_licenses(request, slug: str):
    app = _team_app(request, slug)
    return _license_list(request, apps=App.objects.filter(pk=app.pk), app=app, app_fixed=True)


def _license_list(request, *, apps, app: App | None, app_fixed: bool):
    licenses = License.objects.filter(app__in=apps).select_related("app", "channel")
    any_license = licenses.exists()
    if app is not None:
        licenses = licenses.filter(app=app)
    q = request.GET.get("q", "")[: selectors.MAX_QUERY_LENGTH]
    status = request.GET.get("status", "")
    status = status if status in selectors.LICENSE_STATUSES else ""  # the page ignores an unknown one
    licenses = selectors.license_search(licenses, q, status)
    channel = request.GET.get("channel", "") if app is not None else ""
    channels = list(app.channels.values_list("name", flat=True)) if app is not None else []
    channel = channel if channel in channels else ""  # like status: an unknown one is ignored
    if channel:
        licenses = licenses.filter(channel__name=channel)
    page = Paginator(licenses, LICENSES_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "apps": apps,
        "has_apps": apps.exists(),
        "any_license": any_license,
        "app": app,
        "app_fixed": app_fixed,
        "q": q,
        "status": status,
        "statuses": selectors.LICENSE_STATUSES,
        "channel": channel,
        "channels": channels if app_fixed else [],
        "filtered": bool(q.strip() or status or channel or (app and not app_fixed)),
    }
    return render(request, "licenses/license_list.html", context)


@team_view(Perm.WRITE)
def license_create(request):
    team = request.actor.team
    slug = request.POST.get("app") or request.GET.get("app")
    if slug and not App.objects.filter(team=team, slug=slug).exists():
        raise Http404("No such app in this team.")
    apps = App.objects.filter(team=team)
    if not apps.exists():
        messages.info(request, "Licenses belong to an app: create one first.")
        return redirect("licenses:app-create")
    initial = {"app": slug or (apps.first().slug if apps.count() == 1 else None)}
    form = LicenseCreateForm(request.POST or None, team=team, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            license, _ = services.license_create(
                actor=request.actor,
                app=data["app"],
                customer_name=data["customer_name"],
                customer_email=data["customer_email"],
                type=data["type"],
                expires_at=form.expiry(),
                channel=data["channel"] or "stable",
            )
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(
                request,
                f"License for {license.customer_name} created. Send the customer the license ID below, privately.",
            )
            return redirect("delivery:license-detail", pk=license.pk)
    return render(request, "licenses/license_form.html", {"form": form})


@team_view(Perm.WRITE)
def license_edit(request, pk: int):
    license = selectors.team_license(request.actor.team, pk)
    form = LicenseEditForm(request.POST or None, license=license)
    if request.method == "POST" and form.is_valid():
        changes = form.changes()
        try:
            if changes:
                services.license_update(actor=request.actor, license=license, **changes)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(request, "License saved." if changes else "Nothing changed.")
            return redirect("delivery:license-detail", pk=license.pk)
    return render(request, "licenses/license_edit.html", {"form": form, "license": license})


@team_view(Perm.WRITE)
def license_revoke(request, pk: int):
    license = selectors.team_license(request.actor.team, pk)
    if request.method == "POST":
        if license.is_revoked:
            messages.info(request, "This license was already revoked.")
        else:
            services.license_revoke(actor=request.actor, license=license)
            messages.success(request, f"License revoked: {license.customer_name} can no longer pull.")
        return redirect("delivery:license-detail", pk=license.pk)
    return render(request, "licenses/license_confirm.html", {"license": license, "action": "revoke"})


@team_view(Perm.WRITE)
def license_unrevoke(request, pk: int):
    license = selectors.team_license(request.actor.team, pk)
    if request.method == "POST":
        if not license.is_revoked:
            messages.info(request, "This license is not revoked.")
        else:
            services.license_unrevoke(actor=request.actor, license=license)
            if license.is_expired:
                messages.warning(
                    request, "License un-revoked, but it has expired: extend the expiry to restore access."
                )
            else:
                messages.success(request, f"License un-revoked: {license.customer_name} can pull again.")
        return redirect("delivery:license-detail", pk=license.pk)
    return render(request, "licenses/license_confirm.html", {"license": license, "action": "unrevoke"})


@never_cache
@team_view(Perm.READ)
@sensitive_variables("license_id")
def license_file(request, pk: int):
    """The signed license file (YAML) to hand the customer; it holds the license ID."""
    license = selectors.team_license(request.actor.team, pk)
    try:
        license_id = services.license_id_of(license)
    except crypto.DecryptionError:
        messages.error(request, "The license ID cannot be decrypted with the configured keys; no file was made.")
        return redirect("delivery:license-detail", pk=license.pk)
    try:
        text = licensefile.render_license_file(license, license_id)
    except licensefile.LicenseFileError as e:  # the signing key is misconfigured
        messages.error(request, f"The license file cannot be signed: {e}.")
        return redirect("delivery:license-detail", pk=license.pk)
    response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{license.app.slug}-{license.id_prefix}.license.yaml"'
    return response
