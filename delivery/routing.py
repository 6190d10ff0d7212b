"""Which upstream registry and repository a proxy path names, and whether an app may pull it.

A proxy repository name is `proxy/<app-slug>/<upstream-host>/<repository>`. Real clients
(docker, skopeo, containerd) refuse a `:` inside a path, so an upstream port is written
`<host>__<port>` (underscores never occur in host names); `<host>:<port>` is accepted too
for plain HTTP clients.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q
from django.db.models.signals import m2m_changed, post_delete, post_save

from licenses import signals
from licenses.models import App, Channel, Promotion, Release
from licenses.releases import external_image_refs
from portal import ocispec
from portal.cache import shared_cache
from portal.lru import LRU
from registries.models import ExternalRegistry

PROXY_HOST_RE = re.compile(r"^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?:(?:__|:)\d{1,5})?$")
logger = logging.getLogger(__name__)


class NameInvalid(Exception):
    """Not a repository name by the OCI grammar."""


class NameUnknown(Exception):
    """No such upstream for this app: the host is not one of its team's registries."""


class Denied(Exception):
    """The upstream exists but the app does not allow this repository."""


@dataclass(frozen=True)
class ProxyName:
    app_slug: str
    host: str  # host[:port], lower case
    path: str  # repository path as the client wrote it


@dataclass(frozen=True)
class Upstream:
    registry: ExternalRegistry
    repository: str  # the repository on the upstream registry


def validate_name(name: str) -> None:
    if not ocispec.is_repository_name(name):
        raise NameInvalid(name)


def parse_proxy_name(name: str) -> ProxyName:
    """Split `proxy/<app>/<host>/<path>`; raises NameInvalid or NameUnknown."""
    parts = name.split("/")
    if len(parts) < 4 or parts[0] != "proxy" or not PROXY_HOST_RE.match(parts[2]):
        # The host part may hold a ":" the grammar refuses; check everything else.
        raise NameUnknown(name)
    validate_name("/".join(parts[:2] + parts[3:]))
    host = parts[2].replace("__", ":", 1)
    return ProxyName(app_slug=parts[1], host=host, path="/".join(parts[3:]))


def _endpoint_parts(endpoint: str) -> tuple[str, str]:
    """(host[:port], prefix) of a stored endpoint."""
    bare = endpoint.removeprefix("http://").removeprefix("https://")
    host, _, prefix = bare.partition("/")
    return host.lower(), prefix.strip("/")


def app_registries(app: App):
    """The team's registries that serve this app (all apps, or this one named)."""
    return ExternalRegistry.objects.filter(team_id=app.team_id).filter(Q(all_apps=True) | Q(apps=app)).distinct()


def resolve_upstream(app: App, proxy: ProxyName, registries: tuple[ExternalRegistry, ...] | None = None) -> Upstream:
    """The registry (longest matching prefix wins) and upstream repository for a proxy name;
    `registries` are the app's (app_registries) when the caller already has them. Whether a
    license may pull it is route_pull's question."""
    host = proxy.host
    docker_hub = host in ocispec.DOCKER_HUB_HOSTS
    best: tuple[int, ExternalRegistry] | None = None
    for registry in registries if registries is not None else app_registries(app):
        reg_host, prefix = _endpoint_parts(registry.endpoint)
        if reg_host != host and not (docker_hub and reg_host in ocispec.DOCKER_HUB_HOSTS):
            continue
        if prefix and not (proxy.path == prefix or proxy.path.startswith(prefix + "/")):
            continue
        if best is None or len(prefix) > best[0]:
            best = (len(prefix), registry)
    if best is None:
        raise NameUnknown(f"{host}/{proxy.path}")
    repository = proxy.path
    if docker_hub:
        repository = ocispec.docker_hub_repository(repository)
    return Upstream(registry=best[1], repository=repository)


def route_pull(routes: AppRoutes, proxy: ProxyName, channel_id: int | None) -> Upstream:
    """Where a license following `channel_id` of the routes' app pulls `proxy` from. The one
    decision of the token service and the proxy: a repository is pulled only when an image
    of a release promoted to the license's channel lives there, or a repository rule of the
    app names it; else Denied, its message naming the fix. NameUnknown: no registry of the
    app serves that host and path."""
    upstream = resolve_upstream(routes.app, proxy, routes.registries)
    full = f"{ocispec.canonical_host(proxy.host)}/{upstream.repository}"
    channel = routes.channels.get(channel_id) if channel_id is not None else None
    if channel is not None and full in channel.repositories:
        return upstream
    if rules_allow(routes.app.repository_rules, full):
        return upstream
    where = f"channel {channel.name}" if channel is not None else "the license's channel"
    raise Denied(
        f"{full} is not in any release promoted to {where} of app {routes.app.slug}, nor in the app's "
        "repository rules; list it in a release's images: or add a rule in the app's Repository access"
    )


