"""The Images page: the team's external registries (add, edit, delete, test), the images each app's releases
list, and the private registry's images."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django_htmx.http import HttpResponseClientRedirect

from accounts.access import Perm
from accounts.decorators import team_view
from licenses.models import App
from licenses.release_selectors import RELEASED_IMAGES_RELEASES, released_images
from portal.outbound.errors import RegistryError
from portal.queue import QueueUnavailable
from registries import private_images, services
from registries.forms import OTHER_TAB_PROVIDERS, RegistryForm, RegistryTestForm
from registries.models import CheckStatus, ExternalRegistry, PrivateTag, RegistryTest
from registries.providers import Provider, recognised_note

HISTORY_PAGE_SIZE = 20


def _team_registry(request, pk: int) -> ExternalRegistry:
    return get_object_or_404(
        ExternalRegistry.objects.select_related("last_image_test", "created_by").prefetch_related("apps"),
        pk=pk,
        team=request.actor.team,
    )


def _add_forms(request, bound: RegistryForm | None = None) -> dict:
    """Both tabs' forms; the one that was submitted keeps its values and errors."""
    team = request.actor.team
    hub = RegistryForm(team=team, providers=(Provider.DOCKERHUB,), auto_id="hub_%s")
    other = RegistryForm(team=team, providers=OTHER_TAB_PROVIDERS, auto_id="reg_%s")
    tab = "dockerhub" if request.GET.get("tab") == "dockerhub" else "other"
    if bound is not None:
        tab = "dockerhub" if bound.providers == (Provider.DOCKERHUB,) else "other"
        hub, other = (bound, other) if tab == "dockerhub" else (hub, bound)
    return {"hub_form": hub, "other_form": other, "tab": tab}


def _say_recognised(request, chosen: str, registry: ExternalRegistry) -> None:
    """A login typed as "Other" that the service saved as a cloud's provider says so."""
    if registry.provider != chosen:
        messages.info(request, recognised_note(registry.provider))


@team_view(Perm.READ)
def image_list(request):
    registries = (
        ExternalRegistry.objects.filter(team=request.actor.team)
        .select_related("last_image_test")
        .prefetch_related("apps")
    )
    apps = list(App.objects.filter(team=request.actor.team))
    registry_problem = private_images.private_registry_refresh(apps=apps)
    by_app = private_images.private_images_by_app(apps)
    private_apps = [(app, by_app[app.pk]) for app in apps]
    released_apps = [(app, *released_images(app)) for app in apps]
    context = {
        "registries": registries,
        "released_apps": released_apps,
        "releases_shown": RELEASED_IMAGES_RELEASES,
        "private_apps": private_apps,
        "registry_host": private_images.push_host(request.actor.team),
        "registry_problem": registry_problem,
    }
    if request.actor.can(Perm.WRITE):
        context.update(_add_forms(request))
    return render(request, "registries/image_list.html", context)


@team_view(Perm.WRITE)
@sensitive_post_parameters()
def registry_create(request):
    """The add dialog's forms (a page of its own without JavaScript); saving calls registry_create."""
    form = None
    if request.method == "POST":
        hub = request.POST.get("provider") == Provider.DOCKERHUB
        form = RegistryForm(
            request.POST,
            request.FILES,
            team=request.actor.team,
            providers=(Provider.DOCKERHUB,) if hub else OTHER_TAB_PROVIDERS,
            auto_id="hub_%s" if hub else "reg_%s",
        )
        if form.is_valid():
            try:
                registry = services.registry_create(actor=request.actor, **form.create_kwargs())
            except ValidationError as e:
                form.add_service_errors(e)
            else:
                messages.success(request, f"Registry “{registry.name}” saved. Test it with one of its images.")
                _say_recognised(request, form.cleaned_data["provider"], registry)
                url = reverse("registries:image-list")
                return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    context = {**_add_forms(request, form), "in_dialog": bool(request.htmx)}
    if request.htmx:
        return render(request, "registries/partials/registry_add.html", context)
    return render(request, "registries/registry_add.html", context)


@team_view(Perm.READ)
def registry_detail(request, pk: int):
    """The registry's page; for htmx its live part (health, last good image, history), 204 while
    the `seen` version is still current, as the test result polls."""
    registry = _team_registry(request, pk)
    pending = list(registry.tests.filter(status__in=(CheckStatus.QUEUED, CheckStatus.RUNNING)).order_by("created_at"))
    latest = registry.tests.values_list("pk", flat=True).first()
    live_version = "-".join(
        [
            registry.health,
            str(registry.last_checked_at.timestamp()) if registry.last_checked_at else "never",
            str(latest),
        ]
        + [f"{t.pk}{t.status[0]}" for t in pending]
    )
    if request.htmx and request.GET.get("seen") == live_version:
        return HttpResponse(status=204)
    page = Paginator(registry.tests.all(), HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"registry": registry, "page": page, "pending": pending, "live_version": live_version}
    if request.htmx:
        return render(request, "registries/partials/registry_live.html", {**context, "history_oob": True})
    return render(request, "registries/registry_detail.html", context)


@team_view(Perm.WRITE)
@sensitive_post_parameters()
def registry_edit(request, pk: int):
    registry = _team_registry(request, pk)
    form = RegistryForm(
        request.POST or None, request.FILES or None, team=request.actor.team, providers=(), registry=registry
    )
    if request.method == "POST" and form.is_valid():
        try:
            registry = services.registry_update(actor=request.actor, registry=registry, **form.update_kwargs())
        except ValidationError as e:
            form.add_service_errors(e)
        else:
            messages.success(request, f"Registry “{registry.name}” saved.")
            _say_recognised(request, form.cleaned_data["provider"], registry)
            return redirect("registries:detail", pk=registry.pk)
    return render(request, "registries/registry_edit.html", {"registry": registry, "form": form})


