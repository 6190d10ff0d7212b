"""What an install kit holds, built from plain values and rendered with the real `kubectl kustomize`."""

from __future__ import annotations

import base64

import pytest
import yaml
from django.core.exceptions import ValidationError

from delivery import installkit
from delivery.installkit import KitImage, KitSpec
from portal_cli import kitfiles
from tests.installkit import kits

PROXY = "portal.example.test:8443"
REGISTRY = "registry.example.test"
LICENSE_ID = "lic-" + "x" * 28
DIGEST = "sha256:" + "b" * 64
OTHER_DIGEST = "sha256:" + "c" * 64

SETTINGS = f"""\
images:
- {{source: quay, name: acme/api, tag: "1.0"}}
- {{source: hub, name: acme/private, digest: {DIGEST}}}
- {{source: local, name: acme/tool, tag: "2.0"}}
- {{source: quay, name: acme/open, tag: "1.0"}}
- {{source: public, name: redis, tag: "7"}}
- {{source: replicated, name: worker, tag: "1.0"}}
additionalNamespaces: [monitoring, default]
"""

WORKLOADS = "---\n".join(
    [
        kits.workload(
            "Deployment", "api",
            "imagePullSecrets: [{name: theirs}]",
            "initContainers:",
            '- {name: migrate, image: "quay.io/acme/api:1.0"}',
            "containers:",
            '- {name: api, image: "quay.io/acme/api:1.0"}',
            '- {name: cache, image: "redis:7"}',
            f'- {{name: hub1, image: "acme/private@{DIGEST}"}}',
            '- {name: hub2, image: "docker.io/acme/private"}',
            '- {name: hub3, image: "index.docker.io/acme/private:latest"}',
        ),
        kits.workload(
            "StatefulSet", "db", 'containers: [{name: db, image: "127.0.0.1:5000/acme/tool:2.0"}]', service_name="db"
        ),
        kits.workload("DaemonSet", "agent", 'containers: [{name: agent, image: "quay.io/acme/open:1.0"}]'),
        kits.workload("ReplicaSet", "rs", f'containers: [{{name: w, image: "{REGISTRY}/acme-api/worker:1.0"}}]'),
    ]
)  # fmt: skip

JOBS = "---\n".join(
    [
        """\
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: once, image: "quay.io/acme/api:1.0"}]
""",
        kits.cronjob("nightly", "quay.io/acme/api:1.0"),
        """\
apiVersion: v1
kind: Pod
metadata: {name: debug, namespace: monitoring}
spec:
  containers: [{name: debug, image: "quay.io/acme/api:1.0"}]
""",
    ]
)

OLD_AND_CUSTOM = """\
# An old API version and a custom resource: no pull secret patched in (lint warns about the first).
apiVersion: extensions/v1beta1
kind: Deployment
metadata: {name: legacy}
spec:
  template:
    spec:
      containers: [{name: legacy, image: "redis:7"}]
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: widget}
spec:
  size: 3
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: "on"}
"""

IMAGES = [
    KitImage("quay", "quay.io", "acme/api", visibility="private"),
    KitImage("hub", "index.docker.io", "acme/private", digest=DIGEST),  # not resolved yet: private
    KitImage("local", "127.0.0.1:5000", "acme/tool", visibility="private"),
    KitImage("quay", "quay.io", "acme/open", visibility="public"),  # resolving found it public
    KitImage("public", "index.docker.io", "library/redis", visibility="public"),
    KitImage("replicated", REGISTRY, "acme-api/worker"),
]


def _spec(**changes) -> KitSpec:
    values = dict(
        app_slug="acme-api",
        app_name="Acme API",
        channel="stable",
        sequence=3,
        version="1.4.2",
        files={
            "acme.yaml": SETTINGS,
            "manifests/workloads.yaml": WORKLOADS,
            "manifests/jobs.yaml": JOBS,
            "other.yml": OLD_AND_CUSTOM,
        },
        images=IMAGES,
        additional_namespaces=["monitoring", "default"],
        license_id=LICENSE_ID,
        proxy_host=PROXY,
        registry_host=REGISTRY,
        secret_name="acme-api-registry",
    )
    values.update(changes)
    return KitSpec(**values)


def _proxy(host: str, repository: str) -> str:
    return f"{PROXY}/proxy/acme-api/{host}/{repository}"


@pytest.fixture
def rendered(tmp_path) -> list[dict]:
    return kits.kustomize(kits.unpack(installkit.build(_spec()), tmp_path))


# --- the files -------------------------------------------------------------------------------


