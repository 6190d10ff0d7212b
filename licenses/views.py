"""App pages (and, with the proxy, the licenses to them)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from accounts.access import Perm
from accounts.decorators import team_view
from accounts.views import _apply_errors
from licenses import services
from licenses.forms import AppForm, AppRenameForm
from licenses.models import App
from licenses.validators import validate_app_slug


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
            _apply_errors(form, e)
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
            if App.objects.filter(slug=slug).exists():
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
            services.app_update(app=app, name=form.cleaned_data["name"])
        except ValidationError as e:
            _apply_errors(form, e)
        else:
            messages.success(request, "App renamed.")
            return redirect("licenses:app-detail", slug=app.slug)
    return render(request, "licenses/app_detail.html", {"app": app, "form": form})


@team_view(Perm.WRITE)
def app_delete(request, slug: str):
    app = _team_app(request, slug)
    if request.method == "POST":
        services.app_delete(app=app)
        messages.success(request, f"App “{app.name}” deleted.")
        return redirect("licenses:app-list")
    return render(
        request,
        "confirm.html",
        {
            "title": f"Delete “{app.name}”?",
            "message": f"Images under proxy/{app.slug}/… stop being served and the slug becomes free for anyone. "
            "This cannot be undone.",
            "button": "Delete app",
            "cancel_url": reverse("licenses:app-detail", args=[app.slug]),
        },
    )


@team_view(Perm.READ)
def license_list(request):
    apps = App.objects.filter(team=request.actor.team)
    return render(request, "licenses/license_list.html", {"apps": apps})
