"""The install kit: a release of an app made ready for one license's cluster, as a .tar.gz a
customer unpacks and applies with `kubectl apply -k .`, no hand edits.

    <app>-install-kit-<sequence>/
      README.md              what is inside, how to apply it
      kustomization.yaml     resources, `images:` (private external images → the proxy),
                             `patches:` (imagePullSecrets on every workload's pod template)
      <secret-name>.yaml     the kubernetes.io/dockerconfigjson Secret: the app's namespace
                             (none written: where kubectl applies) and each additionalNamespaces entry
      manifests/…            the vendor's manifests, byte for byte (the settings file left out)

An image is rewritten when it is **private external**: listed with a registry's name as its
source, unless resolving found it public. `public` images and the portal's own registry
(`replicated`) stay as written: the first need no credentials, the second already has them in
the Secret; except that when the team has a default custom registry domain, the second move
there (the Secret names that host, and the customer's cluster never contacts the portal's own
registry host). Kustomize matches `images:` names literally, so each image gets one entry per
spelling the manifests use (`redis`, `docker.io/library/redis`, …).

The kit is built by pure functions (`KitSpec` → files → tar.gz bytes); `license_kit` reads the
rows and `download` is the one answer every door (customer, page, API) gives.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
from dataclasses import dataclass
from datetime import datetime

import yaml
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.views.decorators.debug import sensitive_variables

from accounts import customer_hosts
from delivery import pullsecret
from delivery.selectors import proxy_image_name
from licenses import releases
from licenses.imagerefs import parse_reference
from licenses.models import ImageSource, License, Release, Visibility
from portal_cli import kitfiles
from portal_cli.kitfiles import split_manifests

# A Secret's name is a DNS-1123 subdomain: lowercase alphanumerics, `-` and `.`, at most 253.
SECRET_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")
SECRET_NAME_MAX = 253
# Workloads of current API versions and where their pod spec sits; kustomize merges each
# patch's imagePullSecrets by name into what the manifest already lists.
# (Selectors are anchored regular expressions; each patch is one pass over every resource.)
WORKLOAD_TARGETS = (
    (
        {"group": "apps|batch", "version": "v1", "kind": "Deployment|StatefulSet|DaemonSet|ReplicaSet|Job"},
        ("spec", "template"),
    ),
    ({"group": "batch", "version": "v1", "kind": "CronJob"}, ("spec", "jobTemplate", "spec", "template")),
    ({"version": "v1", "kind": "Pod"}, ()),  # no group: an empty one would match any, and only core has Pods
)
KIT_PATH = "/customer/v1/install-kit.tar.gz"


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    pass


class _Block(str):
    """A multi-line string written as a `|` block (a patch reads as YAML, not as one quoted line)."""


_Dumper.add_representer(
    _Block, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", str(text), style="|")
)


class NoRelease(Exception):
    """The license's channel has no such release; the message says which channel."""


@dataclass(frozen=True)
class KitImage:
    source: str
    host: str  # canonical, `host:port` for a port
    repository: str
    digest: str = ""  # as listed
    visibility: str = ""

    @property
    def private_external(self) -> bool:
        """Listed from one of the vendor's registries and not found public (unresolved counts as private)."""
        return self.source not in (ImageSource.PUBLIC, ImageSource.PRIVATE) and self.visibility != Visibility.PUBLIC


@dataclass(frozen=True)
class KitSpec:
    app_slug: str
    app_name: str
    channel: str
    sequence: int
    version: str
    files: dict[str, str]  # the release's files, path → text
    images: list[KitImage]
    additional_namespaces: list[str]
    license_id: str
    proxy_host: str
    registry_host: str
    secret_name: str
    created_at: datetime | None = None  # the files' time in the archive (the same kit, the same bytes)
    kit_url: str = ""  # where customers download kits, for the README

    @property
    def folder(self) -> str:
        return f"{self.app_slug}-install-kit-{self.sequence}"


# --- image references ----------------------------------------------------------------------


