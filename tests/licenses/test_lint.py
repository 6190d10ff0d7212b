"""The release lint: each rule's exact finding line (`LEVEL RULE FILE:LINE message`), what
does not trip it, and malformed or hostile input that must give findings, never an exception."""

from __future__ import annotations

import pytest
import yaml

from licenses import lint as release_lint
from licenses import releases, workloads, yamldocs
from licenses.models import ReleaseFinding
from licenses.workloads import CURRENT_API_VERSIONS
from tests import factories

REGISTRY = "registry.portal.test:5000"
SOURCES = {"quay-prod": "quay.io"}
SETTINGS = """\
images:
- source: public
  name: redis
  tag: "7.2"
- source: quay-prod
  name: acme/api
  tag: 1.4.2
- source: replicated
  name: worker
  tag: 1.4.2
- source: public
  name: ghcr.io/acme/tool
  tag: "1"
additionalNamespaces: [monitoring]
"""


def findings(manifest: str, settings: str = SETTINGS) -> list[str]:
    files = {"app.yaml": settings, "deploy.yaml": manifest} if settings else {"deploy.yaml": manifest}
    result = release_lint.lint(files, sources=SOURCES, registry_host=REGISTRY, app_slug="shop")
    return [str(f) for f in result.findings]


def deployment(*images: str, api_version: str = "apps/v1", namespace: str = "", extra: str = "") -> str:
    meta = f"{{name: api, namespace: {namespace}}}" if namespace else "{name: api}"
    containers = "".join(f"      - name: c{n}\n        image: {image}\n{extra}" for n, image in enumerate(images))
    return (
        f"apiVersion: {api_version}\nkind: Deployment\nmetadata: {meta}\n"
        f"spec:\n  template:\n    spec:\n      containers:\n{containers}"
    )


# --- image-not-listed ----------------------------------------------------------------------


def test_an_image_missing_from_images_is_reported_at_its_container_line():
    assert findings(deployment("redis:7.2", "quay.io/acme/secret-internal:1.0")) == [
        "WARNING image-not-listed deploy.yaml:10 Deployment/api containers[1] “c1” image "
        "“quay.io/acme/secret-internal:1.0” (quay.io/acme/secret-internal) is not in images: (app.yaml); "
        "list it with its source so customers can pull it"
    ]


def test_listed_images_match_however_the_manifest_writes_them():
    manifest = deployment(
        "redis:7.2",
        "docker.io/library/redis:7.2",
        "index.docker.io/library/redis@sha256:" + "a" * 64,
        "docker.io/redis:7.0",  # another tag of a listed repository is still that repository
        "quay.io/acme/api:1.4.2",
        "QUAY.IO/acme/api:1.4.2",  # hosts are case-insensitive
        f"{REGISTRY}/shop/worker:1.4.2",
        "ghcr.io/acme/tool:1",
    )
    assert findings(manifest) == []


def test_an_image_of_a_listed_name_at_another_host_is_not_listed():
    manifest = deployment("ghcr.io/acme/api:1.4.2", f"{REGISTRY}/worker:1.4.2", "quay.io/redis:7.2")
    lines = findings(manifest)
    assert [line.split(" (")[1].split(")")[0] for line in lines] == [
        "ghcr.io/acme/api",  # quay-prod's name, but not on quay.io
        f"{REGISTRY}/worker",  # the private registry's images live under the app's slug
        "quay.io/redis",  # Docker Hub's redis, not quay.io's
    ]
    assert all(" image-not-listed " in line for line in lines)


def test_without_settings_every_image_is_not_listed_and_the_message_says_so():
    assert findings(deployment("redis:7.2"), settings="") == [
        "WARNING image-not-listed deploy.yaml:8 Deployment/api containers[0] “c0” image “redis:7.2” "
        "(index.docker.io/library/redis) is not in images: (the release has no settings file); "
        "list it with its source so customers can pull it"
    ]


def test_source_names_alone_match_their_images_on_any_host():
    """Callers that know only the registries' names (no hosts) still get a useful lint."""
    files = {"app.yaml": SETTINGS, "deploy.yaml": deployment("quay.example.test/acme/api:1.4.2")}
    assert release_lint.lint(files, sources={"quay-prod"}).findings == []


