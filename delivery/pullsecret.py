"""A customer's Kubernetes image pull secret: one license ID for the proxy and the private registry.

The Secret is `kubernetes.io/dockerconfigjson`, named `<app-slug>-registry`; its
`.dockerconfigjson` is the same JSON docker, podman, skopeo (`--authfile`) and containerd
read, with one entry per host:

    {"auths": {"<proxy-host>":    {"username": "LICENSE_ID", "password": "<id>", "auth": "<b64>"},
               "<registry-host>": {"username": "LICENSE_ID", "password": "<id>", "auth": "<b64>"}}}

where `auth` is base64("LICENSE_ID:<id>"). The user name is a fixed word: the portal reads
only the password, and a fixed word keeps the customer's email out of their cluster.
"""

from __future__ import annotations

import base64
import json
import re

import yaml
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.views.decorators.debug import sensitive_variables

from accounts import customer_hosts

USERNAME = "LICENSE_ID"
SECRET_TYPE = "kubernetes.io/dockerconfigjson"
# A Kubernetes namespace name is an RFC 1123 (DNS-1123) label.
NAMESPACE_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def validate_namespace(namespace: str | None) -> str | None:
    """The namespace, or None when none was given; a ValidationError naming `namespace` otherwise."""
    if namespace is None or namespace == "":
        return None
    if not NAMESPACE_RE.fullmatch(namespace):
        raise ValidationError(
            {
                "namespace": ValidationError(
                    "A namespace is a DNS-1123 label: at most 63 lowercase letters a–z, digits and hyphens, "
                    "starting and ending with a letter or digit.",
                    code="invalid_namespace",
                )
            }
        )
    return namespace


def secret_name(license) -> str:
    return f"{license.app.slug}-registry"


@sensitive_variables("license_id", "auth", "entry", "config")
def docker_config(license_id: str, hosts: list[str]) -> dict:
    """The dockerconfigjson document: the same license ID for every host."""
    auth = base64.b64encode(f"{USERNAME}:{license_id}".encode()).decode()
    entry = {"username": USERNAME, "password": license_id, "auth": auth}
    return {"auths": {host: dict(entry) for host in dict.fromkeys(hosts)}}


@sensitive_variables("license_id", "config", "encoded")
def secret_document(
    license_id: str, *, name: str, app_slug: str, namespace: str | None, proxy_host: str, registry_host: str
) -> dict:
    """The Secret as a document (the pull secret download and the install kit write it)."""
    config = docker_config(license_id, [proxy_host, registry_host])
    encoded = base64.b64encode(json.dumps(config, separators=(",", ":")).encode()).decode()
    metadata: dict = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    metadata["labels"] = {"app.kubernetes.io/part-of": app_slug}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": SECRET_TYPE,
        "data": {".dockerconfigjson": encoded},
    }


@sensitive_variables("license_id")
def render_pull_secret(
    license, license_id: str, *, namespace: str | None = None, proxy_host: str, registry_host: str
) -> str:
    """The Secret YAML for `license`, with auths for `proxy_host` and `registry_host`."""
    namespace = validate_namespace(namespace)
    document = secret_document(
        license_id,
        name=secret_name(license),
        app_slug=license.app.slug,
        namespace=namespace,
        proxy_host=proxy_host,
        registry_host=registry_host,
    )
    header = (
        f"# Image pull secret for {_one_line(license.app.name)}: pulls through {proxy_host} (proxy)\n"
        f"# and from {registry_host} (private registry) with your license ID. Keep it private.\n"
        f"#   kubectl apply -f {secret_name(license)}.yaml\n"
        f"# then name it in your pods: imagePullSecrets: [{{name: {secret_name(license)}}}]\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=2**31)


def file_name(license) -> str:
    return f"{secret_name(license)}.yaml"


@sensitive_variables("license_id")
def download(request, license, license_id: str, *, namespace: str | None) -> HttpResponse:
    """The pull secret as a YAML download for the hosts the license's customers are shown (the
    team's default custom domains, else this portal's); never cached (it holds the ID)."""
    team_id = license.app.team_id
    text = render_pull_secret(
        license,
        license_id,
        namespace=namespace,
        proxy_host=customer_hosts.proxy_host(team_id, request),
        registry_host=customer_hosts.registry_host(team_id),
    )
    response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{file_name(license)}"'
    response["Cache-Control"] = "no-store"
    return response


def _one_line(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)