def test_the_kit_holds_the_manifests_unchanged_without_the_settings_file_and_a_kustomization_listing_them(tmp_path):
    spec = _spec()
    folder = kits.unpack(installkit.build(spec), tmp_path)
    assert folder.name == "acme-api-install-kit-3"
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "acme-api-registry.yaml",
        "kustomization.yaml",
        "manifests/manifests/jobs.yaml",
        "manifests/manifests/workloads.yaml",
        "manifests/other.yml",
    ]
    assert (folder / "manifests/manifests/workloads.yaml").read_text() == WORKLOADS
    assert (folder / "manifests/other.yml").read_text() == OLD_AND_CUSTOM
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert kustomization["resources"] == [
        "acme-api-registry.yaml",
        "manifests/manifests/jobs.yaml",
        "manifests/manifests/workloads.yaml",
        "manifests/other.yml",
    ]
    readme = (folder / "README.md").read_text()
    assert "kubectl apply -k ." in readme and "Release 3 (version 1.4.2) of the `stable` channel" in readme


@pytest.mark.slow
def test_private_external_images_go_to_the_proxy_in_every_spelling_the_manifests_use(rendered):
    images = kits.images(rendered)
    api = _proxy("quay.io", "acme/api")
    hub = _proxy("index.docker.io", "acme/private")
    assert images.count(f"{api}:1.0") == 5  # init container, Deployment, Job, CronJob, Pod
    # Three spellings of one Docker Hub image, each matched; listed by digest, so pinned to it.
    assert images.count(f"{hub}@{DIGEST}") == 3
    # A port is written host__port: clients refuse a ":" inside a path.
    assert f"{_proxy('127.0.0.1__5000', 'acme/tool')}:2.0" in images
    # Public images, a registry image resolved public and the private registry's are left alone.
    assert "redis:7" in images and "quay.io/acme/open:1.0" in images and f"{REGISTRY}/acme-api/worker:1.0" in images
    assert not any(i.startswith(("quay.io/acme/api", "acme/private", "docker.io/", "127.0.0.1:5000")) for i in images)


def test_each_spelling_gets_its_own_images_entry_and_an_unused_image_none(tmp_path):
    folder = kits.unpack(installkit.build(_spec()), tmp_path)
    entries = yaml.safe_load((folder / "kustomization.yaml").read_text())["images"]
    hub = _proxy("index.docker.io", "acme/private")
    assert entries == [
        {"name": "127.0.0.1:5000/acme/tool", "newName": _proxy("127.0.0.1__5000", "acme/tool")},
        {"name": "acme/private", "newName": hub, "digest": DIGEST},
        {"name": "docker.io/acme/private", "newName": hub, "digest": DIGEST},
        {"name": "index.docker.io/acme/private", "newName": hub, "digest": DIGEST},
        {"name": "quay.io/acme/api", "newName": _proxy("quay.io", "acme/api")},
    ]
    # Listed but in no manifest: no entry (each would cost kustomize a pass over every resource).
    unused = _spec(images=[KitImage("quay", "quay.io", "acme/unused")])
    assert installkit.image_entries(unused, {"quay.io/acme/api", "redis"}) == []


def test_an_image_listed_with_two_digests_keeps_whatever_each_manifest_pins():
    spec = _spec(
        images=[
            KitImage("quay", "quay.io", "acme/api", digest=DIGEST),
            KitImage("quay", "quay.io", "acme/api", digest=OTHER_DIGEST),
        ]
    )
    assert installkit.image_entries(spec, {"quay.io/acme/api"}) == [
        {"name": "quay.io/acme/api", "newName": _proxy("quay.io", "acme/api")}
    ]


@pytest.mark.slow
def test_every_workload_of_a_current_api_version_gets_the_pull_secret_and_keeps_its_own(rendered):
    by_kind = {(d["apiVersion"], d["kind"]): d for d in rendered}
    for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        (spec,) = kits.pod_specs(by_kind[("apps/v1", kind)])
        expected = [{"name": "acme-api-registry"}] + ([{"name": "theirs"}] if kind == "Deployment" else [])
        assert spec["imagePullSecrets"] == expected, kind
    for api_version, kind in (("batch/v1", "Job"), ("batch/v1", "CronJob"), ("v1", "Pod")):
        (spec,) = kits.pod_specs(by_kind[(api_version, kind)])
        assert spec["imagePullSecrets"] == [{"name": "acme-api-registry"}], kind
    legacy = by_kind[("extensions/v1beta1", "Deployment")]
    assert "imagePullSecrets" not in legacy["spec"]["template"]["spec"]
    assert by_kind[("example.com/v1", "Widget")]["spec"] == {"size": 3}


@pytest.mark.slow
def test_the_pull_secret_is_in_the_apps_namespace_and_each_additional_one(rendered):
    secrets = kits.secrets(rendered)
    assert sorted(s["metadata"].get("namespace", "") for s in secrets) == ["", "monitoring"]
    auth = base64.b64encode(f"LICENSE_ID:{LICENSE_ID}".encode()).decode()
    for secret in secrets:
        assert secret["metadata"]["name"] == "acme-api-registry"
        assert secret["type"] == "kubernetes.io/dockerconfigjson"
        assert kits.docker_config(secret) == {
            "auths": {
                host: {"username": "LICENSE_ID", "password": LICENSE_ID, "auth": auth} for host in (PROXY, REGISTRY)
            }
        }