@team_view(Perm.WRITE)
def registry_delete(request, pk: int):
    registry = _team_registry(request, pk)
    if request.method == "POST":
        services.registry_delete(actor=request.actor, registry=registry)
        messages.success(request, f"Registry “{registry.name}” deleted.")
        return redirect("registries:image-list")
    return render(
        request,
        "confirm.html",
        {
            "title": f"Delete “{registry.name}”?",
            "message": f"The portal forgets the credentials for {registry.endpoint} and stops pulling its images "
            "for your customers. Its test history goes too. This cannot be undone.",
            "button": "Delete registry",
            "cancel_url": reverse("registries:detail", args=[registry.pk]),
        },
    )


@team_view(Perm.READ, write=Perm.WRITE)
def registry_test(request, pk: int):
    """POST: queue a connection test and answer with the polling result (htmx) or the detail page."""
    registry = _team_registry(request, pk)
    if request.method != "POST":
        return redirect("registries:detail", pk=registry.pk)
    form = RegistryTestForm(request.POST, auto_id=f"test-{registry.pk}-%s")
    context = {"registry": registry, "form": form, "test": None, "start_error": None}
    status, headers = 200, {}
    if form.is_valid():
        try:
            context["test"] = services.registry_test_request(
                actor=request.actor, registry=registry, image=form.cleaned_data["image"]
            )
        except ValidationError as e:
            form.add_error("image" if "image" in getattr(e, "error_dict", {}) else None, e.messages)
        except QueueUnavailable:
            context["start_error"] = "The task queue is unavailable, so the test could not start. Try again shortly."
            status = 503
        except services.TooManyTests as e:
            context["start_error"] = str(e)
            status, headers = 429, {"Retry-After": str(e.retry_after)}
    if not request.htmx:
        if context["test"] is not None:
            return redirect("registries:test-result", pk=context["test"].pk)
        if status in (429, 503):
            messages.error(request, context["start_error"])
        else:
            messages.error(request, " ".join(form.errors.get("image", form.non_field_errors())))
        return redirect("registries:detail", pk=registry.pk)
    if context["test"] is not None:
        headers["HX-Trigger"] = "registry-test-started"  # the detail page's live part starts polling
    response = render(request, "registries/partials/test_form.html", context, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


@team_view(Perm.READ)
def test_result(request, pk: int):
    """A test's status; htmx polls it every second and gets 204 while nothing has changed."""
    test = get_object_or_404(RegistryTest.objects.select_related("registry"), pk=pk, registry__team=request.actor.team)
    if request.htmx:
        if not test.done and request.GET.get("seen") == test.status:
            return HttpResponse(status=204)
        return render(request, "registries/partials/test_result.html", {"test": test, "oob_health": True})
    return render(request, "registries/test_detail.html", {"test": test, "registry": test.registry})


# --- the private registry -------------------------------------------------------------


def _private_delete(request, app_slug: str, image: str, *, tag: str = "", digest: str = ""):
    """Confirm, then delete a manifest (by a tag or a digest) and so every tag pointing to it."""
    app = get_object_or_404(App, slug=app_slug, team=request.actor.team)
    repository = f"{app.slug}/{image}"
    stored = PrivateTag.objects.filter(image__repository=repository, image__app=app)
    shown = stored.filter(tag=tag).first() if tag else stored.filter(digest=digest).first()
    seen_digest = shown.digest if shown else digest
    if request.method == "POST":
        try:
            if tag:
                deleted = private_images.private_tag_delete(
                    actor=request.actor, app=app, image=image, tag=tag, digest=request.POST.get("digest", "")
                )
            else:
                deleted = private_images.private_manifest_delete(
                    actor=request.actor, app=app, image=image, digest=digest
                )
        except ValidationError as e:
            messages.error(request, " ".join(e.messages))
        except private_images.ImageUnknown as e:
            messages.info(request, f"{e} It is no longer listed.")
        except RegistryError as e:
            messages.error(request, f"Nothing was deleted: {e.message}.")
        else:
            listed = ", ".join(deleted.tags) or "no tags"
            messages.success(request, f"Deleted {deleted.repository}@{deleted.digest[:19]}… (tags: {listed}).")
        return redirect(f"{reverse('registries:image-list')}#private-{app.slug}")
    tags = sorted(stored.filter(digest=seen_digest).values_list("tag", flat=True)) if seen_digest else []
    if tag and tag not in tags:
        tags = sorted([*tags, tag])
    return render(
        request,
        "registries/private_delete.html",
        {
            "app": app,
            "repository": repository,
            "reference": f"{repository}:{tag}" if tag else f"{repository}@{digest}",
            "digest": seen_digest,
            "tags": tags,
            "cancel_url": f"{reverse('registries:image-list')}#private-{app.slug}",
        },
    )


@team_view(Perm.WRITE)
def private_tag_delete(request, app_slug: str, image: str, tag: str):
    return _private_delete(request, app_slug, image, tag=tag)


@team_view(Perm.WRITE)
def private_manifest_delete(request, app_slug: str, image: str, digest: str):
    return _private_delete(request, app_slug, image, digest=digest)