def location(name: str) -> tuple[str, str]:
    """(host, repository) a name pulls from, as ReleaseImage stores them (`redis` is
    index.docker.io/library/redis); ("", "") for what is not an image name."""
    ref = parse_reference(name)
    return ref.location if ref is not None else ("", "")


def new_name(spec: KitSpec, image: KitImage) -> str:
    """Where the kit sends an image, "" to leave it as written: a private external image through
    the proxy; one of the private registry under the host the customer is given for it (the
    team's custom registry domain) when the release names another (the portal's own)."""
    if image.private_external:
        return proxy_image_name(spec.proxy_host, spec.app_slug, image.host, image.repository)
    if image.source == ImageSource.PRIVATE and image.host != spec.registry_host:
        return f"{spec.registry_host}/{image.repository}"
    return ""


def image_entries(spec: KitSpec, names: set[str]) -> list[dict]:
    """Kustomize `images:` entries sending each image to its new name, one per spelling of it in
    `names`, the names the manifests use (portal_cli/kitfiles.py)."""
    spellings: dict[tuple[str, str], set[str]] = {}
    for name in names:
        spellings.setdefault(location(name), set()).add(name)
    listings = ((image, new_name(spec, image)) for image in spec.images)
    return kitfiles.image_entries(
        ((image.host, image.repository), name, spellings.get((image.host, image.repository), ()), image.digest)
        for image, name in listings
        if name
    )


# --- the files -----------------------------------------------------------------------------


def workload_patches(secret_name: str) -> list[dict]:
    """One strategic-merge patch per workload target adding the pull secret to its pod spec."""
    patches = []
    for target, path in WORKLOAD_TARGETS:
        body: dict = {"imagePullSecrets": [{"name": secret_name}]}
        for key in reversed((*path, "spec")):
            body = {key: body}
        group, kind = target.get("group", "").split("|")[0], target["kind"].split("|")[0]
        apiversion = f"{group}/{target['version']}" if group else target["version"]
        document = {"apiVersion": apiversion, "kind": kind, "metadata": {"name": "any"}, **body}
        # The patch's own name and kind are placeholders: the target picks the resources.
        patches.append({"target": dict(target), "patch": _Block(_dump(document))})
    return patches


@sensitive_variables("spec")
def secret_documents(spec: KitSpec) -> list[dict]:
    """The pull secret where kubectl applies (no namespace) and in each additional namespace.
    `default` is left out of those: kustomize takes no namespace and `default` for the same
    place and refuses the second Secret."""
    namespaces = [None, *(ns for ns in spec.additional_namespaces if ns != "default")]
    return [
        pullsecret.secret_document(
            spec.license_id,
            name=spec.secret_name,
            app_slug=spec.app_slug,
            namespace=namespace,
            proxy_host=spec.proxy_host,
            registry_host=spec.registry_host,
        )
        for namespace in namespaces
    ]


def kustomization(spec: KitSpec, manifest_paths: list[str], names: set[str]) -> dict:
    document: dict = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [f"{spec.secret_name}.yaml", *(f"manifests/{p}" for p in manifest_paths)],
    }
    entries = image_entries(spec, names)
    if entries:
        document["images"] = entries
    document["patches"] = workload_patches(spec.secret_name)
    return document


@sensitive_variables("spec")
def build_files(spec: KitSpec) -> dict[str, str]:
    """The kit's files, path (inside its folder) → text."""
    manifests, names = split_manifests(spec.files)
    kustom = kustomization(spec, sorted(manifests), names)
    files = {
        "README.md": readme(spec, kustom.get("images", [])),
        "kustomization.yaml": _header(spec) + _dump(kustom),
        f"{spec.secret_name}.yaml": (
            f"# Image pull secret for {spec.app_slug}: your license ID for {spec.proxy_host} and "
            f"{spec.registry_host}. Keep it private.\n" + _dump_all(secret_documents(spec))
        ),
    }
    files.update((f"manifests/{path}", text) for path, text in manifests.items())
    return files


