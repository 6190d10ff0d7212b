"""How an install kit is made from a release's files, the rules both kits follow: the online
kit the portal builds (delivery/installkit.py) and the air-gap kit `portal airgap push --out`
writes from a bundle.

- The app's settings (a mapping with `images:` or `additionalNamespaces:` and no `kind`) are
  not applied: a file holding only settings is left out, a file mixing them with manifests is
  cut to its manifests.
- Kustomize matches `images:` names literally, so an image gets one entry per spelling the
  manifests use (`redis`, `docker.io/library/redis`, …), and a digest when every listing of
  the image pins the same one.

Pure (PyYAML only, no Django): shared by the portal and the `portal` CLI.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import yaml

SETTINGS_KEYS = ("images", "additionalNamespaces")
CONTAINER_KEYS = ("containers", "initContainers", "ephemeralContainers")

_Loader = getattr(yaml, "CBaseLoader", yaml.BaseLoader)


class ManifestSyntaxError(ValueError):
    """A file that does not parse as YAML, or uses anchors and aliases."""


def is_settings(data: object) -> bool:
    """The app's settings document, not a Kubernetes object."""
    return isinstance(data, dict) and "kind" not in data and any(key in data for key in SETTINGS_KEYS)


def split_reference(reference: str) -> tuple[str, str, str]:
    """(name, tag, digest) of an image reference as a manifest writes it."""
    name, _, digest = reference.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = ""
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, digest


def image_names(data: object, found: set[str]) -> None:
    """Add to `found` the name (no tag or digest) of every container image in a document,
    wherever its containers are (kustomize rewrites them anywhere, custom resources too)."""
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in CONTAINER_KEYS and isinstance(value, list):
                    for container in value:
                        image = container.get("image") if isinstance(container, dict) else None
                        if isinstance(image, str) and image.strip():
                            found.add(split_reference(image.strip())[0])
                if isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(item for item in node if isinstance(item, dict | list))


def documents(text: str) -> list[object]:
    """A file's non-empty documents, every scalar a string (libyaml's base loader). Anchors
    and aliases are refused, as the release lint refuses them on upload: an alias bomb costs
    nothing to load and everything to walk."""
    try:
        if "&" in text or "*" in text:
            for event in yaml.parse(text, Loader=_Loader):
                if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                    raise ManifestSyntaxError("anchors and aliases (& and *) are not allowed")
        return [data for data in yaml.load_all(text, Loader=_Loader) if data is not None]
    except (yaml.YAMLError, RecursionError) as e:
        raise ManifestSyntaxError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None


def split_manifests(files: dict[str, str]) -> tuple[dict[str, str], set[str]]:
    """The files to apply (path → text; the settings document left out) and every container
    image name they use. Files passed the lint on upload; one that no longer parses is kept
    as it is and kubectl names its error."""
    manifests: dict[str, str] = {}
    names: set[str] = set()
    for path, text in sorted(files.items()):
        if "image" not in text and "additionalNamespaces" not in text:
            manifests[path] = text  # no containers, no settings: nothing to read
            continue
        try:
            found = documents(text)
        except ManifestSyntaxError:
            manifests[path] = text
            continue
        settings = 0
        for data in found:
            if is_settings(data):
                settings += 1
            else:
                image_names(data, names)
        if not settings:
            manifests[path] = text
        elif settings < len(found):
            manifests[path] = without_settings(text)
    return manifests, names


def without_settings(text: str) -> str:
    """A file's text without its settings document (the app's settings sharing a file with
    manifests): cut at the `---` lines, each piece judged on its own."""
    pieces: list[list[str]] = [[]]
    for line in text.splitlines(keepends=True):
        if line.startswith("---") and (len(line) == 3 or line[3] in " \t\r\n"):
            pieces.append([])
        pieces[-1].append(line)
    kept = []
    for piece in pieces:
        chunk = "".join(piece)
        try:
            found = documents(chunk)
        except ManifestSyntaxError:
            found = []
        if not any(is_settings(data) for data in found):
            kept.append(chunk)
    return "".join(kept)


def image_entries(listings: Iterable[tuple[Hashable, str, Iterable[str], str]]) -> list[dict[str, str]]:
    """Kustomize `images:` entries from (image key, new name, spellings, digest as listed) per
    listing: images in key order, each with one entry per spelling (sorted) sending it to its
    new name, pinned to the digest when every listing of the image pins the same one. No
    spelling, no entry: each entry is one more pass of kustomize over every resource."""
    images: dict = {}
    for key, new_name, spellings, digest in listings:
        image = images.setdefault(key, {"new_name": new_name, "spellings": set(), "digests": set()})
        image["spellings"].update(spellings)
        image["digests"].add(digest)
    entries = []
    for key in sorted(images):
        image = images[key]
        digest = next(iter(image["digests"])) if len(image["digests"]) == 1 else ""
        for name in sorted(image["spellings"]):
            entry = {"name": name, "newName": image["new_name"]}
            if digest:
                entry["digest"] = digest
            entries.append(entry)
    return entries
