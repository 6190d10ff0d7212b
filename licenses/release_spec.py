"""The app's settings in a release: the `images:` list (where each image comes from) and
`additionalNamespaces`. One YAML document in the release's files holds them: a mapping
with `images:` or `additionalNamespaces:` and no `kind`.

    images:
    - source: quay-prod          # a registry's name in this team
      name: acme/api
      tag: 1.4.2                 # or digest: sha256:…, or both
    - source: public             # anonymous; a name without a host is Docker Hub
      name: redis
      tag: 7.2
    - source: replicated         # this portal's private registry: <registry>/<app>/<name>
      name: worker
    additionalNamespaces: [monitoring]
"""

from __future__ import annotations

from dataclasses import dataclass, field

from licenses.findings import Finding
from licenses.models import ImageSource
from licenses.yamldocs import LineDict, YAMLSyntaxError, load_documents
from portal import ocispec
from portal_cli.kitfiles import is_settings  # the one rule, shared with the CLI

NAMESPACE_MAX = 63


@dataclass(frozen=True)
class ImageSpec:
    source: str
    name: str
    tag: str
    digest: str
    file: str
    line: int | None


@dataclass
class Settings:
    file: str = ""  # where they were found ("" when the release has none)
    images: list[ImageSpec] = field(default_factory=list)
    additional_namespaces: list[str] = field(default_factory=list)


def split_host(name: str) -> tuple[str, str]:
    """("host", "path") when the name's first part is a registry host (it has a `.` or `:` or
    is `localhost`, Docker's rule), else ("", name)."""
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first.lower(), rest
    return "", name


def read_settings(files: dict[str, str], sources: set[str]) -> tuple[Settings, list[Finding]]:
    """The release's settings and the findings about them; `sources` are the team's registry
    names. A file that is not YAML is left to the lint's `yaml-syntax`."""
    findings: list[Finding] = []
    found: list[tuple[str, LineDict]] = []
    for path, text in files.items():
        if "images" not in text and "additionalNamespaces" not in text:
            continue
        try:
            documents = load_documents(text, strings=True)
        except YAMLSyntaxError:
            continue
        found += [(path, doc.data) for doc in documents if is_settings(doc.data)]
    settings = Settings()
    if not found:
        return settings, findings
    for path, data in found[1:]:
        findings.append(
            Finding.error("settings-twice", path, data.line, f"the app's settings are already in {found[0][0]}")
        )
    path, data = found[0]
    settings.file = path
    images = data.get("images") or []
    if not isinstance(images, list):
        findings.append(Finding.error("invalid-image", path, data.line, "`images` must be a list"))
        images = []
    for number, entry in enumerate(images, start=1):
        image, problems = _read_image(entry, number, path, getattr(entry, "line", data.line), sources)
        findings += problems
        if image is not None:
            settings.images.append(image)
    namespaces = data.get("additionalNamespaces") or []
    if not isinstance(namespaces, list) or not all(isinstance(n, str) for n in namespaces):
        findings.append(
            Finding.error("invalid-namespace", path, data.line, "`additionalNamespaces` must be a list of names")
        )
    else:
        for namespace in namespaces:
            if not _is_namespace(namespace):
                findings.append(
                    Finding.error(
                        "invalid-namespace", path, data.line, f"“{namespace}” is not a Kubernetes namespace name"
                    )
                )
            elif namespace not in settings.additional_namespaces:
                settings.additional_namespaces.append(namespace)
    return settings, findings


def _is_namespace(name: str) -> bool:
    return (
        0 < len(name) <= NAMESPACE_MAX
        and name.replace("-", "a").isalnum()
        and name == name.lower()
        and (name[0].isalnum() and name[-1].isalnum())
    )


def _read_image(
    entry: object, number: int, path: str, line: int, sources: set[str]
) -> tuple[ImageSpec | None, list[Finding]]:
    where = f"images[{number}]"
    if not isinstance(entry, dict):
        return None, [Finding.error("invalid-image", path, line, f"{where} must be a mapping with source and name")]
    source = str(entry.get("source") or "").strip()
    name = str(entry.get("name") or "").strip()
    tag = str(entry.get("tag") or "").strip()
    digest = str(entry.get("digest") or "").strip()
    problems = []
    if not source:
        problems.append(Finding.error("invalid-image", path, line, f"{where} has no source"))
    elif source not in sources and source not in (ImageSource.PUBLIC, ImageSource.PRIVATE):
        known = ", ".join(sorted(sources)) or "no registries yet"
        problems.append(
            Finding.error(
                "unknown-source", path, line,
                f"{where} source “{source}” is not a registry of this team ({known}), `public` or `replicated`",
            )
        )  # fmt: skip
    host, repository = split_host(name) if source == ImageSource.PUBLIC else ("", name)
    if not name:
        problems.append(Finding.error("invalid-image", path, line, f"{where} has no name"))
    elif not ocispec.is_repository_name(repository):
        problems.append(Finding.error("invalid-image", path, line, f"{where} name “{name}” is not a repository name"))
    if tag and not ocispec.is_tag(tag):
        problems.append(Finding.error("invalid-image", path, line, f"{where} tag “{tag}” is not a valid tag"))
    if digest and not ocispec.is_sha256_digest(digest):
        problems.append(Finding.error("invalid-image", path, line, f"{where} digest must be sha256: and 64 hex digits"))
    if not tag and not digest:
        problems.append(Finding.error("invalid-image", path, line, f"{where} needs a tag, a digest or both"))
    if problems:
        return None, problems
    return ImageSpec(source=source, name=name, tag=tag, digest=digest, file=path, line=line), []
