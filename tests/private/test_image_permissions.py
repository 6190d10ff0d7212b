"""Who sees and who may delete private registry images: pages and API, for the whole cast.

No registry runs here (REGISTRY_URL points at a closed port), so an allowed delete ends in
"registry unavailable": that is past every permission check.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import TokenAccess
from registries.models import PrivateImage, PrivateTag
from tests import factories

pytestmark = pytest.mark.django_db

DIGEST = "sha256:" + "c" * 64
TAG_URL = "/api/v1/apps/acme-api/images/api/tags/1.0.0"
MANIFEST_URL = f"/api/v1/apps/acme-api/images/api/manifests/{DIGEST}"


@pytest.fixture(autouse=True)
def pushed(app):
    image = PrivateImage.objects.create(app=app, repository="acme-api/api")
    PrivateTag.objects.create(
        image=image, tag="1.0.0", digest=DIGEST, media_type="application/vnd.oci.image.manifest.v1+json", size=559
    )  # noqa: E501
    return image


def page_urls():
    return [
        reverse("registries:private-tag-delete", args=["acme-api", "api", "1.0.0"]),
        reverse("registries:private-manifest-delete", args=["acme-api", "api", DIGEST]),
    ]


def test_every_member_sees_the_private_registry_and_only_writers_see_delete_buttons(
    admin_client, developer_client, viewer_client
):
    delete_url = page_urls()[0]
    for client, writer in ((admin_client, True), (developer_client, True), (viewer_client, False)):
        html = client.get(reverse("registries:image-list")).content.decode()
        assert "Private registry" in html and "acme-api/api" in html and DIGEST[:19] in html
        assert (delete_url in html) is writer
        assert ("docker push" in html) is writer
        assert ("can pull these images but not push" in html) is not writer


def test_another_team_does_not_see_the_app(outsider_client):
    html = outsider_client.get(reverse("registries:image-list")).content.decode()
    assert "acme-api" not in html and "No apps yet" in html


@pytest.mark.parametrize("url", page_urls())
def test_delete_pages_writers_confirm_readers_get_403_other_teams_404(
    url, admin_client, developer_client, viewer_client, outsider_client, client
):
    for writer in (admin_client, developer_client):
        confirm = writer.get(url)
        assert confirm.status_code == 200 and DIGEST in confirm.content.decode()
    assert viewer_client.get(url).status_code == 403
    assert viewer_client.post(url, {"digest": DIGEST}).status_code == 403
    assert outsider_client.get(url).status_code == 404
    assert outsider_client.post(url, {"digest": DIGEST}).status_code == 404
    assert client.get(url).status_code == 302  # to the login page
    assert PrivateTag.objects.filter(tag="1.0.0").exists()


def test_a_delete_that_cannot_reach_the_registry_deletes_nothing_and_says_so(developer_client):
    response = developer_client.post(page_urls()[0], {"digest": DIGEST}, follow=True)
    assert "Nothing was deleted" in response.content.decode()
    assert PrivateTag.objects.filter(tag="1.0.0").exists()


def test_api_lists_for_every_member_and_read_only_tokens_but_not_other_teams(
    admin_api, developer_api, viewer_api, outsider_api, team
):
    ro_service = factories.bearer_client(factories.service_token(team, access=TokenAccess.READ_ONLY))
    for api in (admin_api, developer_api, viewer_api, ro_service):
        body = api.get("/api/v1/apps/acme-api/images/").json()
        assert body["repositories"][0]["tags"][0]["digest"] == DIGEST
        assert "not reachable" in body["refresh_error"]
    assert outsider_api.get("/api/v1/apps/acme-api/images/").status_code == 404
    assert outsider_api.get("/api/v1/apps/nope/images/").status_code == 404


@pytest.mark.parametrize("url", [TAG_URL, MANIFEST_URL])
def test_api_deletes_need_write_and_the_team(url, admin_api, developer_api, viewer_api, outsider_api, team, client):
    ro_service = factories.bearer_client(factories.service_token(team, access=TokenAccess.READ_ONLY))
    rw_service = factories.bearer_client(factories.service_token(team, access=TokenAccess.READ_WRITE))
    for api in (viewer_api, ro_service):
        response = api.delete(url)
        assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert outsider_api.delete(url).status_code == 404
    assert client.delete(url).status_code in (401, 403)
    for api in (admin_api, developer_api, rw_service):  # allowed: fails only at the (absent) registry
        response = api.delete(url)
        assert response.status_code == 502 and response.json()["code"] == "registry_unavailable"
    assert PrivateTag.objects.filter(tag="1.0.0").exists()


def test_api_refuses_names_that_are_not_image_references(admin_api):
    assert admin_api.delete("/api/v1/apps/acme-api/images/api/tags/bad%20tag").status_code == 404
    assert admin_api.delete("/api/v1/apps/acme-api/images/API/tags/1.0.0").status_code == 404
    response = admin_api.delete("/api/v1/apps/acme-api/images/a__/tags/1.0.0")
    assert response.status_code == 400 and response.json()["code"] == "invalid"