def _header(spec: KitSpec) -> str:
    release = f"release {spec.sequence}" + (f" ({_one_line(spec.version)})" if spec.version else "")
    return (
        f"# {_one_line(spec.app_name)}, {release} of channel {spec.channel}, made for one license.\n"
        "# Apply with: kubectl apply -k .   (preview: kubectl kustomize .)\n"
    )


def readme(spec: KitSpec, entries: list[dict]) -> str:
    release = f"release {spec.sequence}" + (f" (version {_one_line(spec.version)})" if spec.version else "")
    namespaces = ", ".join(f"`{ns}`" for ns in spec.additional_namespaces if ns != "default")
    rewritten = (
        "\n".join(f"- `{e['name']}` → `{e['newName']}`" for e in entries) or "- none: every image stays as written"
    )
    return f"""# Install kit: {_one_line(spec.app_name)}

{release.capitalize()} of the `{spec.channel}` channel, made for your license.

## Install

    kubectl apply -k .

That applies to the namespace your kubectl context uses (pick one first with
`kubectl config set-context --current --namespace=NAME`). To see what would be applied:

    kubectl kustomize .

## What is inside

- `manifests/`: the vendor's Kubernetes manifests, unchanged.
- `kustomization.yaml`: sends the vendor's private images through `{spec.proxy_host}`
  (the `images:` list) and adds `imagePullSecrets: [{{name: {spec.secret_name}}}]` to the pod
  spec of every Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob and Pod.
- `{spec.secret_name}.yaml`: the image pull secret (type `kubernetes.io/dockerconfigjson`) for
  `{spec.proxy_host}` and `{spec.registry_host}`, in your namespace{f" and in {namespaces}" if namespaces else ""}.
  It holds your license ID: keep this folder private.

## Images the kit sends elsewhere

{rewritten}

Private images of the vendor's registries go through the proxy (`{spec.proxy_host}`); public
images are pulled from where they are; images of the vendor's private registry are pulled from
`{spec.registry_host}` with the same secret.

## Later releases

Download a new kit for each release, with your license ID as user name and password
(`?sequence=N` for an earlier release of your channel):

    curl -fsSL -u "$LICENSE_ID:$LICENSE_ID" -o kit.tar.gz {spec.kit_url or "<portal>" + KIT_PATH}
"""


def _dump(document: dict) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=2**30)


def _dump_all(documents: list[dict]) -> str:
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=2**30)


def _one_line(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


# --- the archive ---------------------------------------------------------------------------


def tarball(spec: KitSpec, files: dict[str, str]) -> bytes:
    """The files under the kit's folder as a .tar.gz: sorted, owned by root, dated with the
    release, the Secret readable by its owner only."""
    mtime = int(spec.created_at.timestamp()) if spec.created_at else 0
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=mtime, compresslevel=6) as compressed:
        with tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive:
            directories: set[str] = set()
            for path in sorted(files):
                parts = path.split("/")[:-1]
                for depth in range(len(parts) + 1):
                    folder = "/".join([spec.folder, *parts[:depth]])
                    if folder not in directories:
                        directories.add(folder)
                        archive.addfile(_member(folder, 0, mtime, tarfile.DIRTYPE, 0o755))
                data = files[path].encode("utf-8")
                mode = 0o600 if path == f"{spec.secret_name}.yaml" else 0o644
                archive.addfile(
                    _member(f"{spec.folder}/{path}", len(data), mtime, tarfile.REGTYPE, mode), io.BytesIO(data)
                )
    return buffer.getvalue()


