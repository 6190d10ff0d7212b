"""Existing apps get the default channels and their licenses follow `stable`; an app that
relied on "no repository rules = everything" gets an explicit `host/*` rule per registry
serving it, because pulls are now denied unless a release or a rule names the repository."""

from django.db import migrations
from django.db.models import Q

DEFAULT_CHANNELS = ("stable", "beta", "unstable")
DOCKER_HUB_HOSTS = {"index.docker.io", "docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


def _wildcard(endpoint: str) -> str:
    bare = endpoint.removeprefix("http://").removeprefix("https://")
    host, _, prefix = bare.partition("/")
    host = host.lower()
    if host in DOCKER_HUB_HOSTS:
        host = "index.docker.io"  # ocispec.canonical_host
    prefix = prefix.strip("/")
    return f"{host}/{prefix}/*" if prefix else f"{host}/*"


def forwards(apps, schema_editor):
    App = apps.get_model("licenses", "App")
    Channel = apps.get_model("licenses", "Channel")
    License = apps.get_model("licenses", "License")
    ExternalRegistry = apps.get_model("registries", "ExternalRegistry")
    for app in App.objects.all():
        channels = {name: Channel.objects.create(app=app, name=name) for name in DEFAULT_CHANNELS}
        License.objects.filter(app=app).update(channel=channels["stable"])
        if not app.repository_rules:
            registries = ExternalRegistry.objects.filter(team_id=app.team_id).filter(Q(all_apps=True) | Q(apps=app))
            rules = sorted({_wildcard(r.endpoint) for r in registries.distinct()})
            if rules:
                app.repository_rules = rules
                app.save(update_fields=["repository_rules"])


class Migration(migrations.Migration):
    dependencies = [
        ("licenses", "0004_releases_channels"),
        ("registries", "0002_private_images"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
