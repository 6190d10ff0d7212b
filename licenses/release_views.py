"""An app's releases and channels: the list, uploading a release (a folder or a .tar.gz), a
release's page with its resolve progress, promoting it, the diff with the previous one, and
the channels with their history."""

from __future__ import annotations

import posixpath
from collections import Counter

from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django_htmx.http import HttpResponseClientRefresh

from accounts import customer_hosts
from accounts.access import Perm
from accounts.decorators import team_view
from licenses import release_files, release_selectors, releases
from licenses.findings import ERROR
from licenses.forms import ChannelEditForm, ChannelForm, PromoteForm, ReleaseUploadForm
from licenses.models import App, Channel, Release, ReleaseStatus
from portal import safejson
from portal.forms import apply_errors

RELEASES_PER_PAGE = 25
AIRGAP_DOWNLOADS_SHOWN = 20
FILE_SHOWN_MAX = 256 * 1024  # characters of one file on the release page; the rest is cut


def _team_app(request, slug: str) -> App:
    return get_object_or_404(App, slug=slug, team=request.actor.team)


def _team_release(request, slug: str, sequence: int) -> Release:
    app = _team_app(request, slug)
    return get_object_or_404(Release.objects.select_related("app", "created_by"), app=app, sequence=sequence)


def _release_url(release: Release) -> str:
    return reverse("licenses:release-detail", args=[release.app.slug, release.sequence])


@team_view(Perm.READ)
def release_list(request, slug: str):
    app = _team_app(request, slug)
    rows = app.releases.select_related("created_by").annotate(image_count=Count("images")).order_by("-sequence")
    page = Paginator(rows, RELEASES_PER_PAGE).get_page(request.GET.get("page"))
    current = release_selectors.current_channels(app)
    for release in page.object_list:
        release.current_on = current.get(release.pk, [])
    return render(request, "licenses/release_list.html", {"app": app, "page": page})


# --- upload ------------------------------------------------------------------------------


def _folder_names(paths_json: str, uploads: list) -> list[str]:
    """Each uploaded file's path inside the folder. Django keeps only a file's base name, so
    static/js/releases.js sends the browser's relative paths (one JSON list, in the order of
    the files); without it, or when the list does not match the files, base names are used."""
    names = [upload.name for upload in uploads]
    try:
        paths = safejson.loads(paths_json) if paths_json else None
    except ValueError:
        return names
    if (
        isinstance(paths, list)
        and len(paths) == len(uploads)
        and all(
            isinstance(p, str) and posixpath.basename(p.replace("\\", "/")) == n
            for p, n in zip(paths, names, strict=True)
        )
    ):
        return paths
    return names


def _uploaded_files(form: ReleaseUploadForm, paths_json: str) -> dict[str, str]:
    """{path: text} of the folder or the archive; ValidationError on the field that was used."""
    folder, archive = form.cleaned_data["files"], form.cleaned_data["archive"]
    if folder and archive:
        raise ValidationError({"files": ["Upload a folder or a .tar.gz, not both."]})
    if archive:
        try:
            return release_files.read_tarball(archive.read(release_files.MAX_ARCHIVE_BYTES + 1))
        except ValidationError as e:
            raise ValidationError({"archive": e.message_dict.get("files", e.messages)}) from None
    if not folder:
        raise ValidationError({"files": ["Choose the folder that holds the release's YAML files, or a .tar.gz of it."]})
    names = _folder_names(paths_json, folder)
    yaml = [name for name in names if name.lower().endswith(release_files.YAML_SUFFIXES)]
    twice = [name for name, count in Counter(yaml).items() if count > 1]
    if twice:
        raise ValidationError(
            {
                "files": [
                    f"Two files are named {twice[0]}: the browser sent the folder's files without their subfolders "
                    "(is JavaScript off?). Upload the folder as a .tar.gz instead, or give the files different names."
                ]
            }
        )
    items = []
    for name, upload in zip(names, folder, strict=True):
        wanted = name.lower().endswith(release_files.YAML_SUFFIXES)
        items.append((name, upload.read(release_files.MAX_FILE_BYTES + 1) if wanted else b""))
    return release_files.read_files(items)