# --- latest-tag --------------------------------------------------------------------------


def test_latest_or_no_tag_is_reported_at_the_container_line():
    assert findings(deployment("redis", "redis:latest")) == [
        "WARNING latest-tag deploy.yaml:8 Deployment/api containers[0] “c0” image “redis” has no tag, so "
        "Kubernetes pulls :latest, which can change under a release: pin a tag or a digest "
        "(or set imagePullPolicy: IfNotPresent)",
        "WARNING latest-tag deploy.yaml:10 Deployment/api containers[1] “c1” image “redis:latest” uses :latest, "
        "which can change under a release: pin a tag or a digest (or set imagePullPolicy: IfNotPresent)",
    ]


def test_latest_is_accepted_with_if_not_present_or_a_digest():
    if_not_present = deployment("redis", "redis:latest", extra="        imagePullPolicy: IfNotPresent\n")
    assert findings(if_not_present) == []
    assert findings(deployment("redis:latest@sha256:" + "b" * 64, "redis@sha256:" + "c" * 64)) == []
    always = deployment("redis:latest", extra="        imagePullPolicy: Always\n")
    assert [line.split()[1] for line in findings(always)] == ["latest-tag"]


# --- deprecated-api ----------------------------------------------------------------------


def test_a_workload_in_an_old_api_version_is_reported_at_its_document():
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n" + deployment(
        "redis:7.2", api_version="extensions/v1beta1"
    )
    assert findings(manifest) == [
        "WARNING deprecated-api deploy.yaml:5 Deployment/api uses extensions/v1beta1, which Kubernetes 1.16 no "
        "longer serves; the install kit adds the pull secret only to Deployment in apps/v1: "
        "change apiVersion to apps/v1"
    ]


@pytest.mark.parametrize(
    "kind, api_version",
    [
        ("Deployment", "apps/v1beta1"),
        ("Deployment", "apps/v1beta2"),
        ("StatefulSet", "apps/v1beta1"),
        ("DaemonSet", "extensions/v1beta1"),
        ("ReplicaSet", "apps/v1beta2"),
        ("CronJob", "batch/v1beta1"),
    ],
)
def test_every_old_workload_api_version_is_reported(kind, api_version):
    manifest = workload(kind, api_version, "redis:7.2")
    assert [line.split()[1] for line in findings(manifest)] == ["deprecated-api"]


def test_workloads_in_current_api_versions_are_not_reported():
    manifest = "---\n".join(workload(kind, version, "redis:7.2") for kind, version in CURRENT_API_VERSIONS.items())
    assert findings(manifest) == []


def workload(kind: str, api_version: str, image: str) -> str:
    container = f"containers:\n- name: c\n  image: {image}\n"
    spec = {
        "Pod": container,
        "CronJob": "jobTemplate:\n  spec:\n    template:\n      spec:\n" + _indent(container, 8),
    }.get(kind, "template:\n  spec:\n" + _indent(container, 4))
    return f"apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: w}}\nspec:\n" + _indent(spec, 2)


def _indent(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line + "\n" for line in text.splitlines())


# --- namespace-without-secret --------------------------------------------------------------


def test_a_workload_in_a_namespace_without_the_pull_secret_is_reported_at_its_document():
    assert findings(deployment("redis:7.2", namespace="payments")) == [
        "WARNING namespace-without-secret deploy.yaml:1 Deployment/api is in namespace “payments”, where the "
        "install kit puts no pull secret: add it to additionalNamespaces (app.yaml), or leave metadata.namespace "
        "unset to install into the app's namespace"
    ]


def test_workloads_without_a_namespace_or_in_additional_namespaces_are_not_reported():
    assert findings(deployment("redis:7.2")) == []
    assert findings(deployment("redis:7.2", namespace="monitoring")) == []


# --- where workloads are found ----------------------------------------------------------


