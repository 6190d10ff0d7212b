"""How a license's customer pulls: a proxy line per repository it may pull (its channel's
released images and the app's rules), and the images pushed to the portal's private
registry. The license page shows them."""

from __future__ import annotations

from licenses.models import App
from licenses.releases import external_image_refs
from licenses.selectors import app_registries
from portal import ocispec
from registries.models import PrivateTag


def private_image_lines(app: App, registry_host: str, limit: int = 10) -> list[str]:
    """`docker pull` references for images pushed to the portal's private registry."""
    tags = PrivateTag.objects.filter(image__app=app).select_related("image").order_by("-pushed_at")[:limit]
    return [f"{registry_host}/{t.image.repository}:{t.tag}" for t in tags]


def proxy_image_name(proxy_host: str, app_slug: str, host: str, repository: str) -> str:
    """Where a customer pulls `host/repository` through the proxy (a port as `host__port`:
    clients refuse a `:` inside a path)."""
    return f"{proxy_host}/proxy/{app_slug}/{host.replace(':', '__', 1)}/{repository}"


def pull_examples(app: App, proxy_host: str, channel_id: int | None = None) -> list[dict]:
    """One `docker pull` line per repository a license on `channel_id` may pull through each
    registry serving the app: the images of the releases promoted to that channel, then the
    app's rules (a `/*` rule as `<image>`). The proxy picks a registry by host and prefix."""
    released = sorted(external_image_refs(app.pk).get(channel_id, ())) if channel_id is not None else []
    rules = app.repository_rules or []
    examples = []
    for registry in app_registries(app).order_by("name"):
        bare = registry.endpoint.removeprefix("http://").removeprefix("https://")
        host, _, prefix = bare.partition("/")
        host = ocispec.canonical_host(host.lower())
        base = f"{host}/{prefix.strip('/')}".rstrip("/")
        served = [ref for ref in dict.fromkeys(released + rules) if (ref + "/").startswith(base + "/")]
        paths = [p if not p.endswith("/*") else p[:-1] + "<image>" for p in served]
        images = [f"{proxy_image_name(proxy_host, app.slug, *p.split('/', 1))}:<tag>" for p in paths]
        examples.append({"registry": registry, "images": images})
    return examples
