"""Helpers for the install kit tests: unpack a kit, render it with the real kubectl, read its Secret."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import yaml

KUBECTL = "/usr/bin/kubectl"


def unpack(data: bytes, into: Path) -> Path:
    """The kit's folder, unpacked under `into` (refusing anything outside it)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        tops = {member.name.split("/", 1)[0] for member in archive.getmembers()}
        assert len(tops) == 1, tops
        archive.extractall(into, filter="data")
    return into / tops.pop()


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        return {member.name: member for member in archive.getmembers()}


def kustomize(folder: Path) -> list[dict]:
    """`kubectl kustomize` of the folder (offline), as documents; fails the test on any error."""
    result = subprocess.run([KUBECTL, "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def pod_specs(document: dict) -> Iterator[dict]:
    """The pod spec of a workload of any of the kinds the kit patches."""
    spec = document.get("spec") or {}
    if document["kind"] == "Pod":
        yield spec
    elif document["kind"] == "CronJob":
        yield spec["jobTemplate"]["spec"]["template"]["spec"]
    elif "template" in spec:
        yield spec["template"]["spec"]


def images(documents: list[dict]) -> list[str]:
    """Every container image in rendered documents, in order."""
    found = []
    for document in documents:
        for spec in pod_specs(document):
            for key in ("initContainers", "containers"):
                found += [c["image"] for c in spec.get(key) or []]
    return found


def secrets(documents: list[dict]) -> list[dict]:
    return [d for d in documents if d["kind"] == "Secret"]


def docker_config(secret: dict) -> dict:
    return json.loads(base64.b64decode(secret["data"][".dockerconfigjson"], validate=True))


def workload(kind: str, name: str, *pod_spec: str, service_name: str = "") -> str:
    """An apps/v1 `kind` (Deployment, StatefulSet, DaemonSet, ReplicaSet) selecting its pods by
    `app: name`, whose pod spec is the YAML lines `pod_spec` (written at the pod spec's level)."""
    lines = ["apiVersion: apps/v1", f"kind: {kind}", f"metadata: {{name: {name}}}", "spec:"]
    if service_name:
        lines.append(f"  serviceName: {service_name}")
    lines += [
        f"  selector: {{matchLabels: {{app: {name}}}}}",
        "  template:",
        f"    metadata: {{labels: {{app: {name}}}}}",
    ]
    lines += ["    spec:", *(f"      {line}" for line in pod_spec)]
    return "\n".join(lines) + "\n"


def cronjob(name: str, image: str) -> str:
    """A batch/v1 CronJob running `image` nightly in one container, both called `name`."""
    return f"""\
apiVersion: batch/v1
kind: CronJob
metadata: {{name: {name}}}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{{name: {name}, image: "{image}"}}]
"""
