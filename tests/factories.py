"""Rows for tests, made through the same services the product uses."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from django.test import Client
from rest_framework.test import APIClient

from accounts import services
from accounts.access import Actor
from accounts.models import Membership, Role, Team, TokenAccess, TokenKind, User
from licenses.models import App, License

PASSWORD = "a-Long-test-passw0rd"
_seq = itertools.count(1)


def make_user(email: str | None = None, *, password: str = PASSWORD) -> User:
    return User.objects.create_user(email or f"user{next(_seq)}@example.test", password)


def make_team(name: str | None = None, *, admin: User | None = None) -> Team:
    admin = admin or make_user()
    return services.team_create(name=name or f"Team {next(_seq)}", admin=admin)


def add_member(team: Team, role: str, user: User | None = None) -> User:
    user = user or make_user()
    Membership.objects.create(user=user, team=team, role=role)
    return user


def actor_of(user: User, team: Team) -> Actor:
    return Actor(team=team, role=Membership.objects.get(user=user, team=team).role, user=user)


def make_app(team: Team, slug: str | None = None, *, name: str | None = None) -> App:
    slug = slug or f"app-{next(_seq)}"
    return App.objects.create(team=team, name=name or slug.title(), slug=slug)


@dataclass(frozen=True)
class CustomerLicense:
    """A license and its license ID, the credential its customer types (the row keeps it sealed)."""

    license: License
    license_id: str


def user_token(user: User, team: Team, name: str = "test") -> str:
    _, secret = services.token_create(actor=actor_of(user, team), kind=TokenKind.USER, name=name)
    return secret


def service_token(team: Team, *, access: str = TokenAccess.READ_WRITE, name: str | None = None) -> str:
    admin = Membership.objects.filter(team=team, role=Role.ADMIN).first().user
    _, secret = services.token_create(
        actor=actor_of(admin, team), kind=TokenKind.SERVICE, name=name or f"bot-{next(_seq)}", access=access
    )
    return secret


def browser_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def api_client(user: User, team: Team) -> APIClient:
    """An API client with a fresh personal token of `user` in `team`."""
    return bearer_client(user_token(user, team))


def bearer_client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def connect_registry(actor: Actor, upstream, **extra):
    """An `other` registry for a Distribution started by tests/realparts (its endpoint and login),
    saved through registry_create as a vendor would; `extra` goes to the service."""
    from registries import services as registries

    return registries.registry_create(
        actor=actor,
        provider="other",
        endpoint=upstream.endpoint,
        username=upstream.username,
        password=upstream.password,
        **extra,
    )


def make_release(actor: Actor, app: App, images: list[tuple[str, str, str]], *, promote_to: str = "stable"):
    """A release of `app` whose settings file lists `images` as (source, name, tag), made with
    release_create as a vendor would, and promoted to `promote_to` ("" leaves it unpromoted).
    What a license may pull through the proxy comes from these lists (and the app's rules)."""
    import json

    from licenses import releases

    lines = ["images:"] if images else ["images: []"]
    for source, name, tag in images:
        lines += [f"- source: {json.dumps(source)}", f"  name: {json.dumps(name)}", f"  tag: {json.dumps(tag)}"]
    release, _ = releases.release_create(
        actor=actor, app=app, files={"app.yaml": "\n".join(lines) + "\n"}, promote_to=promote_to
    )
    return release


def allow_whole_registry(actor: Actor, app: App, *registries) -> None:
    """Repository rules letting `app`'s licenses pull everything on these registries (`host/*`,
    `host/prefix/*` for an endpoint with a path), as migration 0005 writes for apps that had
    no rules: for tests about something other than which repositories a license may pull."""
    from licenses import services as licenses

    rules = [rule.replace(":", "__", 1) for rule in app.repository_rules or []]  # as the vendor writes them
    for registry in registries:
        bare = registry.endpoint.removeprefix("http://").removeprefix("https://")
        host, _, prefix = bare.partition("/")
        prefix = prefix.strip("/")
        rules.append(f"{host.replace(':', '__')}/{prefix}/*" if prefix else f"{host.replace(':', '__')}/*")
    licenses.app_set_repository_rules(actor=actor, app=app, rules=rules)


def licensed_images(actor: Actor, team: Team, upstream, slug: str, images: tuple[str, ...] = ("api",)):
    """What a customer pull needs: an app `slug`, `upstream` (a Distribution of tests/realparts)
    connected, a release listing those of its seeded `images` promoted to stable, and Globex's
    license. Returns (app, registry, license, license ID)."""
    from licenses import services as licenses

    app = make_app(team, slug)
    registry = connect_registry(actor, upstream)
    make_release(actor, app, [(registry.name, upstream.images[i].repository, upstream.images[i].tag) for i in images])
    license, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    return app, registry, license, license_id