def test_lists_cronjobs_pods_and_init_and_ephemeral_containers_are_all_checked():
    manifest = """\
apiVersion: v1
kind: List
items:
- apiVersion: batch/v1
  kind: CronJob
  metadata: {name: nightly}
  spec:
    jobTemplate:
      spec:
        template:
          spec:
            containers:
            - name: job
              image: busybox:1.36
- apiVersion: v1
  kind: Pod
  metadata: {name: debug}
  spec:
    initContainers:
    - {name: init, image: "alpine:3.20"}
    ephemeralContainers:
    - {name: shell, image: "debian:12"}
"""
    assert [line.split(" image “")[0] for line in findings(manifest)] == [
        "WARNING image-not-listed deploy.yaml:13 CronJob/nightly containers[0] “job”",
        "WARNING image-not-listed deploy.yaml:20 Pod/debug initContainers[0] “init”",
        "WARNING image-not-listed deploy.yaml:22 Pod/debug ephemeralContainers[0] “shell”",
    ]


def test_the_workload_walk_gives_the_install_kit_each_pod_spec_with_its_place():
    text = deployment("redis:7.2", namespace="monitoring") + "---\n" + workload("CronJob", "batch/v1beta1", "x:1")
    found = list(workloads.workloads("deploy.yaml", yamldocs.load_documents(text)))
    assert [(w.file, w.line, w.kind, w.api_version, w.name, w.namespace, w.current) for w in found] == [
        ("deploy.yaml", 1, "Deployment", "apps/v1", "api", "monitoring", True),
        ("deploy.yaml", 11, "CronJob", "batch/v1beta1", "w", "", False),
    ]
    assert found[0].pod_spec_path == "spec.template.spec"
    assert found[0].pod_spec is found[0].document["spec"]["template"]["spec"]
    assert [c.image for c in workloads.containers(found[1])] == ["x:1"]
    assert workloads.WORKLOAD_KINDS == ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")


# --- malformed and hostile input --------------------------------------------------------


def test_malformed_workloads_are_reported_and_never_raise():
    manifest = """\
apiVersion: apps/v1
kind: Deployment
metadata: [not, a, mapping]
spec:
  template:
    spec:
      containers: {c: 1}
      initContainers:
      - just-a-string
      - {name: n, image: 5}
      - {name: m}
      - {name: t, image: "{{ .Values.image }}"}
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: [x]}
spec: null
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: 7}
spec: {jobTemplate: []}
---
apiVersion: v1
kind: List
items: {not: a list}
---
kind: [Deployment]
apiVersion: apps/v1
---
just a string
---
- a
- list
"""
    assert findings(manifest) == [
        "WARNING invalid-workload deploy.yaml:7 Deployment initContainers[0] is not a mapping",  # the pod spec's line
        "WARNING invalid-workload deploy.yaml:10 Deployment initContainers[1] “n” image is not a string",
        "WARNING invalid-workload deploy.yaml:11 Deployment initContainers[2] “m” has no image",
        "WARNING invalid-workload deploy.yaml:12 Deployment initContainers[3] “t” image “{{ .Values.image }}” "
        "is not an image reference",
        "WARNING invalid-workload deploy.yaml:7 Deployment containers is not a list of containers",
        "WARNING invalid-workload deploy.yaml:14 Pod/p spec is missing or not a mapping",
        "WARNING invalid-workload deploy.yaml:19 CronJob spec.jobTemplate is missing or not a mapping",
    ]


def test_a_hostile_release_gives_a_bounded_list_of_findings_with_errors_first():
    containers = "".join(f"      - {{name: c{n}, image: unlisted{n}}}\n" for n in range(3000))
    files = {
        "big.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: big}\n"
        "spec:\n  template:\n    spec:\n      containers:\n" + containers,
        "broken.yaml": "a: [1\n",
        "deep.yaml": "a: " + "[" * 5000 + "]" * 5000 + "\n",
    }
    result = release_lint.lint(files, sources={})
    assert len(result.findings) == release_lint.MAX_FINDINGS
    assert [f.rule for f in result.findings[:2]] == ["yaml-syntax", "yaml-syntax"]  # kept although found later
    assert (
        str(result.findings[-1])
        == "WARNING too-many-findings the lint stopped after 999 findings: fix these and lint again"
    )


# --- the settings rules (from release_spec), for the documentation's examples -----------