@pytest.mark.slow
def test_a_secret_name_of_the_customers_choice_names_the_secret_and_every_reference(tmp_path):
    data = installkit.build(_spec(secret_name="replicatedregistrykey"))
    rendered = kits.kustomize(kits.unpack(data, tmp_path))
    assert {s["metadata"]["name"] for s in kits.secrets(rendered)} == {"replicatedregistrykey"}
    names = {p["name"] for d in rendered for spec in kits.pod_specs(d) for p in spec.get("imagePullSecrets") or []}
    assert names == {"replicatedregistrykey", "theirs"}


@pytest.mark.slow
def test_settings_sharing_a_file_with_manifests_are_cut_out_and_the_rest_kept(tmp_path):
    mixed = "# the app\n" + SETTINGS + "---\n" + JOBS
    spec = _spec(files={"all.yaml": mixed})
    folder = kits.unpack(installkit.build(spec), tmp_path)
    assert (folder / "manifests/all.yaml").read_text() == "---\n" + JOBS
    assert {d["kind"] for d in kits.kustomize(folder)} == {"Secret", "Job", "CronJob", "Pod"}


@pytest.mark.slow
def test_a_release_with_no_private_images_renders_without_an_images_list(tmp_path):
    spec = _spec(images=[KitImage("public", "index.docker.io", "library/redis")], files={"a.yaml": WORKLOADS})
    folder = kits.unpack(installkit.build(spec), tmp_path)
    assert "images" not in yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert "quay.io/acme/api:1.0" in kits.images(kits.kustomize(folder))


def test_the_archive_is_the_same_bytes_every_time_and_the_secret_readable_by_its_owner_only():
    spec = _spec()
    data = installkit.build(spec)
    assert installkit.build(spec) == data
    members = kits.members(data)
    assert members["acme-api-install-kit-3/acme-api-registry.yaml"].mode == 0o600
    assert members["acme-api-install-kit-3/kustomization.yaml"].mode == 0o644
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())
    assert LICENSE_ID.encode() not in data  # compressed, and inside base64 anyway


# --- the parameters --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["replicatedregistrykey", "a", "acme-api-registry", "acme.registry", "a" * 253])
def test_valid_secret_names(name):
    assert installkit.validate_secret_name(name) == name


@pytest.mark.parametrize("name", ["Acme", "acme_key", "-acme", "acme-", "acme..key", "a" * 254, "ké", "a b", "a/b"])
def test_a_secret_name_must_be_a_dns_1123_subdomain(name):
    with pytest.raises(ValidationError) as raised:
        installkit.validate_secret_name(name)
    assert list(raised.value.message_dict) == ["secret_name"]
    assert "DNS-1123 subdomain" in raised.value.message_dict["secret_name"][0]


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "abc", "٣", str(2**31)])
def test_a_sequence_must_be_a_whole_number(value):
    with pytest.raises(ValidationError) as raised:
        installkit.validate_sequence(value)
    assert list(raised.value.message_dict) == ["sequence"]


def test_no_parameters_mean_the_defaults():
    assert installkit.validate_sequence("") is None and installkit.validate_secret_name("") is None
    assert installkit.validate_sequence("12") == 12


@pytest.mark.parametrize(
    "reference, expected",
    [
        ("redis", ("redis", "", "")),
        ("redis:7", ("redis", "7", "")),
        ("127.0.0.1:5000/acme/api", ("127.0.0.1:5000/acme/api", "", "")),
        ("127.0.0.1:5000/acme/api:2.0", ("127.0.0.1:5000/acme/api", "2.0", "")),
        (f"quay.io/acme/api:1.0@{DIGEST}", ("quay.io/acme/api", "1.0", DIGEST)),
    ],
)
def test_image_references_split_into_name_tag_and_digest(reference, expected):
    assert kitfiles.split_reference(reference) == expected


@pytest.mark.parametrize(
    "name, expected",
    [
        ("redis", ("index.docker.io", "library/redis")),
        ("docker.io/library/redis", ("index.docker.io", "library/redis")),
        ("registry-1.docker.io/acme/private", ("index.docker.io", "acme/private")),
        ("Quay.IO/acme/api", ("quay.io", "acme/api")),
        ("localhost/acme", ("localhost", "acme")),
        ("127.0.0.1:5000/acme/api", ("127.0.0.1:5000", "acme/api")),
    ],
)
def test_an_image_name_is_located_as_the_release_stores_it(name, expected):
    assert installkit.location(name) == expected