def _member(name: str, size: int, mtime: int, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.type, info.mode = size, mtime, kind, mode
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


@sensitive_variables("spec")
def build(spec: KitSpec) -> bytes:
    return tarball(spec, build_files(spec))


# --- from the rows: the license's release, the parameters, the download --------------------


def validate_secret_name(value: str | None) -> str | None:
    """The name, None when none was given; a ValidationError naming `secret_name` otherwise."""
    if value is None or value == "":
        return None
    if len(value) > SECRET_NAME_MAX or not SECRET_NAME_RE.fullmatch(value):
        raise ValidationError(
            {
                "secret_name": ValidationError(
                    "A Secret's name is a DNS-1123 subdomain: at most 253 lowercase letters a–z, digits, "
                    "hyphens and dots, starting and ending with a letter or digit (e.g. replicatedregistrykey).",
                    code="invalid_secret_name",
                )
            }
        )
    return value


def validate_sequence(value: str | None) -> int | None:
    """A release number, None when none was given; a ValidationError naming `sequence` otherwise."""
    if value is None or value == "":
        return None
    if not value.isascii() or not value.isdigit() or not 0 < int(value) < 2**31:
        raise ValidationError(
            {"sequence": ValidationError("A release sequence is a whole number: 1, 2, …", code="invalid_sequence")}
        )
    return int(value)


def kit_options(query) -> tuple[int | None, str | None]:
    """(sequence, secret_name) from a request's query, the same at every door (customer,
    page, API); one ValidationError naming every bad parameter."""
    errors: dict[str, list] = {}
    sequence = secret_name = None
    try:
        sequence = validate_sequence(query.get("sequence", "").strip())
    except ValidationError as e:
        errors.update(e.error_dict)
    try:
        secret_name = validate_secret_name(query.get("secret_name", "").strip())
    except ValidationError as e:
        errors.update(e.error_dict)
    if errors:
        raise ValidationError(errors)
    return sequence, secret_name


def license_release(license: License, sequence: int | None) -> Release:
    """The release of the license's channel the kit is made of (its current one, or
    `sequence` if it was ever promoted there); NoRelease says why not."""
    channel = license.channel
    release = releases.channel_release(channel, sequence)
    if release is not None:
        return release
    if sequence is None:
        raise NoRelease(
            f"No release of {license.app.slug} has been promoted to channel “{channel.name}” yet, "
            "so there is nothing to install; the vendor promotes one first."
        )
    raise NoRelease(f"Release {sequence} of {license.app.slug} was never promoted to channel “{channel.name}”.")


@sensitive_variables("license_id")
def license_kit(
    license: License,
    license_id: str,
    *,
    proxy_host: str,
    registry_host: str,
    sequence: int | None = None,
    secret_name: str | None = None,
    kit_url: str = "",
) -> tuple[str, bytes]:
    """(file name, .tar.gz bytes) of the license's kit; raises NoRelease."""
    release = license_release(license, sequence)
    spec = KitSpec(
        app_slug=license.app.slug,
        app_name=license.app.name,
        channel=license.channel.name,
        sequence=release.sequence,
        version=release.version,
        files=dict(release.files.values_list("path", "content")),
        images=[
            KitImage(source=i.source, host=i.host, repository=i.repository, digest=i.digest, visibility=i.visibility)
            for i in release.images.all()
        ],
        additional_namespaces=list(release.additional_namespaces or []),
        license_id=license_id,
        proxy_host=proxy_host,
        registry_host=registry_host,
        secret_name=secret_name or pullsecret.secret_name(license),
        created_at=release.created_at,
        kit_url=kit_url,
    )
    return f"{spec.folder}.tar.gz", build(spec)


@sensitive_variables("license_id")
def download(request, license: License, license_id: str, *, sequence: int | None, secret_name: str | None):
    """The kit as a download for the hosts the license's customers are shown (the team's default
    custom domains, else this portal's); never cached (it holds the license ID). Raises NoRelease."""
    team_id = license.app.team_id
    name, data = license_kit(
        license,
        license_id,
        proxy_host=customer_hosts.proxy_host(team_id, request),
        registry_host=customer_hosts.registry_host(team_id),
        sequence=sequence,
        secret_name=secret_name,
        kit_url=customer_hosts.customer_url(team_id, KIT_PATH, request),
    )
    response = HttpResponse(data, content_type="application/gzip")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response
