"""Who may push and pull at the private registry, decided by the portal's token service and
enforced by a real Distribution 2.8, with skopeo as the client (issue 5; SECURITY-TESTS A4,
A6, A7, A8).

The cast: team Acme (admin, read-only member, read/write and read-only service accounts) owns
apps `acme-api` and `acme-web`; team Other (its admin) owns `other-app`; a license of
`acme-api`. Images live at `<registry>/<app-slug>/<image>:<tag>`.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import timedelta

import httpx
import jwt
import pytest
from django.conf import global_settings
from django.conf import settings as django_settings
from django.core.cache import cache
from django.utils import timezone

from accounts import services as accounts
from accounts.models import ApiToken, Role, TokenAccess
from delivery import customer_auth
from licenses import services as licenses
from licenses.models import License
from portal import ratelimit, registry_tokens
from tests import factories

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# What Distribution answers when the portal's token lacks the action (skopeo prints it).
DENIED = "requested access to the resource is denied"


@dataclass
class Cast:
    """The shared cast's credentials in the form skopeo and Basic auth take them ("user:secret")."""

    admin: str
    admin_password: str
    viewer: str
    rw_service: str
    ro_service: str
    outsider: str
    outsider_password: str
    outsider_service: str
    license: str
    license_row: License


@pytest.fixture(autouse=True)
def _fresh_rate_window():
    """Every request here comes from 127.0.0.1: start each test with an empty per-address window."""
    cache.delete(ratelimit.slot("customer-auth:addr:127.0.0.1", customer_auth.RATE_WINDOW))


@pytest.fixture
def cast(team, admin, viewer, other_team, outsider, customer_license, settings) -> Cast:
    """The shared members (the license is `customer_license`, of `acme-api`), plus app `acme-web`
    of Acme and `other-app` of Other, and service accounts: the grants differ by app and by team."""
    # uvicorn hashes with the real hashers: store these passwords the way production does.
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    for user in (admin, outsider):
        user.set_password(factories.PASSWORD)
        user.save(update_fields=["password"])
    factories.make_app(team, "acme-web")
    factories.make_app(other_team, "other-app")
    admin_token = factories.user_token(admin, team)
    return Cast(
        admin=f"admin@acme.test:{admin_token}",
        admin_password=f"admin@acme.test:{factories.PASSWORD}",
        viewer=f"whoever:{factories.user_token(viewer, team)}",
        rw_service=f"anything:{factories.service_token(team)}",
        ro_service=f"anything:{factories.service_token(team, access=TokenAccess.READ_ONLY)}",
        outsider=f"boss@other.test:{factories.user_token(outsider, other_team)}",
        outsider_password=f"boss@other.test:{factories.PASSWORD}",
        outsider_service=f"ci:{factories.service_token(other_team)}",
        license=f"LICENSE_ID:{customer_license.license_id}",
        license_row=customer_license.license,
    )


# --- helpers ---------------------------------------------------------------------------------


def _skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120, check=False)


def _push(registry, creds: str, layout, reference: str) -> subprocess.CompletedProcess[str]:
    return _skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        creds,
        layout.source,
        f"docker://{registry.netloc}/{reference}",
    )


def _pull(registry, creds: str, reference: str, tmp_path) -> subprocess.CompletedProcess[str]:
    target = tmp_path / f"pull-{len(list(tmp_path.iterdir()))}"
    return _skopeo(
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        creds,
        f"docker://{registry.netloc}/{reference}",
        f"dir:{target}",
    )


def _ok(result: subprocess.CompletedProcess[str], registry) -> None:
    assert result.returncode == 0, result.stderr + registry.log()[-3000:]


def _refused(result: subprocess.CompletedProcess[str], why: str = DENIED) -> None:
    assert result.returncode != 0, result.stdout
    assert why in result.stderr.lower(), result.stderr


def _tags(registry, cast: Cast, repository: str) -> list[str]:
    result = _skopeo(
        "list-tags", "--tls-verify=false", "--creds", cast.admin, f"docker://{registry.netloc}/{repository}"
    )
    if result.returncode != 0:
        assert "404 (not found)" in result.stderr.lower() or "name unknown" in result.stderr.lower(), result.stderr
        return []
    return sorted(json.loads(result.stdout)["Tags"])


def _digest(registry, cast: Cast, reference: str) -> str:
    """The manifest digest stored under `reference`, read with the team admin's token."""
    result = _skopeo("inspect", "--tls-verify=false", "--creds", cast.admin, f"docker://{registry.netloc}/{reference}")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["Digest"]


def _token(server, creds: str, *scopes: str, service: str | None = None) -> httpx.Response:
    username, _, password = creds.partition(":")
    params = [("service", service or django_settings.REGISTRY_SERVICE), *(("scope", s) for s in scopes)]
    return httpx.get(f"{server.url}/v2/token", params=params, auth=(username, password), timeout=10)