def rules_allow(rules: list[str] | None, full: str) -> bool:
    """Whether a rule names `host/repository`: `host/repo` exactly, or `host/prefix/*` for
    everything below. No rules allow nothing."""
    for rule in rules or []:
        if rule.endswith("/*"):
            if full.startswith(rule[:-1]):
                return True
        elif full == rule:
            return True
    return False


# --- the proxy's view of apps, registries and channels, kept in each process --------------
# Every manifest and blob request needs the app, its registries and what its channels may
# pull; asking the database each time cost the proxy ~1.5 ms per request. Each process keeps
# them for ROUTES_CACHE_SECONDS, and drops them at once when any process saves or deletes an
# app, a registry, a channel or a promotion, or creates a release: that bumps a version in
# the shared cache, which every look-up compares (one Redis GET). A license's channel is not
# kept here: it comes with the license (licenses.services.license_state).

ROUTES_CACHE_SECONDS = 5.0
ROUTES_CACHE_ENTRIES = 1000
ROUTES_VERSION_KEY = "proxy-routes-version"


@dataclass(frozen=True)
class ChannelAccess:
    name: str
    repositories: frozenset[str]  # host/repository of the images of every release ever promoted to it


@dataclass(frozen=True)
class AppRoutes:
    app: App
    registries: tuple[ExternalRegistry, ...]
    channels: dict[int, ChannelAccess] = field(default_factory=dict)  # by channel id


_routes: LRU[str, tuple[float, str, AppRoutes | None]] = LRU(ROUTES_CACHE_ENTRIES)  # slug -> (expiry, version, routes)


def _routes_version() -> str | None:
    """The shared version, or None when the shared cache is unreachable (then nothing is kept)."""

    try:
        cache = shared_cache()
        version = cache.get(ROUTES_VERSION_KEY)
        if version is None:
            cache.add(ROUTES_VERSION_KEY, secrets.token_hex(8), timeout=None)
            version = cache.get(ROUTES_VERSION_KEY)
        return version
    except Exception:  # the shared cache is down: ask the database every time
        return None


def app_routes(slug: str) -> AppRoutes | None:
    """The app with this slug and the registries serving it (None: no such app)."""
    version = _routes_version()
    now = time.monotonic()
    kept = _routes.get(slug)
    if version is not None and kept is not None and kept[0] > now and kept[1] == version:
        return kept[2]
    app = App.objects.filter(slug=slug).first()
    routes = _load_routes(app) if app is not None else None
    if version is not None:
        _routes[slug] = (now + ROUTES_CACHE_SECONDS, version, routes)
    return routes


def _load_routes(app: App) -> AppRoutes:
    refs = external_image_refs(app.pk)
    channels = {
        pk: ChannelAccess(name=name, repositories=frozenset(refs.get(pk, ())))
        for pk, name in app.channels.values_list("pk", "name")
    }
    return AppRoutes(app=app, registries=tuple(app_registries(app)), channels=channels)


def routes_changed(**kwargs) -> None:
    """An app or registry was saved or deleted: drop what this process keeps now, and once the
    change is committed (before that, another process would reload the old rows under the
    new version) tell every process through the shared version."""
    _routes.clear()
    transaction.on_commit(_publish_change)


def _publish_change() -> None:

    _routes.clear()
    try:
        shared_cache().set(ROUTES_VERSION_KEY, secrets.token_hex(8), timeout=None)
    except Exception:
        logger.warning("shared cache unavailable; other processes see the change within %ss", ROUTES_CACHE_SECONDS)


def connect_signals() -> None:
    # A release's images never change once created; what a channel may pull changes when a
    # release is promoted to it (or a promotion, release or channel is deleted).
    for model in (App, ExternalRegistry, Channel, Promotion, Release):
        post_save.connect(routes_changed, sender=model, dispatch_uid=f"routes-save-{model.__name__}")
        post_delete.connect(routes_changed, sender=model, dispatch_uid=f"routes-delete-{model.__name__}")
    m2m_changed.connect(routes_changed, sender=ExternalRegistry.apps.through, dispatch_uid="routes-apps")
    signals.release_created.connect(routes_changed, dispatch_uid="routes-release-created")
    signals.release_promoted.connect(routes_changed, dispatch_uid="routes-release-promoted")
