"""The Kubernetes workloads of a release's manifests and their pod specs, with FILE:LINE.

Shared by the lint (which images run, in which namespace, under which apiVersion) and the
install kit (which pod templates get `imagePullSecrets`). Only the kinds below carry a pod
template the kit patches; a `List` (or any `…List` with `items`) is walked item by item.
Nothing here trusts the shape of a document: a wrong shape becomes a `problem`, never an
exception, and the walk only goes down fixed paths (plus a bounded depth of nested Lists)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from licenses.yamldocs import Document

# The apiVersion each workload kind is served under today; the install kit patches these.
CURRENT_API_VERSIONS: dict[str, str] = {
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "ReplicaSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
    "Pod": "v1",
}
WORKLOAD_KINDS: tuple[str, ...] = tuple(CURRENT_API_VERSIONS)

# Old apiVersions of the same kinds → the Kubernetes release that stopped serving them.
# Their pod templates are still read (their images are still pulled), but the kit leaves them alone.
DEPRECATED_API_VERSIONS: dict[str, dict[str, str]] = {
    "Deployment": {"extensions/v1beta1": "1.16", "apps/v1beta1": "1.16", "apps/v1beta2": "1.16"},
    "StatefulSet": {"apps/v1beta1": "1.16", "apps/v1beta2": "1.16"},
    "DaemonSet": {"extensions/v1beta1": "1.16", "apps/v1beta2": "1.16"},
    "ReplicaSet": {"extensions/v1beta1": "1.16", "apps/v1beta2": "1.16"},
    "CronJob": {"batch/v1beta1": "1.25", "batch/v2alpha1": "1.21"},
}

POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    **{kind: ("spec", "template", "spec") for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")},
}
CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")
MAX_LIST_DEPTH = 3  # a List inside a List inside a List; deeper ones are not walked
NAME_SHOWN = 80  # characters of a name or image shown in a message


def shorten(text: str, limit: int = NAME_SHOWN) -> str:
    """A vendor-given string cut for a message (a finding must stay one readable line)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class Workload:
    file: str
    line: int  # where the workload's mapping starts (the document, or the List item)
    kind: str
    api_version: str
    name: str
    namespace: str  # "" when metadata.namespace is unset: `kubectl apply` uses the current namespace
    document: dict  # the workload itself
    pod_spec: dict | None  # None when the path to it is missing or not mappings (see `problem`)
    pod_spec_path: str  # "spec.template.spec", "spec.jobTemplate.spec.template.spec" or "spec"
    problem: str = ""

    @property
    def current(self) -> bool:
        """Served under today's apiVersion (the install kit patches only these)."""
        return CURRENT_API_VERSIONS.get(self.kind) == self.api_version

    @property
    def removed_in(self) -> str:
        """The Kubernetes release that stopped serving this apiVersion ("" when current)."""
        return DEPRECATED_API_VERSIONS.get(self.kind, {}).get(self.api_version, "")

    @property
    def title(self) -> str:
        return f"{self.kind}/{shorten(self.name)}" if self.name else self.kind


@dataclass(frozen=True)
class Container:
    field: str  # containers, initContainers or ephemeralContainers
    index: int  # 0-based in its list; -1 when the list itself is malformed
    line: int
    name: str
    image: str  # "" when missing or not a string (see `problem`)
    pull_policy: str
    problem: str = ""

    @property
    def title(self) -> str:
        if self.index < 0:
            return self.field
        return f"{self.field}[{self.index}]" + (f" “{shorten(self.name)}”" if self.name else "")


def _is_workload(data: object) -> bool:
    if not isinstance(data, dict):
        return False
    kind, version = data.get("kind"), data.get("apiVersion")
    if not isinstance(kind, str) or not isinstance(version, str):
        return False
    return CURRENT_API_VERSIONS.get(kind) == version or version in DEPRECATED_API_VERSIONS.get(kind, {})


def _is_list(data: object) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("kind"), str)
        and data["kind"].endswith("List")
        and (isinstance(data.get("items"), list))
    )


def _workload(file: str, line: int, data: dict) -> Workload:
    kind, version = data["kind"], data["apiVersion"]
    metadata = data.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    namespace = metadata.get("namespace")
    namespace = str(namespace) if isinstance(namespace, (str, int, float)) and not isinstance(namespace, bool) else ""
    path = POD_SPEC_PATHS[kind]
    node: object = data
    problem = ""
    for depth, key in enumerate(path):
        node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            problem = f"{'.'.join(path[: depth + 1])} is missing or not a mapping"
            node = None
            break
    return Workload(
        file=file, line=getattr(data, "line", 0) or line, kind=kind, api_version=version,
        name=_text(metadata.get("name")), namespace=namespace, document=data,
        pod_spec=node if isinstance(node, dict) else None, pod_spec_path=".".join(path), problem=problem,
    )  # fmt: skip


def workloads(file: str, documents: Iterable[Document]) -> Iterator[Workload]:
    """Each workload of a file's documents (items of Lists included), in file order."""
    for document in documents:
        stack: list[tuple[object, int, int]] = [(document.data, document.line, 0)]
        while stack:
            data, line, depth = stack.pop()
            if _is_workload(data):
                yield _workload(file, line, data)  # type: ignore[arg-type]
            elif _is_list(data) and depth < MAX_LIST_DEPTH:
                items = data["items"]  # type: ignore[index]
                stack += [(item, getattr(item, "line", line), depth + 1) for item in reversed(items)]


def containers(workload: Workload) -> Iterator[Container]:
    """Each container of the workload's pod spec (init, regular, ephemeral), malformed ones
    with a `problem`."""
    spec = workload.pod_spec
    if spec is None:
        return
    spec_line = getattr(spec, "line", 0) or workload.line
    for field in CONTAINER_FIELDS:
        entries = spec.get(field)
        if entries is None:
            continue
        if not isinstance(entries, list):
            yield Container(field, -1, spec_line, "", "", "", problem="is not a list of containers")
            continue
        for index, entry in enumerate(entries):
            line = getattr(entry, "line", 0) or spec_line
            if not isinstance(entry, dict):
                yield Container(field, index, line, "", "", "", problem="is not a mapping")
                continue
            image = entry.get("image")
            image = image.strip() if isinstance(image, str) else image
            problem = ""
            if image is None or image == "":
                problem = "has no image"
            elif not isinstance(image, str):
                problem = "image is not a string"
            yield Container(
                field, index, line, _text(entry.get("name")), image if isinstance(image, str) else "",
                _text(entry.get("imagePullPolicy")), problem=problem,
            )  # fmt: skip