def _apply_release_errors(form: ReleaseUploadForm, error: ValidationError, files_field: str) -> None:
    """The service names `files` and `channel`; the form has `files`/`archive` and `promote_to`."""
    if hasattr(error, "error_dict"):
        renamed = {"files": files_field, "channel": "promote_to"}
        error = ValidationError({renamed.get(k, k): v for k, v in error.error_dict.items()})
    apply_errors(form, error)


@team_view(Perm.WRITE)
def release_create(request, slug: str):
    app = _team_app(request, slug)
    form = ReleaseUploadForm(request.POST or None, request.FILES or None, app=app)
    findings = None
    if request.method == "POST" and form.is_valid():
        files_field = "archive" if form.cleaned_data["archive"] and not form.cleaned_data["files"] else "files"
        try:
            files = _uploaded_files(form, request.POST.get("paths", ""))
            release, result = releases.release_create(
                actor=request.actor,
                app=app,
                files=files,
                version=form.cleaned_data["version"],
                notes=form.cleaned_data["notes"],
                promote_to=form.cleaned_data["promote_to"],
            )
        except releases.LintFailed as e:
            findings = sorted(e.findings, key=lambda f: f.level != ERROR)
            errors = sum(f.level == ERROR for f in findings)
            form.add_error(
                files_field,
                f"{errors} lint error{'s stop' if errors != 1 else ' stops'} this release (listed below); "
                "nothing was stored. Fix the files and upload again.",
            )
        except ValidationError as e:
            _apply_release_errors(form, e, files_field)
        else:
            text = f"Release {release.sequence} created from {len(files)} file{'s' if len(files) != 1 else ''}"
            if form.cleaned_data["promote_to"]:
                text += f" and promoted to {form.cleaned_data['promote_to']}"
            warnings = len(result.findings)
            if warnings:
                text += f", with {warnings} warning{'s' if warnings != 1 else ''} (below)"
            messages.success(request, text + ".")
            return redirect(_release_url(release))
    return render(request, "licenses/release_form.html", {"app": app, "form": form, "findings": findings})


# --- one release ---------------------------------------------------------------------------


@team_view(Perm.READ)
def release_detail(request, slug: str, sequence: int):
    release = _team_release(request, slug, sequence)
    app = release.app
    images = list(release.images.prefetch_related("findings"))
    files = list(release.files.all())
    for file in files:
        file.shown = file.content[:FILE_SHOWN_MAX]
        file.cut = len(file.content) > FILE_SHOWN_MAX
    done, total = release_selectors.release_progress(release)
    context = {
        "app": app,
        "release": release,
        "images": images,
        "findings": release.findings.filter(image__isnull=True),
        "finding_count": release.findings.count(),
        "files": files,
        "done": done,
        "total": total,
        "current_on": release_selectors.current_channels(app).get(release.pk, []),
        "promotions": release.promotions.select_related("channel", "promoted_by"),
        "previous": release_selectors.previous_release(release),
        "promote_form": PromoteForm(app=app),
        "failed": release.status == ReleaseStatus.FAILED,
        **_airgap_context(release, request),
    }
    return render(request, "licenses/release_detail.html", context)


def _airgap_context(release: Release, request) -> dict:
    """The air-gap bundle card's rows, read through reverse relations: the bundle and the
    download log belong to delivery/, a layer above (its views serve the card's actions)."""
    try:
        bundle = release.airgap_bundle
    except ObjectDoesNotExist:
        bundle = None
    # "airgap" is delivery.models.DownloadKind.AIRGAP, named here without importing it.
    downloads = release.downloads.filter(kind="airgap").select_related("license")[:AIRGAP_DOWNLOADS_SHOWN]
    # The customer downloads from the team's proxy host (its default custom domain, if any).
    path = reverse("delivery:customer-airgap", args=[release.sequence])
    url = customer_hosts.customer_url(release.app.team_id, path, request)
    return {"bundle": bundle, "airgap_downloads": downloads, "airgap_url": url}


