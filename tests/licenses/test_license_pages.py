"""The license pages: create, find, edit, revoke, instructions, pulls, and the app's repository access."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from licenses import services
from licenses.models import App, License, PullEvent
from registries.models import ExternalRegistry
from tests import factories

pytestmark = pytest.mark.django_db

CREATE = reverse("licenses:license-create")
LIST = reverse("licenses:license-list")


def _license(app, customer="Globex", *, by=None, **fields):
    by = by or app.team.memberships.get(role=Role.ADMIN).user
    return services.license_create(actor=factories.actor_of(by, app.team), app=app, customer_name=customer, **fields)


def _registry(team, endpoint, name=None, **fields):
    return ExternalRegistry.objects.create(
        team=team, name=name or endpoint.split("/")[0], provider="other", endpoint=endpoint, **fields
    )


def _detail(pk):
    return reverse("delivery:license-detail", args=[pk])


# --- create ------------------------------------------------------------------------------


def test_creating_a_license_shows_its_page_with_the_license_id(developer_client, app):
    response = developer_client.post(
        CREATE,
        {"app": "acme-api", "customer_name": " Globex  Corp ", "customer_email": "IT@Globex.test", "type": "trial"},
    )
    license = License.objects.get()
    assert response.status_code == 302 and response["Location"] == _detail(license.pk)
    assert (license.customer_name, license.customer_email, license.type) == ("Globex Corp", "it@globex.test", "trial")
    assert license.expires_at is None and license.created_by.email == "dev@acme.test"

    page = developer_client.get(_detail(license.pk))
    license_id = services.license_id_of(license)
    assert f'value="{license_id}"' in page.content.decode()  # in the read-only input with a Copy button
    assert "no-store" in page["Cache-Control"]
    assert b"License for Globex Corp created" in page.content
    assert b"Active" in page.content


def test_the_license_id_is_on_its_page_but_never_in_a_list_or_an_url(admin_client, app):
    licenses = [_license(app, f"Customer {i}") for i in range(3)]
    list_html = (
        admin_client.get(LIST).content.decode()
        + admin_client.get(reverse("licenses:app-detail", args=[app.slug])).content.decode()
    )
    list_html += admin_client.get(reverse("licenses:app-licenses", args=[app.slug])).content.decode()
    for license, license_id in licenses:
        assert license_id not in list_html
        assert f"{license.id_prefix}…" in list_html
        page = admin_client.get(_detail(license.pk)).content.decode()
        assert page.count(license_id) == 1
        assert license_id not in reverse("licenses:license-file", args=[license.pk])


def test_expiry_can_be_a_date_or_a_number_of_days(developer_client, app):
    day = date.today() + timedelta(days=30)
    developer_client.post(CREATE, {"app": "acme-api", "customer_name": "Dated", "type": "paid", "expires_at": day})
    dated = License.objects.get(customer_name="Dated")
    assert dated.expires_at.date() == day and (dated.expires_at.hour, dated.expires_at.minute) == (23, 59)

    before = timezone.now()
    developer_client.post(CREATE, {"app": "acme-api", "customer_name": "In days", "type": "paid", "expires_in_days": 7})
    in_days = License.objects.get(customer_name="In days")
    assert before + timedelta(days=7) <= in_days.expires_at <= timezone.now() + timedelta(days=7)


@pytest.mark.parametrize(
    "changes, field, reason",
    [
        ({"customer_name": "   "}, "customer_name", "Enter the customer"),
        ({"customer_email": "not-an-email"}, "customer_email", "Enter a valid email address"),
        ({"expires_at": "2020-01-01"}, "expires_at", "The expiry must be in the future."),
        ({"expires_at": "31/01/2027"}, "expires_at", "Enter a valid date"),
        ({"expires_in_days": "0"}, "expires_in_days", "greater than or equal to 1"),
        ({"expires_at": "2099-01-01", "expires_in_days": "5"}, "expires_in_days", "not both"),
        ({"type": "forever"}, "type", "Select a valid choice"),
        ({"app": ""}, "app", "Choose the app"),
    ],
)
def test_bad_license_input_names_the_field_and_stores_nothing(developer_client, app, changes, field, reason):
    body = {"app": "acme-api", "customer_name": "Globex", "customer_email": "", "type": "paid", **changes}
    response = developer_client.post(CREATE, body)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert reason in " ".join(errors[field]), errors
    assert f'id="id_{field}-error"' in response.content.decode()
    assert not License.objects.exists()


def test_the_create_form_preselects_the_app_and_refuses_another_teams(developer_client, app, other_team):
    factories.make_app(app.team, "second")
    form = developer_client.get(CREATE, {"app": "second"}).context["form"]
    assert form["app"].value() == "second"
    foreign = factories.make_app(other_team, "foreign")
    assert developer_client.get(CREATE, {"app": foreign.slug}).status_code == 404
    body = {"app": foreign.slug, "customer_name": "Sneaky", "type": "paid"}
    assert developer_client.post(CREATE, body).status_code == 404
    assert not License.objects.exists()


# --- the list: search, filters, pagination, empty states -----------------------------------


@pytest.fixture
def assorted(app, team, actor):
    other = factories.make_app(team, "tools", name="Acme Tools")
    active, active_id = _license(app, "Globex", customer_email="ops@globex.test")
    expired, _ = _license(app, "Initech")
    License.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    revoked, _ = _license(other, "Umbrella", customer_email="it@umbrella.test")
    services.license_revoke(actor=actor, license=revoked)
    return {"active": active, "active_id": active_id, "expired": expired, "revoked": revoked}


def _names(response) -> list[str]:
    return sorted(license.customer_name for license in response.context["page"].object_list)


@pytest.mark.parametrize(
    "query, expected",
    [
        ({}, ["Globex", "Initech", "Umbrella"]),
        ({"q": "glob"}, ["Globex"]),
        ({"q": "UMBRELLA.test"}, ["Umbrella"]),
        ({"status": "active"}, ["Globex"]),
        ({"status": "expired"}, ["Initech"]),
        ({"status": "revoked"}, ["Umbrella"]),
        ({"app": "tools"}, ["Umbrella"]),
        ({"app": "acme-api", "status": "revoked"}, []),
        ({"status": "bogus"}, ["Globex", "Initech", "Umbrella"]),
    ],
)
def test_the_list_searches_and_filters(viewer_client, assorted, query, expected):
    assert _names(viewer_client.get(LIST, query)) == expected


def test_the_list_finds_a_license_by_its_id_prefix(viewer_client, assorted):
    prefix = assorted["active"].id_prefix
    assert _names(viewer_client.get(LIST, {"q": prefix[:4]})) == ["Globex"]
    assert _names(viewer_client.get(LIST, {"q": f"{prefix}…"})) == ["Globex"]


def test_the_list_shows_status_badges_and_the_app(viewer_client, assorted):
    html = viewer_client.get(LIST).content.decode()
    assert "Revoked</span>" in html and "Expired</span>" in html and "Active</span>" in html
    assert "Acme Tools" in html


def test_nothing_matching_says_so_and_offers_to_clear(viewer_client, assorted):
    html = viewer_client.get(LIST, {"q": "nobody"}).content.decode()
    assert "No licenses match" in html and "Clear filters" in html


def test_the_list_paginates_and_keeps_the_search(admin_client, app):
    for i in range(30):
        _license(app, f"Customer {i:02d}")
    first = admin_client.get(LIST, {"q": "customer"})
    assert first.context["page"].paginator.count == 30 and len(first.context["page"].object_list) == 25
    assert "?q=customer&amp;page=2" in first.content.decode()
    second = admin_client.get(LIST, {"q": "customer", "page": 2})
    assert len(second.context["page"].object_list) == 5


def test_empty_states_say_what_to_do_next(developer_client, viewer_client, team):
    assert b"Create an app" in developer_client.get(LIST).content
    assert b"Ask a developer or admin" in viewer_client.get(LIST).content
    factories.make_app(team, "acme-api")
    html = developer_client.get(LIST).content.decode()
    assert "No licenses yet" in html and "Create the first license" in html
    viewer_html = viewer_client.get(LIST).content.decode()
    assert "No licenses yet" in viewer_html and "New license" not in viewer_html
    assert developer_client.get(CREATE).status_code == 200


def test_creating_without_any_app_leads_to_creating_one(developer_client):
    response = developer_client.get(CREATE)
    assert response.status_code == 302 and response["Location"] == reverse("licenses:app-create")


def test_the_app_page_has_its_licenses_section(developer_client, app, team):
    _license(app, "Globex")
    _license(factories.make_app(team, "tools"), "Umbrella")
    html = developer_client.get(reverse("licenses:app-detail", args=[app.slug])).content.decode()
    assert "Globex" in html and "Umbrella" not in html
    assert reverse("licenses:app-licenses", args=[app.slug]) in html
    assert f"{CREATE}?app={app.slug}" in html
    assert "1 active" in html
    per_app = developer_client.get(reverse("licenses:app-licenses", args=[app.slug]))
    assert _names(per_app) == ["Globex"]


# --- the license page ------------------------------------------------------------------------


def test_the_license_page_tells_the_customer_how_to_pull_what_its_channel_released(admin_client, app, actor, team):
    _registry(team, "quay.io/acme")
    _registry(team, "registry.local:5000", name="local")
    _registry(team, "ghcr.io/not-this-app", all_apps=False)  # serves another app only
    factories.make_release(actor, app, [("quay.io", "acme/api", "1.0"), ("local", "team/app", "1.0")])
    factories.make_release(actor, app, [("quay.io", "acme/beta-only", "2.0")], promote_to="beta")
    license, _ = _license(app, customer_email="ops@globex.test")
    html = admin_client.get(_detail(license.pk)).content.decode()
    assert "docker login testserver --username ops@globex.test --password-stdin" in html
    assert "docker pull testserver/proxy/acme-api/quay.io/acme/api:&lt;tag&gt;" in html
    assert "docker pull testserver/proxy/acme-api/registry.local__5000/team/app:&lt;tag&gt;" in html
    assert "beta-only" not in html and "&lt;image&gt;" not in html  # nothing else pulls
    assert "ghcr.io" not in html
    assert "use the image pull secret below" in html  # Kubernetes: one secret for both hosts


def test_a_registry_with_nothing_released_or_allowed_says_so(admin_client, app, team):
    _registry(team, "quay.io/acme")
    license, _ = _license(app)
    html = admin_client.get(_detail(license.pk)).content.decode()
    assert "docker pull testserver/proxy" not in html
    assert "nothing there in a release promoted to stable or in the app's rules" in html


def test_instructions_follow_the_apps_repository_rules(admin_client, app, actor, team):
    _registry(team, "quay.io/acme")
    services.app_set_repository_rules(actor=actor, app=app, rules=["quay.io/acme/api", "quay.io/acme/tools/*"])
    license, _ = _license(app)
    html = admin_client.get(_detail(license.pk)).content.decode()
    assert "docker pull testserver/proxy/acme-api/quay.io/acme/api:&lt;tag&gt;" in html
    assert "docker pull testserver/proxy/acme-api/quay.io/acme/tools/&lt;image&gt;:&lt;tag&gt;" in html
    assert "quay.io/acme/&lt;image&gt;" not in html


def test_a_license_for_an_app_without_registries_says_there_is_nothing_to_pull(admin_client, app):
    license, _ = _license(app)
    assert b"No registry serves Acme API yet" in admin_client.get(_detail(license.pk)).content


def test_the_license_page_lists_the_last_50_pulls(viewer_client, app):
    license, _ = _license(app)
    assert b"No pulls yet" in viewer_client.get(_detail(license.pk)).content
    now = timezone.now()
    for i in range(55):
        PullEvent.objects.create(
            license=license, app=app, repository=f"quay.io/acme/api{i}", kind="blob",
            reference=f"sha256:{i:064d}", status=200, bytes=1_500_000, created_at=now - timedelta(minutes=i),
        )  # fmt: skip
    PullEvent.objects.create(
        license=license, app=app, repository="quay.io/acme/secret", kind="manifest", reference="1.0",
        status=403, reason="repository not allowed", created_at=now + timedelta(seconds=1),
    )  # fmt: skip
    response = viewer_client.get(_detail(license.pk))
    html = response.content.decode()
    assert len(response.context["pulls"]) == 50
    assert "quay.io/acme/secret" in html and "repository not allowed" in html and ">403<" in html
    assert "quay.io/acme/api0<" in html and "quay.io/acme/api48<" in html and "quay.io/acme/api49<" not in html
    assert "1.4\xa0MB" in html


def test_the_license_page_links_the_license_file(viewer_client, app):
    license, license_id = _license(app)
    url = reverse("licenses:license-file", args=[license.pk])
    assert url == f"/licenses/{license.pk}/license.yaml"
    assert f'href="{url}"' in viewer_client.get(_detail(license.pk)).content.decode()
    response = viewer_client.get(url)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert response["Content-Disposition"] == f'attachment; filename="acme-api-{license.id_prefix}.license.yaml"'
    assert license_id in response.content.decode() and "signature:" in response.content.decode()


def test_an_unreadable_license_id_is_explained_not_a_crash(viewer_client, app):
    license, _ = _license(app)
    License.objects.filter(pk=license.pk).update(license_id_encrypted="v1:nokey:AAAA:AAAA")
    page = viewer_client.get(_detail(license.pk))
    assert page.status_code == 200 and b"cannot be decrypted" in page.content
    response = viewer_client.get(reverse("licenses:license-file", args=[license.pk]), follow=True)
    assert response.redirect_chain[-1][0] == _detail(license.pk)
    assert b"no file was made" in response.content


# --- edit, revoke, un-revoke -------------------------------------------------------------------


def test_editing_changes_only_what_changed(developer_client, app):
    license, license_id = _license(app, expires_at=timezone.now() + timedelta(days=3, hours=5))
    exact = license.expires_at
    url = reverse("licenses:license-edit", args=[license.pk])
    form = developer_client.get(url).context["form"]
    body = {name: form[name].value() or "" for name in ("customer_name", "customer_email", "type", "expires_at")}
    assert developer_client.post(url, {**body, "customer_email": "new@globex.test"}).status_code == 302
    license.refresh_from_db()
    assert license.customer_email == "new@globex.test" and license.expires_at == exact  # the time is kept

    later = date.today() + timedelta(days=400)
    developer_client.post(url, {**body, "expires_at": later.isoformat()})
    license.refresh_from_db()
    assert license.expires_at.date() == later
    developer_client.post(url, {**body, "expires_at": ""})
    license.refresh_from_db()
    assert license.expires_at is None
    assert services.license_id_of(license) == license_id  # the ID never changes


@pytest.mark.parametrize(
    "changes, field, reason",
    [
        ({"customer_name": ""}, "customer_name", "Enter the customer's name."),
        ({"customer_email": "nope"}, "customer_email", "Enter a valid email address"),
        ({"expires_at": "2020-01-01"}, "expires_at", "revoke the license"),
        ({"type": "forever"}, "type", "Select a valid choice"),
    ],
)
def test_bad_edits_name_the_field_and_change_nothing(developer_client, app, changes, field, reason):
    license, _ = _license(app, customer_email="ops@globex.test")
    body = {"customer_name": "Globex", "customer_email": "ops@globex.test", "type": "paid", "expires_at": ""}
    response = developer_client.post(reverse("licenses:license-edit", args=[license.pk]), {**body, **changes})
    assert response.status_code == 200
    assert reason in " ".join(response.context["form"].errors[field])
    fresh = License.objects.get(pk=license.pk)
    assert (fresh.customer_name, fresh.customer_email, fresh.type, fresh.expires_at) == (
        "Globex", "ops@globex.test", "paid", None,
    )  # fmt: skip


def test_revoking_and_unrevoking_need_confirmation_and_work(developer_client, app):
    license, _ = _license(app)
    revoke = reverse("licenses:license-revoke", args=[license.pk])
    unrevoke = reverse("licenses:license-unrevoke", args=[license.pk])
    assert f'href="{revoke}"' in developer_client.get(_detail(license.pk)).content.decode()

    confirm = developer_client.get(revoke)
    assert confirm.status_code == 200 and b"Revoke the license of Globex?" in confirm.content
    assert License.objects.get(pk=license.pk).revoked_at is None  # asking is not doing

    assert developer_client.post(revoke)["Location"] == _detail(license.pk)
    license.refresh_from_db()
    assert license.status == "revoked" and services.license_state(str(license.uid)) is None
    page = developer_client.get(_detail(license.pk)).content.decode()
    assert "Revoked</span>" in page and f'href="{unrevoke}"' in page and f'href="{revoke}"' not in page

    confirm = developer_client.get(unrevoke)
    assert b"Un-revoke the license of Globex?" in confirm.content
    assert License.objects.get(pk=license.pk).revoked_at is not None
    developer_client.post(unrevoke)
    license.refresh_from_db()
    assert license.status == "active" and services.license_state(str(license.uid)).app_id == app.pk


def test_revoking_twice_says_so(developer_client, app):
    license, _ = _license(app)
    url = reverse("licenses:license-revoke", args=[license.pk])
    developer_client.post(url)
    first = License.objects.get(pk=license.pk).revoked_at
    response = developer_client.post(url, follow=True)
    assert b"already revoked" in response.content
    assert License.objects.get(pk=license.pk).revoked_at == first


# --- repository access -------------------------------------------------------------------------


def test_repository_rules_are_saved_and_shown_as_written(developer_client, app, team):
    _registry(team, "quay.io/acme")
    url = reverse("licenses:app-repository-rules", args=[app.slug])
    detail = reverse("licenses:app-detail", args=[app.slug])
    html = developer_client.get(detail).content.decode()
    assert 'id="no-rules-note"' in html and "quay.io/acme" in html

    response = developer_client.post(
        url, {"repository_rules": "quay.io/acme/api\n\n  quay.io/acme/tools/*  \nregistry.local__5000/team/app\n"}
    )
    assert response.status_code == 302 and response["Location"] == f"{detail}#repository-access"
    app.refresh_from_db()
    assert app.repository_rules == ["quay.io/acme/api", "quay.io/acme/tools/*", "registry.local:5000/team/app"]
    html = developer_client.get(detail).content.decode()
    assert 'id="no-rules-note"' not in html
    assert "registry.local__5000/team/app" in html  # the form round-trips: ports as host__port
    # Saving the form as shown keeps the rules.
    form_text = developer_client.get(detail).context["rules_form"]["repository_rules"].value()
    developer_client.post(url, {"repository_rules": form_text})
    app.refresh_from_db()
    assert app.repository_rules == ["quay.io/acme/api", "quay.io/acme/tools/*", "registry.local:5000/team/app"]

    developer_client.post(url, {"repository_rules": ""})
    assert App.objects.get(pk=app.pk).repository_rules == []
    assert b'id="no-rules-note"' in developer_client.get(detail).content


@pytest.mark.parametrize("rules", ["quay.io/acme/api\nnot a rule", "quay.io", "quay.io/../etc", "https://quay.io/a"])
def test_bad_repository_rules_name_the_line_and_change_nothing(developer_client, app, actor, rules):
    services.app_set_repository_rules(actor=actor, app=app, rules=["quay.io/acme/api"])
    response = developer_client.post(
        reverse("licenses:app-repository-rules", args=[app.slug]), {"repository_rules": rules}
    )
    assert response.status_code == 200
    errors = " ".join(response.context["rules_form"].errors["repository_rules"])
    assert "must look like quay.io/acme/api" in errors and "Rule " in errors
    assert 'id="id_repository_rules-error"' in response.content.decode()
    assert App.objects.get(pk=app.pk).repository_rules == ["quay.io/acme/api"]


def test_the_app_page_lists_the_registries_serving_it(viewer_client, app, team):
    html = viewer_client.get(reverse("licenses:app-detail", args=[app.slug])).content.decode()
    assert "No registry serves this app yet" in html
    _registry(team, "quay.io/acme", name="Quay")
    only_other = _registry(team, "ghcr.io/acme", name="GHCR", all_apps=False)
    only_other.apps.add(factories.make_app(team, "tools"))
    html = viewer_client.get(reverse("licenses:app-detail", args=[app.slug])).content.decode()
    assert "Quay" in html and "GHCR" not in html


# --- permissions ---------------------------------------------------------------------------------

ALLOWED, DENIED = "allowed", "denied"
ROLES = [Role.ADMIN, Role.DEVELOPER, Role.READ_ONLY]
ACTIONS = ["create license", "edit license", "revoke license", "unrevoke license", "set repository rules"]


@pytest.fixture
def world(app, actor):
    license, _ = _license(app, "Globex")
    revoked, _ = _license(app, "Revoked Inc")
    services.license_revoke(actor=actor, license=revoked)
    return {"app": app, "license": license, "revoked": revoked}


def _post(client, action, w):
    calls = {
        "create license": lambda: client.post(CREATE, {"app": w["app"].slug, "customer_name": "New", "type": "paid"}),
        "edit license": lambda: client.post(
            reverse("licenses:license-edit", args=[w["license"].pk]),
            {"customer_name": "Renamed", "customer_email": "", "type": "paid", "expires_at": ""},
        ),
        "revoke license": lambda: client.post(reverse("licenses:license-revoke", args=[w["license"].pk])),
        "unrevoke license": lambda: client.post(reverse("licenses:license-unrevoke", args=[w["revoked"].pk])),
        "set repository rules": lambda: client.post(
            reverse("licenses:app-repository-rules", args=[w["app"].slug]), {"repository_rules": "quay.io/acme/*"}
        ),
    }
    return calls[action]()


def _happened(action, w) -> bool:
    effects = {
        "create license": lambda: License.objects.filter(customer_name="New").exists(),
        "edit license": lambda: License.objects.filter(pk=w["license"].pk, customer_name="Renamed").exists(),
        "revoke license": lambda: License.objects.get(pk=w["license"].pk).revoked_at is not None,
        "unrevoke license": lambda: License.objects.get(pk=w["revoked"].pk).revoked_at is None,
        "set repository rules": lambda: App.objects.get(pk=w["app"].pk).repository_rules == ["quay.io/acme/*"],
    }
    return effects[action]()


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("role", ROLES)
def test_license_writes_follow_the_role(action, role, world, client, member_with):
    client.force_login(member_with(role))
    response = _post(client, action, world)
    if role == Role.READ_ONLY:
        assert response.status_code == 403
        assert not _happened(action, world)
    else:
        assert response.status_code == 302, response.content[:500]
        assert _happened(action, world)


def _every_url(w) -> list[str]:
    license, app = w["license"], w["app"]
    return [
        reverse("delivery:license-detail", args=[license.pk]),
        reverse("licenses:license-edit", args=[license.pk]),
        reverse("licenses:license-revoke", args=[license.pk]),
        reverse("licenses:license-unrevoke", args=[w["revoked"].pk]),
        reverse("licenses:license-file", args=[license.pk]),
        reverse("licenses:app-detail", args=[app.slug]),
        reverse("licenses:app-licenses", args=[app.slug]),
        reverse("licenses:app-repository-rules", args=[app.slug]),
        f"{CREATE}?app={app.slug}",
    ]


@pytest.mark.parametrize("action", ACTIONS)
def test_an_outsider_gets_404_and_changes_nothing(action, outsider_client, world):
    assert _post(outsider_client, action, world).status_code == 404
    assert not _happened(action, world)


def test_an_outsider_gets_404_for_every_license_and_app_url(outsider_client, world):
    for url in _every_url(world):
        assert outsider_client.get(url).status_code == 404, url
        assert outsider_client.post(url).status_code == 404, url
    listed = outsider_client.get(LIST)
    assert b"Globex" not in listed.content and b"No apps to license yet" in listed.content
    assert outsider_client.get(LIST, {"app": world["app"].slug}).context["page"].paginator.count == 0


def test_read_only_members_see_everything_but_no_controls(viewer_client, world):
    license = world["license"]
    for url in [LIST, _detail(license.pk), reverse("licenses:app-licenses", args=[world["app"].slug])]:
        assert viewer_client.get(url).status_code == 200, url
    page = viewer_client.get(_detail(license.pk)).content.decode()
    assert services.license_id_of(license) in page
    for control in ["licenses:license-edit", "licenses:license-revoke"]:
        assert reverse(control, args=[license.pk]) not in page
    assert "New license" not in viewer_client.get(LIST).content.decode()
    app_page = viewer_client.get(reverse("licenses:app-detail", args=[world["app"].slug])).content.decode()
    assert "Save repository access" not in app_page and "New license" not in app_page
    assert 'id="no-rules-note"' in app_page
    for url in [CREATE, reverse("licenses:license-edit", args=[license.pk])]:
        assert viewer_client.get(url).status_code == 403, url


@pytest.mark.parametrize("state", ["revoked", "expired"])
def test_a_refused_license_says_so_at_the_top_and_offers_no_instructions_that_would_fail(
    admin_client, actor, customer_license, state
):
    license = customer_license.license
    url = reverse("delivery:license-detail", args=[license.pk])
    active = admin_client.get(url).content.decode()
    assert 'id="instructions-title"' in active and 'id="pull-secret-title"' in active
    assert 'id="license-state"' not in active

    if state == "revoked":
        services.license_revoke(actor=actor, license=license)
    else:
        License.objects.filter(pk=license.pk).update(expires_at=timezone.now() - timedelta(days=1))
    page = admin_client.get(url).content.decode()
    top = page.index('id="license-state"')
    assert top < page.index('id="license-id-title"')  # above everything else on the page
    assert f"This license {'is revoked' if state == 'revoked' else 'expired'}" in page
    assert 'id="instructions-title"' not in page and 'id="pull-secret-title"' not in page
    assert customer_license.license_id in page  # the vendor still sees the ID itself