def _claims(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return registry_tokens.verify(response.json()["token"], audience=django_settings.REGISTRY_SERVICE)


def _seed(registry, cast: Cast, oci_layouts) -> str:
    """Pushes acme-api/api:1.0.0 and acme-web/web:1.0.0; returns the former's digest."""
    _ok(_push(registry, cast.admin, oci_layouts["api"], "acme-api/api:1.0.0"), registry)
    _ok(_push(registry, cast.admin, oci_layouts["v2s2"], "acme-web/web:1.0.0"), registry)
    return _digest(registry, cast, "acme-api/api:1.0.0")


# --- vendors ---------------------------------------------------------------------------------


def test_vendors_push_with_a_user_token_a_read_write_service_account_and_email_password(
    private_registry, cast, oci_layouts, tmp_path
):
    layout = oci_layouts["api"]
    _ok(_push(private_registry, cast.admin, layout, "acme-api/api:user-token"), private_registry)
    _ok(_push(private_registry, cast.rw_service, layout, "acme-api/api:service-account"), private_registry)
    _ok(_push(private_registry, cast.admin_password, layout, "acme-api/api:password"), private_registry)
    assert _tags(private_registry, cast, "acme-api/api") == ["password", "service-account", "user-token"]
    for creds in (cast.admin, cast.rw_service, cast.admin_password):
        _ok(_pull(private_registry, creds, "acme-api/api:user-token", tmp_path), private_registry)


def test_read_only_service_accounts_and_members_pull_but_cannot_push(private_registry, cast, oci_layouts, tmp_path):
    seeded = _seed(private_registry, cast, oci_layouts)
    for name, creds in (("read-only service account", cast.ro_service), ("read-only member", cast.viewer)):
        _ok(_pull(private_registry, creds, "acme-api/api:1.0.0", tmp_path), private_registry)
        _refused(_push(private_registry, creds, oci_layouts["secret"], f"acme-api/api:{name.replace(' ', '-')}"))
        _refused(_push(private_registry, creds, oci_layouts["secret"], "acme-api/new:1.0.0"))
    assert _tags(private_registry, cast, "acme-api/api") == ["1.0.0"]
    assert _digest(private_registry, cast, "acme-api/api:1.0.0") == seeded, "the tag was not overwritten"
    assert _tags(private_registry, cast, "acme-api/new") == []


def test_a_vendor_of_another_team_can_neither_push_to_nor_pull_from_the_app(
    private_registry, cast, oci_layouts, tmp_path
):
    seeded = _seed(private_registry, cast, oci_layouts)
    for creds in (cast.outsider, cast.outsider_password, cast.outsider_service):
        _refused(_pull(private_registry, creds, "acme-api/api:1.0.0", tmp_path))
        _refused(_push(private_registry, creds, oci_layouts["secret"], "acme-api/api:1.0.0"))
        _refused(_push(private_registry, creds, oci_layouts["secret"], "acme-api/planted:1.0.0"))
    assert _tags(private_registry, cast, "acme-api/api") == ["1.0.0"]
    assert _digest(private_registry, cast, "acme-api/api:1.0.0") == seeded, "the tag was not overwritten"
    assert _tags(private_registry, cast, "acme-api/planted") == []
    pulled = _pull(private_registry, cast.admin, "acme-api/api:1.0.0", tmp_path)
    _ok(pulled, private_registry)
    # The outsider is no outcast at home: their own app takes their push.
    _ok(_push(private_registry, cast.outsider, oci_layouts["secret"], "other-app/api:1.0.0"), private_registry)
    _refused(_pull(private_registry, cast.admin, "other-app/api:1.0.0", tmp_path))


# --- licenses --------------------------------------------------------------------------------


def test_a_license_pulls_its_own_app_only_and_never_pushes(
    portal_server, private_registry, cast, oci_layouts, tmp_path
):
    seeded = _seed(private_registry, cast, oci_layouts)
    _ok(_push(private_registry, cast.outsider, oci_layouts["secret"], "other-app/api:1.0.0"), private_registry)
    _ok(_pull(private_registry, cast.license, "acme-api/api:1.0.0", tmp_path), private_registry)
    _refused(_pull(private_registry, cast.license, "acme-web/web:1.0.0", tmp_path))  # same team, other app
    _refused(_pull(private_registry, cast.license, "other-app/api:1.0.0", tmp_path))
    _refused(_push(private_registry, cast.license, oci_layouts["secret"], "acme-api/api:1.0.0"))
    _refused(_push(private_registry, cast.license, oci_layouts["secret"], "acme-api/api:customer"))
    assert _tags(private_registry, cast, "acme-api/api") == ["1.0.0"]
    assert _digest(private_registry, cast, "acme-api/api:1.0.0") == seeded, "the tag was not overwritten"
    # Not by digest either: a layer of acme-web under a token the license asked for is refused.
    response = _token(portal_server, cast.license, "repository:acme-web/web:pull")
    assert _claims(response)["access"] == []
    layer = oci_layouts["v2s2"].layer_digests[0]

    def head(token: str) -> int:
        url = f"http://{private_registry.netloc}/v2/acme-web/web/blobs/{layer}"
        return httpx.head(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code

    assert head(response.json()["token"]) == 401
    assert head(_token(portal_server, cast.admin, "repository:acme-web/web:pull").json()["token"]) == 200


# --- the catalog -----------------------------------------------------------------------------

CATALOG_PATHS = ("/v2/_catalog", "/v2/_catalog/", "/v2/_catalog?n=1")


def _catalog(registry, path: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # Distribution answers the trailing-slash variant with a 301 to /v2/_catalog: follow it.
    return httpx.get(f"http://{registry.netloc}{path}", headers=headers, timeout=10, follow_redirects=True)


def test_nobody_but_the_portal_gets_the_catalog(portal_server, private_registry, cast, oci_layouts):
    _seed(private_registry, cast, oci_layouts)
    identities = {
        "license": cast.license,
        "user token": cast.admin,
        "email and password": cast.admin_password,
        "read/write service account": cast.rw_service,
        "read-only service account": cast.ro_service,
        "read-only member": cast.viewer,
        "other team": cast.outsider,
    }
    for name, creds in identities.items():
        response = _token(portal_server, creds, "registry:catalog:*", "registry:catalog:pull")
        assert _claims(response)["access"] == [], name
        for path in CATALOG_PATHS:
            listed = _catalog(private_registry, path, response.json()["token"])
            assert listed.status_code == 401, (name, path, listed.status_code)
            assert b"acme-api" not in listed.content, (name, path)
    for path in CATALOG_PATHS:
        assert _catalog(private_registry, path).status_code == 401, path

    # The portal's own token lists it: the refusals above are about who asked, not a broken catalog.
    own, _, _ = registry_tokens.issue(
        subject="portal",
        audience=django_settings.REGISTRY_SERVICE,
        access=[{"type": "registry", "name": "catalog", "actions": ["*"]}],
    )
    listed = _catalog(private_registry, "/v2/_catalog", own)
    assert listed.status_code == 200, listed.text
    assert listed.json()["repositories"] == ["acme-api/api", "acme-web/web"]


# --- revocation and expiry -------------------------------------------------------------------


def _api_token(creds: str) -> ApiToken:
    return ApiToken.objects.get(token_hash=accounts.hash_secret(creds.partition(":")[2]))


def _manifest(registry, repository: str, reference: str, token: str) -> httpx.Response:
    return httpx.get(
        f"http://{registry.netloc}/v2/{repository}/manifests/{reference}",
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        },
        timeout=10,
    )


def _unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_revoked_and_expired_licenses_and_revoked_tokens_get_401_at_the_next_token_request(
    portal_server, private_registry, cast, actor, team, admin, oci_layouts, tmp_path
):
    _seed(private_registry, cast, oci_layouts)
    scope = "repository:acme-api/api:pull"
    issued = _token(portal_server, cast.license, scope)
    claims = _claims(issued)
    assert claims["access"] == [{"type": "repository", "name": "acme-api/api", "actions": ["pull"]}]
    assert claims["exp"] - claims["iat"] == django_settings.REGISTRY_TOKEN_TTL == 300
    assert issued.json()["expires_in"] == 300
    earlier = issued.json()["token"]

    licenses.license_revoke(actor=actor, license=cast.license_row)
    _unauthorized(_token(portal_server, cast.license, scope))
    _refused(_pull(private_registry, cast.license, "acme-api/api:1.0.0", tmp_path), why="unauthorized")
    # What the README's revocation note is about: a JWT issued before the revocation is
    # Distribution's to check, and it does so by signature and `exp` alone (at most 300 s).
    assert _manifest(private_registry, "acme-api/api", "1.0.0", earlier).status_code == 200

    licenses.license_unrevoke(actor=actor, license=cast.license_row)
    assert _token(portal_server, cast.license, scope).status_code == 200
    License.objects.filter(pk=cast.license_row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    licenses.license_state_forget(cast.license_row)  # as the services do; else seen within LICENSE_CACHE_SECONDS
    _unauthorized(_token(portal_server, cast.license, scope))
    _refused(_pull(private_registry, cast.license, "acme-api/api:1.0.0", tmp_path), why="unauthorized")

    for creds in (cast.admin, cast.rw_service, cast.viewer):
        assert _token(portal_server, creds, scope).status_code == 200
        token = _api_token(creds)
        accounts.token_revoke(actor=factories.actor_of(token.user or admin, team), token=token)
        _unauthorized(_token(portal_server, creds, scope))
        _refused(_pull(private_registry, creds, "acme-api/api:1.0.0", tmp_path), why="unauthorized")
    _refused(_push(private_registry, cast.rw_service, oci_layouts["secret"], "acme-api/api:late"), why="unauthorized")

    # A member who leaves the team takes no access along, whatever token they kept.
    developer = factories.add_member(team, Role.DEVELOPER)
    kept = f"dev:{factories.user_token(developer, team)}"
    assert _claims(_token(portal_server, kept, "repository:acme-api/api:push"))["access"] != []
    team.memberships.filter(user=developer).delete()
    _unauthorized(_token(portal_server, kept, scope))


# --- what is asked for versus what is granted --------------------------------------------------

ACME_API_PULL = [{"type": "repository", "name": "acme-api/api", "actions": ["pull"]}]
SCOPE_TABLE = [
    # (identity, scopes asked for, access granted)
    ("license", ["repository:acme-api/api:pull,push,delete,*"], ACME_API_PULL),
    ("license", ["repository:acme-web/web:pull"], []),
    ("license", ["repository:acme-api/api:pull", "repository:other-app/api:pull"], ACME_API_PULL),
    ("license", ["repository:acme-api/api:pull repository:acme-web/web:pull"], ACME_API_PULL),
    ("license", ["repository(plugin):acme-api/api:pull"], []),
    ("license", ["repository:acme-api/api:pull:extra"], []),
    ("license", ["repository:127.0.0.1:5000/acme-api/api:pull"], []),
    ("license", ["repository:proxy/acme-api/127.0.0.1__5000/acme/api:pull"], []),
    ("license", ["repository:acme-api:pull"], []),
    ("license", ["registry:catalog:*", "repository:acme-api/api:push"], []),
    ("admin", ["repository:acme-api/api:pull,push,delete,*"],
     [{"type": "repository", "name": "acme-api/api", "actions": ["pull", "push"]}]),
    ("admin", ["repository:other-app/api:pull,push"], []),
    ("admin_password", ["repository:acme-web/web:push", "registry:catalog:*"],
     [{"type": "repository", "name": "acme-web/web", "actions": ["push"]}]),
    ("rw_service", ["repository:acme-api/new:push,delete"],
     [{"type": "repository", "name": "acme-api/new", "actions": ["push"]}]),
    ("ro_service", ["repository:acme-api/api:pull,push"], ACME_API_PULL),
    ("viewer", ["repository:acme-api/api:pull,push,delete"], ACME_API_PULL),
    ("outsider", ["repository:acme-api/api:pull", "repository:other-app/x:pull,push"],
     [{"type": "repository", "name": "other-app/x", "actions": ["pull", "push"]}]),
    ("outsider_service", ["repository:acme-api/api:pull,push"], []),
    ("outsider_password", ["repository:acme-web/web:pull"], []),
]  # fmt: skip


def test_scopes_that_are_not_allowed_are_dropped_silently(portal_server, cast):
    for who, scopes, granted in SCOPE_TABLE:
        creds = getattr(cast, who)
        response = _token(portal_server, creds, *scopes)
        claims = _claims(response)
        assert claims["access"] == granted, (who, scopes)
        assert (
            claims["aud"] == django_settings.REGISTRY_SERVICE and claims["iss"] == django_settings.REGISTRY_TOKEN_ISSUER
        )
        assert claims["exp"] - claims["iat"] == django_settings.REGISTRY_TOKEN_TTL
        expected_subject = "license:" if who == "license" else ("user:" if "password" in who else "token:")
        assert claims["sub"].startswith(expected_subject), (who, claims["sub"])
        header = jwt.get_unverified_header(response.json()["token"])
        assert header["alg"] == "RS256" and header["kid"] == registry_tokens.signing_key().kid
    # Vendor credentials are for the private registry; the proxy takes licenses only.
    for who in ("admin", "rw_service", "admin_password"):
        _unauthorized(_token(portal_server, getattr(cast, who), "repository:acme-api/api:pull", service="portal-proxy"))
    # A wrong password, an unknown token and no credentials at all.
    for creds in (f"admin@acme.test:{factories.PASSWORD}x", "x:vpu_unknown-token-value", "LICENSE_ID:not-a-license"):
        _unauthorized(_token(portal_server, creds, "repository:acme-api/api:pull"))
    anonymous = httpx.get(f"{portal_server.url}/v2/token", params={"service": "portal-registry"}, timeout=10)
    _unauthorized(anonymous)
