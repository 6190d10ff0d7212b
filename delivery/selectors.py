"""How a license's customer pulls: one proxy line per registry serving the app, and the
images pushed to the portal's private registry. The license page shows them."""

from __future__ import annotations

from licenses.models import App
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


def pull_examples(app: App, proxy_host: str) -> list[dict]:
    """One `docker pull` line per registry serving the app (narrowed to the app's rules)."""
    examples = []
    rules = app.repository_rules or []
    for registry in app_registries(app).order_by("name"):
        bare = registry.endpoint.removeprefix("http://").removeprefix("https://")
        host, _, prefix = bare.partition("/")
        host = ocispec.canonical_host(host.lower())
        base = f"{host}/{prefix.strip('/')}".rstrip("/")
        if rules:
            # Only the rules this registry can serve (the proxy picks a registry by host and prefix).
            paths = [rule for rule in rules if rule.startswith(f"{host}/") and (rule + "/").startswith(base + "/")]
            paths = [p if not p.endswith("/*") else p[:-1] + "<image>" for p in paths]
        else:
            paths = [f"{base}/<image>"]
        images = [f"{proxy_image_name(proxy_host, app.slug, *p.split('/', 1))}:<tag>" for p in paths]
        examples.append({"registry": registry, "images": images})
    return examples
