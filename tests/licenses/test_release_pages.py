"""The release and channel pages: upload (a folder or a .tar.gz), lint findings inline, the
release page with its progress, promote, diff, channels, and the license form's channel."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape

from licenses import releases
from licenses.models import License, Release, ReleaseFile, ReleaseFinding, ReleaseStatus
from tests import factories
from tests.releasefiles import DEPLOYMENT, IMAGES, create_release, tarball

pytestmark = pytest.mark.django_db


def _url(name: str, app, *args) -> str:
    return reverse(f"licenses:{name}", args=[app.slug, *args])


def _upload(name: str, text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="application/yaml")


def _release(actor, app, files=None, **kwargs) -> Release:
    """A release with images (still resolving) unless `files` says otherwise."""
    return create_release(actor, app, files or {"app.yaml": IMAGES}, **kwargs)


# --- upload ------------------------------------------------------------------------------


def test_uploading_a_folder_keeps_each_files_path_below_the_folder(developer_client, app):
    uploads = [_upload("app.yaml", IMAGES), _upload("api.yaml", DEPLOYMENT), _upload("README.md", "# notes")]
    paths = ["my-release/app.yaml", "my-release/manifests/api.yaml", "my-release/README.md"]
    response = developer_client.post(
        _url("release-create", app),
        {"files": uploads, "paths": json.dumps(paths), "version": "1.4.2", "notes": "First.", "promote_to": ""},
    )
    release = Release.objects.get(app=app)
    assert response.status_code == 302 and response["Location"] == _url("release-detail", app, 1)
    assert sorted(release.files.values_list("path", flat=True)) == ["app.yaml", "manifests/api.yaml"]
    assert (release.version, release.notes, release.created_by.email) == ("1.4.2", "First.", "dev@acme.test")

    page = developer_client.get(response["Location"]).content.decode()
    assert "Release 1 created from 2 files." in page
    assert "manifests/api.yaml" in page and "index.docker.io/library/redis" in page
    assert "Resolving images: 0 of 2 resolved." in page


def test_without_paths_a_folder_uses_base_names_and_two_alike_are_a_clear_error(developer_client, app):
    url = _url("release-create", app)
    response = developer_client.post(url, {"files": [_upload("app.yaml", IMAGES), _upload("api.yaml", DEPLOYMENT)]})
    assert response.status_code == 302
    assert sorted(ReleaseFile.objects.values_list("path", flat=True)) == ["api.yaml", "app.yaml"]

    twins = [_upload("app.yaml", IMAGES), _upload("deploy.yaml", DEPLOYMENT), _upload("deploy.yaml", DEPLOYMENT)]
    response = developer_client.post(url, {"files": twins})
    assert response.status_code == 200
    error = " ".join(response.context["form"].errors["files"])
    assert "Two files are named deploy.yaml" in error and ".tar.gz" in error
    assert Release.objects.count() == 1


def test_paths_that_do_not_match_the_files_are_ignored_for_their_base_names(developer_client, app):
    uploads = [_upload("app.yaml", IMAGES), _upload("api.yaml", DEPLOYMENT)]
    developer_client.post(
        _url("release-create", app), {"files": uploads, "paths": json.dumps(["x/other.yaml", "x/api.yaml"])}
    )
    assert sorted(ReleaseFile.objects.values_list("path", flat=True)) == ["api.yaml", "app.yaml"]


def test_uploading_a_tarball_creates_the_release_and_promotes_it(developer_client, app):
    archive = tarball({"release/app.yaml": IMAGES, "release/k8s/api.yaml": DEPLOYMENT})
    response = developer_client.post(
        _url("release-create", app),
        {"archive": SimpleUploadedFile("release.tar.gz", archive), "promote_to": "beta"},
        follow=True,
    )
    release = Release.objects.get(app=app)
    assert sorted(release.files.values_list("path", flat=True)) == ["app.yaml", "k8s/api.yaml"]
    assert releases.channel_current(releases.channel_get(app, "beta")) == release
    assert b"Release 1 created from 2 files and promoted to beta." in response.content


def test_a_broken_archive_is_an_error_on_the_archive_field(developer_client, app):
    response = developer_client.post(
        _url("release-create", app), {"archive": SimpleUploadedFile("r.tar.gz", b"not a tarball")}
    )
    assert response.status_code == 200
    assert "Not a readable .tar.gz" in " ".join(response.context["form"].errors["archive"])
    assert not Release.objects.exists()


def test_no_files_or_both_kinds_name_what_to_do(developer_client, app):
    url = _url("release-create", app)
    response = developer_client.post(url, {"version": "1.0"})
    assert "Choose the folder" in " ".join(response.context["form"].errors["files"])
    both = {"files": [_upload("app.yaml", IMAGES)], "archive": SimpleUploadedFile("r.tgz", tarball({"a.yaml": ""}))}
    response = developer_client.post(url, both)
    assert response.context["form"].errors["files"] == ["Upload a folder or a .tar.gz, not both."]
    assert not Release.objects.exists()


def test_lint_errors_are_listed_one_per_line_on_the_form_and_nothing_is_stored(developer_client, app):
    bad = "images:\n- source: quay-prod\n  name: acme/api\n  tag: '1.0'\n"
    response = developer_client.post(
        _url("release-create", app),
        {
            "files": [_upload("app.yaml", bad), _upload("broken.yaml", "a: [1\n")],
            "paths": '["r/app.yaml", "r/broken.yaml"]',
        },
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="lint-findings"' in html
    lines = [str(f) for f in response.context["findings"]]
    assert any(line.startswith("ERROR yaml-syntax broken.yaml:2 ") for line in lines), lines
    assert any(line.startswith("ERROR unknown-source app.yaml:2 ") for line in lines), lines
    for line in lines:
        assert f'<span class="finding-error">{escape(line)}</span>' in html
    assert "2 lint errors stop this release" in " ".join(response.context["form"].errors["files"])
    assert not Release.objects.exists() and not ReleaseFile.objects.exists()


def test_a_promote_channel_the_app_lacks_is_a_field_error(developer_client, app):
    response = developer_client.post(
        _url("release-create", app), {"files": [_upload("app.yaml", IMAGES)], "promote_to": "nightly"}
    )
    assert response.status_code == 200 and "promote_to" in response.context["form"].errors
    assert not Release.objects.exists()


# --- who may see and do what ------------------------------------------------------------------


def test_another_teams_releases_and_channels_are_404(outsider_client, actor, app):
    _release(actor, app)
    for url in [
        _url("release-list", app),
        _url("release-create", app),
        _url("release-detail", app, 1),
        _url("release-status", app, 1),
        _url("release-diff", app, 1),
        _url("channel-list", app),
    ]:
        assert outsider_client.get(url).status_code == 404, url
    assert outsider_client.post(_url("release-promote", app, 1), {"channel": "stable"}).status_code == 404
    assert outsider_client.post(_url("channel-list", app), {"name": "mine"}).status_code == 404
    assert not Release.objects.filter(promotions__isnull=False).exists()


def test_a_viewer_sees_releases_but_cannot_upload_promote_or_add_channels(viewer_client, actor, app):
    _release(actor, app)
    for url in [_url("release-list", app), _url("release-detail", app, 1), _url("channel-list", app)]:
        page = viewer_client.get(url)
        assert page.status_code == 200, url
        html = page.content.decode()
        assert "New release" not in html and 'type="submit">Promote' not in html and "Create channel" not in html
    assert viewer_client.get(_url("release-create", app)).status_code == 403
    upload = {"files": [_upload("app.yaml", IMAGES)]}
    assert viewer_client.post(_url("release-create", app), upload).status_code == 403
    assert viewer_client.post(_url("release-promote", app, 1), {"channel": "stable"}).status_code == 403
    assert viewer_client.post(_url("channel-list", app), {"name": "mine"}).status_code == 403
    assert Release.objects.count() == 1 and not Release.objects.filter(promotions__isnull=False).exists()
    assert not app.channels.filter(name="mine").exists()


# --- the release page ------------------------------------------------------------------------


def test_the_release_page_shows_images_with_what_resolving_found_and_the_findings(developer_client, actor, app):
    release = _release(actor, app, {"app.yaml": IMAGES, "api.yaml": DEPLOYMENT})
    redis, worker = release.images.all()
    redis_digest = "sha256:" + "b" * 64
    type(redis).objects.filter(pk=redis.pk).update(
        resolved_digest=redis_digest, platforms=["linux/amd64", "linux/arm64"], size=31_457_280, visibility="public"
    )
    ReleaseFinding.objects.create(
        release=release, image=worker, level="error", rule="image-not-found", file="app.yaml", line=5,
        message=f"{worker.reference} is not in the registry",
    )  # fmt: skip
    ReleaseFinding.objects.create(
        release=release, level="warning", rule="latest-tag", file="api.yaml", line=9, message="x"
    )
    html = developer_client.get(_url("release-detail", app, 1)).content.decode()
    assert "Resolving images: 2 of 2 resolved." in html  # a finding counts as done
    assert redis_digest[:19] in html and "linux/arm64" in html and "30.0\xa0MB" in html and "Public" in html
    assert "ERROR image-not-found app.yaml:5" in html
    assert "WARNING latest-tag api.yaml:9 x" in html
    assert "<summary><code>api.yaml</code></summary>" in html  # files, collapsed


def test_the_progress_fragment_polls_while_resolving_and_reloads_the_page_when_done(developer_client, actor, app):
    release = _release(actor, app)
    url = _url("release-status", app, 1)
    fragment = developer_client.get(url, HTTP_HX_REQUEST="true")
    html = fragment.content.decode()
    assert 'hx-trigger="every 2s"' in html and "0 of 2 resolved" in html and "<html" not in html
    assert developer_client.get(url).status_code == 302  # without htmx: the release page

    Release.objects.filter(pk=release.pk).update(status=ReleaseStatus.READY)
    done = developer_client.get(url, HTTP_HX_REQUEST="true")
    assert done["HX-Refresh"] == "true"
    assert 'hx-trigger="every 2s"' not in developer_client.get(_url("release-detail", app, 1)).content.decode()


def test_promoting_from_the_release_page_makes_it_the_channels_current_release(developer_client, actor, app):
    release = _release(actor, app)
    response = developer_client.post(_url("release-promote", app, 1), {"channel": "stable"}, follow=True)
    assert releases.channel_current(releases.channel_get(app, "stable")) == release
    assert b"Release 1 is now the current release of stable" in response.content
    promotion = release.promotions.get()
    assert promotion.promoted_by.email == "dev@acme.test"

    response = developer_client.post(_url("release-promote", app, 1), {"channel": "nightly"}, follow=True)
    assert "Choose one of Acme API&#x27;s channels: stable, beta, unstable." in response.content.decode()
    assert release.promotions.count() == 1


def test_a_failed_release_offers_no_promotion_and_is_refused_with_the_reason(developer_client, actor, app):
    release = _release(actor, app)
    Release.objects.filter(pk=release.pk).update(status=ReleaseStatus.FAILED)
    html = developer_client.get(_url("release-detail", app, 1)).content.decode()
    assert 'id="promote-refused"' in html and "cannot be promoted" in html
    assert 'type="submit">Promote' not in html
    response = developer_client.post(_url("release-promote", app, 1), {"channel": "stable"}, follow=True)
    assert "Not promoted: Release 1 failed to resolve its images" in response.content.decode()
    assert not release.promotions.exists()


def test_the_diff_shows_changed_added_and_removed_files_and_images(developer_client, actor, app):
    _release(actor, app, {"app.yaml": IMAGES, "api.yaml": DEPLOYMENT, "old.yaml": "a: 1\n"})
    newer = IMAGES.replace('tag: "7.2"', 'tag: "7.4"') + "- source: public\n  name: nginx\n  tag: '1.27'\n"
    newer = newer.replace("- source: replicated\n  name: worker\n  tag: 1.4.2\n", "")
    _release(actor, app, {"app.yaml": newer, "api.yaml": DEPLOYMENT, "new.yaml": "b: 2\n"})

    response = developer_client.get(_url("release-diff", app, 2))
    diff = response.context["diff"]
    assert [(f.path, f.change) for f in diff.files] == [
        ("app.yaml", "changed"),
        ("new.yaml", "added"),
        ("old.yaml", "removed"),
    ]
    assert diff.unchanged_files == 1
    assert [(i.name, i.change, i.before, i.after) for i in diff.images] == [
        ("nginx", "added", [], [":1.27"]),
        ("redis", "changed", [":7.2"], [":7.4"]),
        ("worker", "removed", [":1.4.2"], []),
    ]
    html = response.content.decode()
    assert '<span class="diff-del">-  tag: &quot;7.2&quot;</span>' in html
    assert '<span class="diff-add">+  tag: &quot;7.4&quot;</span>' in html
    assert "--- #1/app.yaml" in html and "+++ #2/app.yaml" in html
    # The first release has nothing before it; a page link from release 2 leads here.
    assert b"Nothing to compare with" in developer_client.get(_url("release-diff", app, 1)).content
    assert _url("release-diff", app, 2) in developer_client.get(_url("release-detail", app, 2)).content.decode()
    # Against an older release by choice.
    assert developer_client.get(_url("release-diff", app, 1) + "?against=2").context["diff"].old.sequence == 2


def test_the_release_list_shows_status_and_the_channels_each_is_current_on(developer_client, actor, app):
    _release(actor, app, version="1.0.0", promote_to="stable")
    _release(actor, app, version="1.1.0", promote_to="beta")
    response = developer_client.get(_url("release-list", app))
    rows = {r.sequence: r.current_on for r in response.context["page"].object_list}
    assert rows == {2: ["beta"], 1: ["stable"]}
    html = response.content.decode()
    assert "1.1.0" in html and "Resolving images" in html and "admin@acme.test" in html


def test_an_app_without_releases_says_how_to_start(developer_client, viewer_client, app):
    assert b"Upload the first release" in developer_client.get(_url("release-list", app)).content
    assert b"Ask a developer or admin" in viewer_client.get(_url("release-list", app)).content


# --- channels ----------------------------------------------------------------------------------


def test_the_channels_page_shows_current_release_history_and_licenses(developer_client, actor, app, customer_license):
    one = _release(actor, app, promote_to="stable")
    _release(actor, app, version="2.0", promote_to="stable")
    response = developer_client.get(_url("channel-list", app))
    stable = response.context["summaries"][0]
    assert stable.channel.name == "stable" and stable.current.sequence == 2 and stable.licenses == 1
    assert [p.release.sequence for p in stable.history] == [2, 1]
    html = response.content.decode()
    assert f"{reverse('licenses:app-licenses', args=[app.slug])}?channel=stable" in html
    assert one.sequence == 1

    listed = developer_client.get(reverse("licenses:app-licenses", args=[app.slug]), {"channel": "stable"})
    assert listed.context["page"].paginator.count == 1
    assert (
        developer_client.get(reverse("licenses:app-licenses", args=[app.slug]), {"channel": "beta"})
        .context["page"]
        .paginator.count
        == 0
    )


def test_creating_a_channel_and_a_bad_name_is_a_field_error(developer_client, app):
    url = _url("channel-list", app)
    response = developer_client.post(url, {"name": "LTS 2026!"})
    assert response.status_code == 200 and "lowercase letters" in " ".join(response.context["form"].errors["name"])
    response = developer_client.post(url, {"name": "stable"})
    assert "already has a channel" in " ".join(response.context["form"].errors["name"])
    response = developer_client.post(url, {"name": "lts-2026"})
    assert response.status_code == 302 and app.channels.filter(name="lts-2026").exists()


# --- the license form and page ---------------------------------------------------------------


def test_a_new_license_follows_the_chosen_channel_and_a_bad_one_is_a_field_error(developer_client, actor, app, team):
    create = reverse("licenses:license-create")
    form = {"app": app.slug, "customer_name": "Globex", "type": "paid"}
    response = developer_client.post(create, {**form, "channel": "nightly"})
    assert response.status_code == 200 and "channel" in response.context["form"].errors
    # A channel of another app of the team, which this app lacks: the service names the choices.
    other = factories.make_app(team, "other-app")
    releases.channel_create(actor=actor, app=other, name="lts")
    response = developer_client.post(create, {**form, "channel": "lts"})
    assert "choose one of: stable, beta, unstable" in " ".join(response.context["form"].errors["channel"])
    assert not License.objects.exists()

    developer_client.post(create, {**form, "customer_name": "Old client"})  # no channel sent: stable
    assert License.objects.get().channel.name == "stable"
    License.objects.all().delete()

    response = developer_client.post(create, {**form, "channel": "beta"})
    license = License.objects.get()
    assert license.channel.name == "beta"
    page = developer_client.get(response["Location"]).content.decode()
    assert f"{_url('channel-list', app)}#channel-beta" in page


def test_editing_a_license_moves_it_to_another_channel(developer_client, customer_license):
    license = customer_license.license
    url = reverse("licenses:license-edit", args=[license.pk])
    assert developer_client.get(url).context["form"]["channel"].value() == "stable"
    fields = {"customer_name": license.customer_name, "type": license.type, "channel": "unstable"}
    assert developer_client.post(url, fields).status_code == 302
    assert License.objects.get(pk=license.pk).channel.name == "unstable"
    response = developer_client.post(url, {**fields, "channel": "nope"})
    assert response.status_code == 200 and "channel" in response.context["form"].errors


# --- the app page and the Images page ----------------------------------------------------------


def test_a_broad_host_rule_is_flagged_and_the_page_says_pulls_follow_releases(developer_client, actor, app):
    detail = reverse("licenses:app-detail", args=[app.slug])
    html = developer_client.get(detail).content.decode()
    assert "pulls what the releases promoted to its channel list, plus" in html
    assert "pull everything" not in html and 'id="no-rules-note"' in html
    assert _url("release-list", app) in html and _url("channel-list", app) in html

    # As the migration writes them for apps that relied on "no rules = everything".
    app.repository_rules = ["127.0.0.1:5000/*", "ghcr.io/acme/*", "quay.io/*"]
    app.save(update_fields=["repository_rules"])
    html = developer_client.get(detail).content.decode()
    assert "This app lets licenses pull everything on quay.io." in html
    assert "This app lets licenses pull everything on 127.0.0.1:5000." in html
    assert "everything on ghcr.io" not in html  # a prefix is narrow enough
    assert "Narrow it to the repositories your releases list." in html


def test_the_app_page_shows_each_channels_current_release(developer_client, actor, app):
    _release(actor, app, version="3.1", promote_to="stable")
    html = developer_client.get(reverse("licenses:app-detail", args=[app.slug])).content.decode()
    assert f'href="{_url("release-detail", app, 1)}">#1 (3.1)</a>' in html


def test_the_images_page_lists_each_apps_released_images(developer_client, viewer_client, actor, app, settings):
    settings.REGISTRY_HOST = "registry.example.test:5000"
    first = _release(actor, app, promote_to="stable")
    _release(actor, app)
    first.images.filter(name="redis").update(resolved_digest="sha256:" + "c" * 64, visibility="public")
    response = viewer_client.get(reverse("registries:image-list"))
    ((shown_app, rows, total),) = response.context["released_apps"]
    assert shown_app == app and total == 2
    by_ref = {r.reference: r for r in rows}
    redis = by_ref["index.docker.io/library/redis:7.2"]
    assert redis.releases == [2, 1] and redis.channels == ["stable"]  # newest first
    assert (redis.visibility, redis.digest) == ("public", "sha256:" + "c" * 64)  # release 2 is not resolved yet
    assert by_ref[f"registry.example.test:5000/{app.slug}/worker:1.4.2"].source == "replicated"
    html = response.content.decode()
    assert "Released images" in html and _url("release-detail", app, 2) in html


# --- the demo seed ----------------------------------------------------------------------------


def test_the_demo_seed_has_a_release_promoted_to_stable_once():
    from django.core.management import call_command

    from licenses.models import App

    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    app = App.objects.get(slug="demo-app")
    release = app.releases.get()
    assert release.images.count() == 2 and release.files.filter(path="manifests/web.yaml").exists()
    assert releases.channel_current(releases.channel_get(app, "stable")) == release
