"""The release lint: one finding per line, `LEVEL RULE FILE[:LINE] message`; errors block a
release. Run on upload and standalone (API `…/releases/lint/`, `portal release lint`).
Every rule is described, with an example and the fix, in docs/lint.md."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from licenses.findings import ERROR, WARNING, Finding
from licenses.imagerefs import listed_location, parse_reference
from licenses.release_spec import Settings, is_settings, read_settings
from licenses.workloads import CURRENT_API_VERSIONS, Container, Workload, containers, shorten, workloads
from licenses.yamldocs import Document, YAMLSyntaxError, gc_paused, load_documents

# A hostile release (a 1 MiB file of one-line containers) could otherwise produce a million
# findings, each a stored row; errors are kept first so a capped lint still blocks.
MAX_FINDINGS = 1000
IF_NOT_PRESENT = "IfNotPresent"


@dataclass
class LintResult:
    settings: Settings
    findings: list[Finding]
    manifests: dict[str, list[Document]]  # path -> the Kubernetes documents in it


@dataclass(frozen=True)
class _Listed:
    """The `images:` entries as locations, to match a manifest's image against."""

    locations: frozenset[tuple[str, str]]  # (host, repository)
    anywhere: frozenset[str]  # repositories of entries whose host is not known

    def has(self, host: str, repository: str) -> bool:
        return (host, repository) in self.locations or repository in self.anywhere


def lint(
    files: dict[str, str],
    *,
    sources: Mapping[str, str] | Iterable[str],
    registry_host: str = "",
    app_slug: str = "",
) -> LintResult:
    """Lint a release's files. `sources`: the team's registries, name → canonical host (a
    bare collection of names also works; their images then match on any host);
    `registry_host` and `app_slug` place `replicated` images at `<registry_host>/<app_slug>/<name>`."""
    source_hosts = dict(sources) if isinstance(sources, Mapping) else dict.fromkeys(sources, "")
    findings = _Findings()
    manifests: dict[str, list[Document]] = {}
    with gc_paused():  # the whole release's documents stay alive; see gc_paused
        for path, text in files.items():
            try:
                documents = load_documents(text)
            except YAMLSyntaxError as e:
                findings.add(Finding.error("yaml-syntax", path, e.line, e.message))
                continue
            manifests[path] = [doc for doc in documents if not is_settings(doc.data)]
        settings, setting_findings = read_settings(files, set(source_hosts))
        findings.extend(setting_findings)
        listed = _listed(settings, source_hosts, registry_host, app_slug)
        for workload in (w for path, documents in manifests.items() for w in workloads(path, documents)):
            if findings.full:
                findings.stopped = True
                break
            _check_workload(findings, workload, settings, listed)
    return LintResult(settings=settings, findings=findings.shown(), manifests=manifests)


def _listed(settings: Settings, source_hosts: dict[str, str], registry_host: str, app_slug: str) -> _Listed:
    locations, anywhere = set(), set()
    for spec in settings.images:
        host, repository = listed_location(
            spec, source_hosts=source_hosts, registry_host=registry_host, app_slug=app_slug
        )
        if host:
            locations.add((host.lower(), repository))
        else:
            anywhere.add(repository)
    return _Listed(frozenset(locations), frozenset(anywhere))


def _check_workload(found: _Findings, workload: Workload, settings: Settings, listed: _Listed) -> None:
    where = (workload.file, workload.line)
    if not workload.current:
        found.add(
            Finding.warning(
                "deprecated-api", *where,
                f"{workload.title} uses {workload.api_version}, which Kubernetes {workload.removed_in} no longer "
                f"serves; the install kit adds the pull secret only to {workload.kind} in "
                f"{_current(workload)}: change apiVersion to {_current(workload)}",
            )
        )  # fmt: skip
    if workload.namespace and workload.namespace not in settings.additional_namespaces:
        found.add(
            Finding.warning(
                "namespace-without-secret", *where,
                f"{workload.title} is in namespace “{shorten(workload.namespace)}”, where the install kit puts "
                f"no pull secret: add it to additionalNamespaces{_in(settings)}, or leave metadata.namespace "
                "unset to install into the app's namespace",
            )
        )  # fmt: skip
    if workload.problem:
        found.add(Finding.warning("invalid-workload", *where, f"{workload.title} {workload.problem}"))
    for container in containers(workload):
        if found.full:
            found.stopped = True
            return
        found.extend(_container_findings(workload, container, settings, listed))


def _container_findings(workload: Workload, container: Container, settings: Settings, listed: _Listed) -> list[Finding]:
    where = (workload.file, container.line)
    if container.problem:
        return [Finding.warning("invalid-workload", *where, f"{workload.title} {container.title} {container.problem}")]
    subject = f"{workload.title} {container.title} image “{shorten(container.image)}”"
    ref = parse_reference(container.image)
    if ref is None:
        return [Finding.warning("invalid-workload", *where, f"{subject} is not an image reference")]
    found = []
    if not listed.has(ref.host, ref.repository):
        found.append(
            Finding.warning(
                "image-not-listed", *where,
                f"{subject} ({shorten(f'{ref.host}/{ref.repository}')}) is not in images:{_in(settings)}; "
                "list it with its source so customers can pull it",
            )
        )  # fmt: skip
    if not ref.digest and ref.tag in ("", "latest") and container.pull_policy != IF_NOT_PRESENT:
        what = "has no tag, so Kubernetes pulls :latest" if not ref.tag else "uses :latest"
        found.append(
            Finding.warning(
                "latest-tag", *where,
                f"{subject} {what}, which can change under a release: pin a tag or a digest "
                "(or set imagePullPolicy: IfNotPresent)",
            )
        )  # fmt: skip
    return found


def _current(workload: Workload) -> str:
    return CURRENT_API_VERSIONS[workload.kind]


def _in(settings: Settings) -> str:
    return f" ({settings.file})" if settings.file else " (the release has no settings file)"


class _Findings:
    """At most MAX_FINDINGS findings. Errors (syntax, settings) are all found before the first
    warning (workloads), so a capped lint still blocks; once full, the workloads are no longer
    walked: a hostile release (16 MiB of one-line containers) has over a million warnings."""

    def __init__(self) -> None:
        self.found: list[Finding] = []
        self.stopped = False
        self.errors_left_out = False

    @property
    def full(self) -> bool:
        return len(self.found) >= MAX_FINDINGS

    def add(self, finding: Finding) -> None:
        if self.full:
            self.stopped = True
            self.errors_left_out |= finding.level == ERROR
        else:
            self.found.append(finding)

    def extend(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            self.add(finding)

    def shown(self) -> list[Finding]:
        if not self.stopped:
            return self.found
        kept = self.found[: MAX_FINDINGS - 1]
        level = ERROR if self.errors_left_out or self.found[-1].level == ERROR else WARNING
        note = f"the lint stopped after {len(kept)} findings: fix these and lint again"
        return [*kept, Finding(level, "too-many-findings", "", None, note)]
