"""The release lint: one finding per line, `LEVEL RULE FILE[:LINE] message`; errors block a
release. Run on upload and standalone (API `…/releases/lint/`, `portal release lint`)."""

from __future__ import annotations

from dataclasses import dataclass

from licenses.findings import Finding
from licenses.release_spec import Settings, is_settings, read_settings
from licenses.yamldocs import Document, YAMLSyntaxError, load_documents


@dataclass
class LintResult:
    settings: Settings
    findings: list[Finding]
    manifests: dict[str, list[Document]]  # path -> the Kubernetes documents in it


def lint(files: dict[str, str], *, sources: set[str]) -> LintResult:
    """Lint a release's files; `sources` are the names of the team's registries."""
    findings: list[Finding] = []
    manifests: dict[str, list[Document]] = {}
    for path, text in files.items():
        try:
            documents = load_documents(text)
        except YAMLSyntaxError as e:
            findings.append(Finding.error("yaml-syntax", path, e.line, e.message))
            continue
        manifests[path] = [doc for doc in documents if not is_settings(doc.data)]
    settings, setting_findings = read_settings(files, sources)
    findings += setting_findings
    return LintResult(settings=settings, findings=findings, manifests=manifests)