@team_view(Perm.READ)
def release_status(request, slug: str, sequence: int):
    """htmx polls this every 2 s while the release resolves; once it is done, the whole page
    reloads to show the images' digests, sizes and findings."""
    release = _team_release(request, slug, sequence)
    if not request.htmx:
        return redirect(_release_url(release))
    if release.status != ReleaseStatus.RESOLVING:
        return HttpResponseClientRefresh()
    done, total = release_selectors.release_progress(release)
    return render(request, "licenses/partials/release_status.html", {"release": release, "done": done, "total": total})


@team_view(Perm.READ)
def release_promote(request, slug: str, sequence: int):
    release = _team_release(request, slug, sequence)
    if request.method != "POST":
        return redirect(_release_url(release) + "#promote")
    form = PromoteForm(request.POST, app=release.app)
    if not form.is_valid():
        names = ", ".join(release.app.channels.values_list("name", flat=True))
        messages.error(request, f"Choose one of {release.app.name}'s channels: {names}.")
        return redirect(_release_url(release) + "#promote")
    channel = form.cleaned_data["channel"]
    try:
        releases.release_promote(actor=request.actor, release=release, channel=channel)
    except ValidationError as e:
        messages.error(request, f"Not promoted: {' '.join(e.messages)}")
    else:
        when = " once its images resolve" if release.status == ReleaseStatus.RESOLVING else ""
        messages.success(
            request, f"Release {release.sequence} is now the current release of {channel}: its licenses get it{when}."
        )
    return redirect(_release_url(release))


@team_view(Perm.READ)
def release_diff(request, slug: str, sequence: int):
    release = _team_release(request, slug, sequence)
    against = request.GET.get("against", "")
    if against.isdigit():
        old = get_object_or_404(Release, app=release.app, sequence=int(against))
    else:
        old = release_selectors.previous_release(release)
    diff = release_selectors.release_diff(old, release) if old is not None else None
    others = release.app.releases.exclude(pk=release.pk).values_list("sequence", flat=True)
    context = {"app": release.app, "release": release, "old": old, "diff": diff, "others": others}
    return render(request, "licenses/release_diff.html", context)


# --- channels ------------------------------------------------------------------------------


@team_view(Perm.READ)
def channel_list(request, slug: str):
    """The app's channels; POST (writers) creates one."""
    app = _team_app(request, slug)
    form = ChannelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            channel = releases.channel_create(
                actor=request.actor, app=app, name=form.cleaned_data["name"], airgap=form.cleaned_data["airgap"]
            )
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(
                request,
                f"Channel “{channel.name}” created. Promote a release to it, then move licenses to it "
                "(a license's Edit page).",
            )
            return redirect("licenses:channel-list", slug=app.slug)
    context = {"app": app, "summaries": release_selectors.channel_summaries(app), "form": form}
    return render(request, "licenses/channel_list.html", context)


@team_view(Perm.READ)
def channel_edit(request, slug: str, name: str):
    """POST (writers): the channel's air-gap flag."""
    app = _team_app(request, slug)
    channel = get_object_or_404(Channel, app=app, name=name)
    back = reverse("licenses:channel-list", args=[app.slug]) + f"#channel-{channel.name}"
    if request.method == "POST":
        form = ChannelEditForm(request.POST)
        if form.is_valid():
            releases.channel_update(actor=request.actor, channel=channel, airgap=form.cleaned_data["airgap"])
            if channel.airgap:
                messages.success(
                    request,
                    f"Channel “{channel.name}” is an air-gap channel: each release promoted to it gets its bundle "
                    "built (build the current one from its page).",
                )
            else:
                messages.success(request, f"Channel “{channel.name}” is no longer an air-gap channel.")
    return redirect(back)