@pytest.mark.parametrize(
    "files, line",
    [
        ({"bad.yaml": "a: [1\n"}, "ERROR yaml-syntax bad.yaml:2 while parsing a flow sequence; did not find expected ',' or ']'"),
        (
            {"app.yaml": "images:\n- source: quay-dev\n  name: acme/api\n  tag: 1.0\n"},
            "ERROR unknown-source app.yaml:2 images[1] source “quay-dev” is not a registry of this team (quay-prod), `public` or `replicated`",
        ),
        (
            {"app.yaml": "images:\n- source: public\n  name: Acme/API\n  tag: 1.0\n"},
            "ERROR invalid-image app.yaml:2 images[1] name “Acme/API” is not a repository name",
        ),
        (
            {"app.yaml": "additionalNamespaces: [Monitoring]\n"},
            "ERROR invalid-namespace app.yaml:1 “Monitoring” is not a Kubernetes namespace name",
        ),
        (
            {"a.yaml": "images: []\n", "b.yaml": "additionalNamespaces: []\n"},
            "ERROR settings-twice b.yaml:1 the app's settings are already in a.yaml",
        ),
    ],
)  # fmt: skip
def test_settings_errors_are_reported_with_their_line(files, line):
    assert [str(f) for f in release_lint.lint(files, sources=SOURCES).findings] == [line]


# --- the loader the lint runs on ------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: [1, 2.5, true, null, ~, 2001-12-14, '3', 0o17, 0x1f, .inf, 1_000]\n",
        "c: {<<: {x: 1}, y: 2}\n",  # a merge key without an alias goes through PyYAML
        "---\n---\nfoo\n---\n- 1\n- [2, {3: 4}]\n",
        "a: 1\na: 2\n",
        "k: !!binary aGVsbG8=\nset: !!set {a, b}\n",
    ],
)
def test_the_fast_loader_builds_what_pyyaml_safe_load_builds(text):
    expected = [d for d in yaml.load_all(text, Loader=yaml.SafeLoader) if d is not None]
    assert [d.data for d in yamldocs.load_documents(text)] == expected


def test_the_fast_loader_keeps_each_mappings_line_and_refuses_unknown_tags():
    data = yamldocs.load_documents("a:\n  b:\n  - c: 1\n    d: 2\n")[0].data
    assert (data.line, data["a"].line, data["a"]["b"][0].line) == (1, 2, 3)
    with pytest.raises(yamldocs.YAMLSyntaxError) as raised:
        yamldocs.load_documents("a: !custom x\n")
    assert raised.value.line == 1


# --- through the service, with a real registry's endpoint ------------------------------


@pytest.mark.slow
@pytest.mark.django_db
def test_a_registry_sources_images_are_matched_at_its_endpoints_host_and_warnings_are_stored(
    actor, app, basic_registry, settings
):
    settings.REGISTRY_HOST = REGISTRY
    registry = factories.connect_registry(actor, basic_registry, name="upstream")
    host = basic_registry.endpoint.removeprefix("http://").removeprefix("https://").partition("/")[0]
    files = {
        "app.yaml": "images:\n- source: upstream\n  name: acme/api\n  tag: '1'\n"
        "- source: replicated\n  name: worker\n  tag: '1'\n",
        "deploy.yaml": deployment(f"{host}/acme/api:1", f"{REGISTRY}/{app.slug}/worker:1", f"{host}/acme/other:1"),
    }
    release, result = releases.release_create(actor=actor, app=app, files=files)
    assert registry.name == "upstream"
    assert [str(f) for f in result.findings] == [
        f"WARNING image-not-listed deploy.yaml:12 Deployment/api containers[2] “c2” image “{host}/acme/other:1” "
        f"({host}/acme/other) is not in images: (app.yaml); list it with its source so customers can pull it"
    ]
    stored = ReleaseFinding.objects.get(release=release)
    assert (stored.level, stored.rule, stored.file, stored.line) == ("warning", "image-not-listed", "deploy.yaml", 12)
    assert [(i.host, i.repository) for i in release.images.all()] == [
        (host, "acme/api"),
        (REGISTRY, f"{app.slug}/worker"),
    ]
