"""Pull analytics: the figures (per day, top customers, refusals), the page with its SVG charts,
the CSV and the API, each scoped to the team, an app or a license."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from insights import selectors
from licenses import services as licenses
from licenses.models import PullEvent, Refusal
from tests import factories

pytestmark = pytest.mark.django_db


def _pull(license, *, days_ago=0, kind="manifest", status=200, size=0, reason="", repository="acme/api"):
    return PullEvent.objects.create(
        license=license, app=license.app, repository=repository, kind=kind, reference="1.0", status=status,
        bytes=size, reason=reason, created_at=timezone.now() - timedelta(days=days_ago),
    )  # fmt: skip


@pytest.fixture
def traffic(actor, app, customer_license, other_team, outsider_actor):
    """Globex pulls a lot, Initech a little, one of Initech's pulls is refused; another team's
    license pulls too (never counted here)."""
    initech, _ = licenses.license_create(actor=actor, app=app, customer_name="Initech")
    globex = customer_license.license
    _pull(globex, days_ago=0)
    _pull(globex, days_ago=0, kind="blob", size=5_000_000)
    _pull(globex, days_ago=2)
    _pull(globex, days_ago=2, kind="blob", size=3_000_000)
    _pull(initech, days_ago=2, kind="blob", size=1_000)
    _pull(initech, days_ago=1, status=403, reason=Refusal.NOT_ALLOWED)
    _pull(initech, days_ago=45, kind="blob", size=9_999_999)  # outside 30 days
    other_app = factories.make_app(other_team, "other-app")
    stranger, _ = licenses.license_create(actor=outsider_actor, app=other_app, customer_name="Stranger")
    _pull(stranger, kind="blob", size=77_777_777)
    return {"globex": globex, "initech": initech}


def test_figures_count_pulls_bytes_and_refusals_per_day_for_the_team_only(team, traffic):
    figures = selectors.pull_figures(selectors.Scope(team))
    assert len(figures.days) == 30
    assert figures.days[-1].day == timezone.localdate()
    today, two_days_ago = figures.days[-1], figures.days[-3]
    assert (today.pulls, today.bytes, today.refused) == (1, 5_000_000, 0)
    assert (two_days_ago.pulls, two_days_ago.bytes) == (1, 3_001_000)
    assert figures.days[-2].refused == 1
    assert figures.totals == selectors.Totals(pulls=2, bytes=8_001_000, refused=1)
    assert [(c.customer, c.bytes) for c in figures.customers] == [("Globex", 8_000_000), ("Initech", 1_000)]
    assert figures.refusals == [(Refusal.NOT_ALLOWED, 1)]


def test_a_longer_period_counts_older_traffic(team, traffic):
    figures = selectors.pull_figures(selectors.Scope(team, days=90))
    assert len(figures.days) == 90
    assert figures.totals.bytes == 8_001_000 + 9_999_999


def test_a_license_scope_counts_that_license_only(team, traffic):
    figures = selectors.pull_figures(selectors.Scope(team, license=traffic["initech"]))
    assert figures.totals == selectors.Totals(pulls=0, bytes=1_000, refused=1)


def test_the_page_draws_both_charts_and_lists_customers_and_refusals(admin_client, traffic):
    response = admin_client.get("/analytics/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<svg class="chart"') == 2
    assert "<title>" in html and "4.8\xa0MB" in html  # today's bytes in a bar's tooltip
    assert "Globex" in html and "Initech" in html and Refusal.NOT_ALLOWED in html
    assert "Stranger" not in html


def test_a_customer_name_is_escaped_in_the_page_and_its_chart(actor, app, admin_client):
    license, _ = licenses.license_create(actor=actor, app=app, customer_name="<script>alert(1)</script>")
    _pull(license, kind="blob", size=10)
    html = admin_client.get("/analytics/").content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_an_empty_team_sees_empty_states_not_errors(admin_client):
    html = admin_client.get("/analytics/").content.decode()
    assert "No pulls in this period." in html and "Nothing refused in this period." in html


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("days=12", "days", "Give one of 7, 30, 90."),
        ("app=nope", "app", "This team has no app “nope”."),
        ("license=abc", "license", "Give a license's numeric id."),
        ("license=999999", "license", "This team has no license 999999."),
    ],
)
def test_bad_parameters_are_named_on_the_page_the_csv_and_the_api(admin_client, admin_api, query, field, message):
    page = admin_client.get(f"/analytics/?{query}").content.decode()
    assert f"{field}: {message}" in page.replace("&#x27;", "'")
    csv_response = admin_client.get(f"/analytics/pulls.csv?{query}")
    assert csv_response.status_code == 400 and f"{field}: {message}" in csv_response.content.decode()
    api = admin_api.get(f"/api/v1/analytics/pulls/?{query}")
    assert api.status_code == 400 and message in str(api.json())


def test_another_teams_license_is_not_found(admin_client, traffic, outsider_client):
    response = outsider_client.get(f"/analytics/pulls.csv?license={traffic['globex'].pk}")
    assert response.status_code == 400 and "has no license" in response.content.decode()


def test_the_csv_has_a_row_per_day_and_a_customers_table(admin_client, traffic):
    response = admin_client.get("/analytics/pulls.csv?app=acme-api&days=7")
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="pulls-acme-api-days-7d.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["date", "pulls", "bytes", "refused"] and len(rows) == 8
    assert rows[-1][1:] == ["1", "5000000", "0"]
    customers = list(csv.reader(io.StringIO(admin_client.get("/analytics/pulls.csv?table=customers").content.decode())))
    assert customers[1][1:] == ["Globex", "acme-api", "2", "8000000"]


def test_a_formula_in_a_customer_name_stays_text_in_the_csv(actor, app, admin_client):
    license, _ = licenses.license_create(actor=actor, app=app, customer_name='=HYPERLINK("http://x")')
    _pull(license, kind="blob", size=1)
    rows = list(csv.reader(io.StringIO(admin_client.get("/analytics/pulls.csv?table=customers").content.decode())))
    assert rows[1][1] == '\'=HYPERLINK("http://x")'


def test_an_unknown_csv_table_is_refused(admin_client):
    response = admin_client.get("/analytics/pulls.csv?table=secrets")
    assert response.status_code == 400 and "table: give days or customers." in response.content.decode()


def test_the_api_gives_the_same_figures(admin_api, traffic):
    body = admin_api.get(f"/api/v1/analytics/pulls/?license={traffic['globex'].pk}&days=7").json()
    assert (body["days"], body["app"], body["license"]) == (7, "acme-api", traffic["globex"].pk)
    assert body["totals"] == {"pulls": 2, "bytes": 8_000_000, "refused": 0}
    assert len(body["by_day"]) == 7 and body["by_day"][-1]["bytes"] == 5_000_000
    assert body["top_customers"][0]["customer"] == "Globex"


def test_the_api_needs_a_member(client):
    assert client.get("/api/v1/analytics/pulls/").status_code in (401, 403)


def test_the_license_and_app_pages_link_to_their_analytics(admin_client, customer_license):
    license = customer_license.license
    license_page = admin_client.get(f"/licenses/{license.pk}/").content.decode()
    assert f'href="/analytics/?license={license.pk}"' in license_page
    app_page = admin_client.get(f"/apps/{license.app.slug}/").content.decode()
    assert f'href="/analytics/?app={license.app.slug}"' in app_page
