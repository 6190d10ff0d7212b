"""The Docker token service's grants: scope parsing and what a license or a vendor may do.

Reference: https://distribution.github.io/distribution/spec/auth/token/ and
https://distribution.github.io/distribution/spec/auth/scope/.
"""

from __future__ import annotations

from dataclasses import dataclass

from delivery import routing
from licenses.models import License, Refusal


class InvalidScope(Exception):
    """A scope string that is not `type:name:actions`."""


@dataclass(frozen=True)
class Scope:
    type: str
    name: str
    actions: tuple[str, ...]


def parse_scopes(values: list[str]) -> list[Scope]:
    """Every `scope` parameter, each possibly space-separated; raises InvalidScope."""
    scopes = []
    for value in values:
        for text in value.split():
            kind, sep, rest = text.partition(":")
            name, sep2, actions = rest.rpartition(":")
            if not sep or not sep2 or not kind or not name:
                raise InvalidScope(text)
            scopes.append(Scope(kind, name, tuple(a for a in actions.split(",") if a)))
    return scopes


def license_grants(license: License, scopes: list[Scope]) -> list[dict]:
    """What a valid license may do: pull on proxy repositories of its own app that resolve to
    one of the app's registries and that a release promoted to the license's channel lists or
    a repository rule of the app names (routing.route_pull). Everything else is dropped."""
    return license_access(license, scopes)[0]


def license_access(license: License, scopes: list[Scope]) -> tuple[list[dict], list[tuple[str, str]]]:
    """(grants, refusals): the grants of license_grants, and (name, reason) for each proxy
    repository asked for pull and refused, for the license's pull log."""
    granted: dict[str, set[str]] = {}
    refused: dict[str, str] = {}
    routes = routing.app_routes(license.app.slug)  # the proxy's own view, kept per process
    if routes is None:
        return [], []
    for scope in scopes:
        if scope.type != "repository" or "pull" not in scope.actions:
            continue
        try:
            proxy = routing.parse_proxy_name(scope.name)
            if proxy.app_slug != routes.app.slug:
                refused[scope.name] = Refusal.OTHER_APP
                continue
            routing.route_pull(routes, proxy, license.channel_id)
        except (routing.NameInvalid, routing.NameUnknown):
            refused[scope.name] = Refusal.UNKNOWN_REPOSITORY
            continue
        except routing.Denied:
            refused[scope.name] = Refusal.NOT_ALLOWED
            continue
        granted.setdefault(scope.name, set()).add("pull")
    grants = [{"type": "repository", "name": name, "actions": sorted(actions)} for name, actions in granted.items()]
    return grants, [(name, reason) for name, reason in refused.items() if name not in granted]


def private_registry_grants(*, scopes: list[Scope], license: License | None = None, actors: list = ()) -> list[dict]:
    """Grants on the portal's private registry, where images live at `<app-slug>/<image>`.

    A valid license pulls its own app's images; a vendor pulls the apps of their teams and
    pushes where their role may write. Catalog and every other scope are dropped: the
    portal lists repositories with a token it mints for itself.
    """
    from accounts.access import Perm
    from licenses.models import App

    granted: dict[str, set[str]] = {}
    for scope in scopes:
        if scope.type != "repository" or "/" not in scope.name:
            continue
        try:
            routing.validate_name(scope.name)
        except routing.NameInvalid:
            continue
        slug = scope.name.split("/", 1)[0]
        allowed: set[str] = set()
        if license is not None and license.app.slug == slug:
            allowed.add("pull")
        for actor in actors:
            if App.objects.filter(team=actor.team, slug=slug).exists():
                allowed |= {"pull", "push"} if actor.can(Perm.WRITE) else {"pull"}
        actions = allowed & set(scope.actions)
        if actions:
            granted.setdefault(scope.name, set()).update(actions)
    return [{"type": "repository", "name": name, "actions": sorted(actions)} for name, actions in granted.items()]
