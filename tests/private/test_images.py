"""The private registry on the Images page, in the API and the CLI, against the real parts:
Distribution (configured by registry_config) sends its notifications to the portal served by
uvicorn; skopeo pushes; the page, the API and `portal image` read and delete."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from django.core.cache import cache
from django.urls import reverse

from delivery import customer_auth
from portal import ratelimit
from registries.clients.distribution import PrivateRegistry
from registries.models import PrivateImage, PrivateTag
from tests import factories
from tests.realparts.distribution import free_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def registry(private_registry, settings, app):
    """The private registry, with this process's pages and API pointed at it."""
    settings.REGISTRY_URL = f"http://{private_registry.netloc}"
    settings.REGISTRY_HOST = private_registry.netloc
    settings.REGISTRY_REFRESH_SECONDS = 0
    cache.delete(ratelimit.slot("customer-auth:addr:127.0.0.1", customer_auth.RATE_WINDOW))
    return private_registry


@pytest.fixture
def push(registry, oci_layouts, admin, team):
    """push(image, tag, layout="api"): skopeo copy to <registry>/acme-api/<image>:<tag> as the admin."""
    creds = f"admin@acme.test:{factories.user_token(admin, team)}"

    def push(image: str, tag: str, layout: str = "api") -> None:
        source = oci_layouts[layout]
        result = skopeo(
            "copy", "--dest-tls-verify=false", "--dest-creds", creds, *(["--all"] if source.child_digests else []),
            source.source, f"docker://{registry.netloc}/acme-api/{image}:{tag}",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr + registry.log()

    return push


def wait_for(condition, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def notified_tag(repository: str, tag: str) -> PrivateTag:
    return wait_for(
        lambda: PrivateTag.objects.filter(image__repository=repository, tag=tag).first(),
        f"the push notification for {repository}:{tag}",
    )


def served(registry, admin, team, reference: str) -> subprocess.CompletedProcess[str]:
    creds = f"admin@acme.test:{factories.user_token(admin, team)}"
    return skopeo("inspect", "--raw", "--tls-verify=false", "--creds", creds, f"docker://{registry.netloc}/{reference}")


def test_a_push_is_listed_on_the_images_page_and_in_the_api_with_its_digest(
    registry, push, oci_layouts, admin_client, admin_api, settings
):
    push("api", "1.0.0")
    push("multi", "2.0", layout="multi")
    tag = notified_tag("acme-api/api", "1.0.0")
    multi = notified_tag("acme-api/multi", "2.0")
    assert tag.digest == oci_layouts["api"].digest
    assert multi.digest == oci_layouts["multi"].digest
    assert multi.media_type == "application/vnd.oci.image.index.v1+json"
    assert tag.pushed_by == "admin@acme.test" and tag.pushed_at is not None
    assert settings.REGISTRY_NOTIFY_SECRET not in registry.log()  # Distribution logs headers at info

    page = admin_client.get(reverse("registries:image-list"))
    html = page.content.decode()
    assert page.status_code == 200
    assert f"{registry.netloc}/acme-api/api" in html and "1.0.0" in html
    assert oci_layouts["api"].digest[:19] in html and "OCI index" in html
    assert f"docker push {registry.netloc}/acme-api/my-image:1.0.0" in html
    assert f"docker login {registry.netloc} --username admin@acme.test" in html
    assert "Not refreshed" not in html

    body = admin_api.get("/api/v1/apps/acme-api/images/").json()
    assert body["app"] == "acme-api" and body["registry"] == registry.netloc and body["refresh_error"] == ""
    by_name = {r["name"]: r for r in body["repositories"]}
    assert set(by_name) == {"api", "multi"}
    api = by_name["api"]
    assert api["repository"] == "acme-api/api" and api["reference"] == f"{registry.netloc}/acme-api/api"
    [listed] = api["tags"]
    assert listed["tag"] == "1.0.0" and listed["digest"] == oci_layouts["api"].digest
    assert listed["media_type"] == "application/vnd.oci.image.manifest.v1+json"
    assert listed["size"] > 0 and listed["pushed_at"] and listed["pushed_by"] == "admin@acme.test"


def test_deleting_a_tag_on_the_page_removes_the_manifest_from_the_registry(
    registry, push, oci_layouts, admin_client, admin, team
):
    push("api", "1.0.0")
    push("api", "latest")
    push("web", "3.0", layout="v2s2")
    notified_tag("acme-api/api", "latest")
    notified_tag("acme-api/web", "3.0")
    url = reverse("registries:private-tag-delete", args=["acme-api", "api", "latest"])

    confirm = admin_client.get(url)
    html = confirm.content.decode()
    assert confirm.status_code == 200
    assert oci_layouts["api"].digest in html and "acme-api/api:1.0.0" in html and "acme-api/api:latest" in html

    done = admin_client.post(url, {"digest": oci_layouts["api"].digest}, follow=True)
    assert done.status_code == 200
    assert "Deleted acme-api/api@" in done.content.decode()
    assert served(registry, admin, team, "acme-api/api:latest").returncode != 0
    assert served(registry, admin, team, "acme-api/api:1.0.0").returncode != 0
    assert served(registry, admin, team, "acme-api/web:3.0").returncode == 0
    assert not PrivateImage.objects.filter(repository="acme-api/api").exists()
    html = admin_client.get(reverse("registries:image-list")).content.decode()
    assert "acme-api/api" not in html and "acme-api/web" in html
    # Distribution's own delete notifications arrive later and change nothing.
    time.sleep(1)
    assert list(PrivateTag.objects.values_list("tag", flat=True)) == ["3.0"]


def test_a_tag_that_moved_since_the_confirmation_is_not_deleted(registry, push, oci_layouts, admin_client):
    push("api", "1.0.0")
    notified_tag("acme-api/api", "1.0.0")
    url = reverse("registries:private-tag-delete", args=["acme-api", "api", "1.0.0"])
    response = admin_client.post(url, {"digest": oci_layouts["secret"].digest}, follow=True)
    assert "now points to" in response.content.decode() and "nothing was deleted" in response.content.decode()
    assert PrivateTag.objects.filter(tag="1.0.0").exists()


def test_a_delete_lists_its_tags_even_when_distributions_notification_is_handled_first(
    registry, push, oci_layouts, admin_api, monkeypatch
):
    """Distribution notifies the delete right away; the hook may drop the rows before the
    deleting request reads them. Forced here: the rows go as soon as the registry deleted."""
    push("multi", "2.0", layout="multi")
    notified_tag("acme-api/multi", "2.0")
    delete_manifest = PrivateRegistry.delete_manifest

    def delete_then_notified(self, repository: str, digest: str) -> None:
        delete_manifest(self, repository, digest)
        PrivateTag.objects.filter(image__repository=repository, digest=digest).delete()  # as the hook does

    monkeypatch.setattr(PrivateRegistry, "delete_manifest", delete_then_notified)
    digest = oci_layouts["multi"].digest
    response = admin_api.delete(f"/api/v1/apps/acme-api/images/multi/manifests/{digest}")
    assert response.status_code == 200 and response.json()["tags"] == ["2.0"]


def test_deleting_through_the_api_by_tag_and_by_digest(registry, push, oci_layouts, admin_api, admin, team):
    push("api", "1.0.0")
    push("api", "stable")
    push("multi", "2.0", layout="multi")
    notified_tag("acme-api/api", "stable")
    notified_tag("acme-api/multi", "2.0")

    response = admin_api.delete("/api/v1/apps/acme-api/images/api/tags/stable")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "repository": "acme-api/api", "digest": oci_layouts["api"].digest, "tags": ["1.0.0", "stable"],
    }  # fmt: skip
    assert served(registry, admin, team, "acme-api/api:1.0.0").returncode != 0

    digest = oci_layouts["multi"].digest
    response = admin_api.delete(f"/api/v1/apps/acme-api/images/multi/manifests/{digest}")
    assert response.status_code == 200 and response.json()["tags"] == ["2.0"]
    assert served(registry, admin, team, "acme-api/multi:2.0").returncode != 0
    assert admin_api.get("/api/v1/apps/acme-api/images/").json()["repositories"] == []

    again = admin_api.delete("/api/v1/apps/acme-api/images/api/tags/stable")
    assert again.status_code == 404 and again.json()["code"] == "not_found"


def test_the_listing_is_refreshed_from_the_registry_api(registry, push, oci_layouts, admin_api, app):
    """A notification that never arrived (rows removed here) is made up for by the refresh;
    a tag the registry no longer has disappears from the list."""
    push("api", "1.0.0")
    notified_tag("acme-api/api", "1.0.0")
    PrivateImage.objects.all().delete()
    image = PrivateImage.objects.create(app=app, repository="acme-api/ghost")
    PrivateTag.objects.create(image=image, tag="gone", digest="sha256:" + "0" * 64)

    body = admin_api.get("/api/v1/apps/acme-api/images/").json()
    assert body["refresh_error"] == ""
    [api] = body["repositories"]
    assert api["name"] == "api"
    [tag] = api["tags"]
    assert tag["tag"] == "1.0.0" and tag["digest"] == oci_layouts["api"].digest and tag["pushed_at"] is None


def test_an_unreachable_registry_keeps_the_notified_list_and_says_so(registry, push, admin_client, admin_api, settings):
    push("api", "1.0.0")
    notified_tag("acme-api/api", "1.0.0")
    settings.REGISTRY_URL = f"http://127.0.0.1:{free_port()}"
    html = admin_client.get(reverse("registries:image-list")).content.decode()
    assert "Not refreshed from the private registry" in html and "acme-api/api" in html
    body = admin_api.get("/api/v1/apps/acme-api/images/").json()
    assert "not reachable" in body["refresh_error"] and body["repositories"][0]["tags"][0]["tag"] == "1.0.0"
    response = admin_api.delete("/api/v1/apps/acme-api/images/api/tags/1.0.0")
    assert response.status_code == 502 and response.json()["code"] == "registry_unavailable"
    assert PrivateTag.objects.filter(tag="1.0.0").exists()


def test_the_webhook_of_the_running_portal_refuses_a_wrong_secret(registry, portal_server):
    import httpx

    envelope = {"events": []}
    url = f"{portal_server.url}/hooks/registry"
    assert httpx.post(url, json=envelope).status_code == 401
    assert httpx.post(url, json=envelope, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_portal_image_ls_and_rm_with_the_cli(registry, push, oci_layouts, live_server, admin, team):
    push("api", "1.0.0")
    notified_tag("acme-api/api", "1.0.0")
    env = {"PORTAL_URL": live_server.url, "PORTAL_API_TOKEN": factories.user_token(admin, team), "PATH": "/usr/bin"}

    def portal(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "portal_cli.main", *args], env=env, capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip

    table = portal("image", "ls", "--app", "acme-api")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split() == ["IMAGE", "DIGEST", "TYPE", "PUSHED", "PUSHED", "BY"]
    assert row.startswith(f"{registry.netloc}/acme-api/api:1.0.0")
    assert oci_layouts["api"].digest[:19] in row and "OCI image" in row and "admin@acme.test" in row

    listed = json.loads(portal("image", "ls", "--app", "acme-api", "-o", "json").stdout)
    assert listed["repositories"][0]["tags"][0]["digest"] == oci_layouts["api"].digest

    removed = portal("image", "rm", "api:1.0.0", "--app", "acme-api", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == f"Deleted acme-api/api@{oci_layouts['api'].digest} (tags: 1.0.0).\n"
    empty = portal("image", "ls", "--app", "acme-api")
    assert (empty.returncode, empty.stdout) == (0, "") and "Nothing pushed yet" in empty.stderr


@pytest.mark.django_db
def test_the_license_page_tells_the_customer_how_to_pull_private_images(admin_client, app, customer_license, settings):
    settings.REGISTRY_HOST = "registry.example.com"
    image = PrivateImage.objects.create(app=app, repository="acme-api/api")
    PrivateTag.objects.create(image=image, tag="1.0.0", digest="sha256:" + "a" * 64)
    page = admin_client.get(f"/licenses/{customer_license.license.pk}/").content.decode()
    assert "docker pull registry.example.com/acme-api/api:1.0.0" in page
    assert "docker login registry.example.com" in page
    assert "No registry serves" not in page


@pytest.mark.django_db
def test_the_images_page_reads_every_apps_private_images_in_two_queries(team, app, django_assert_num_queries):
    from registries import private_images

    apps = [app, *(factories.make_app(team, f"app-{i}") for i in range(3))]
    for i, each in enumerate(apps):
        image = PrivateImage.objects.create(app=each, repository=f"{each.slug}/api")
        for tag in ("1.0.0", "2.0.0")[: i % 2 + 1]:
            PrivateTag.objects.create(image=image, tag=tag, digest="sha256:" + "b" * 64)
    PrivateImage.objects.create(app=app, repository=f"{app.slug}/untagged")  # no tags: not listed
    with django_assert_num_queries(2):
        by_app = private_images.private_images_by_app(apps)
        tags = {
            slug: [t.tag for image in by_app[a.pk] for t in image.tags.all()] for slug, a in ((a.slug, a) for a in apps)
        }
    assert tags == {"acme-api": ["1.0.0"], "app-0": ["1.0.0", "2.0.0"], "app-1": ["1.0.0"], "app-2": ["1.0.0", "2.0.0"]}
    assert [i.repository for i in private_images.private_images(app)] == ["acme-api/api"]
