#!/usr/bin/env python3
"""Benchmark of the install kit (not a test): a release of 200 images and 500 manifests.

Run from the repository root:
    .venv/bin/python bench/install_kit.py [--runs 7] [--images 200] [--manifests 500] [--kubectl]

It builds the kit from plain values (delivery.installkit.KitSpec: what license_kit reads from
the rows) and times each step and the whole, in wall time and in this process's CPU time (a
machine busy with other work stretches the first, hardly the second); the aim (issue 11,
"Benchmark": the kit renders in < 1 s) is judged on the best run's wall time, as timeit does.
With --kubectl it also renders the kit once with the real `kubectl kustomize`, for scale:
kustomize makes one pass over every resource per `images:` entry and per patch, so a
release this size takes it far longer than the portal takes to build the kit. It prints a
table and a one-line JSON summary and exits 0 whether or not the aim is met; a missed aim
says MISSED. Nothing touches a database.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402

django.setup()

from delivery import installkit  # noqa: E402
from delivery.installkit import KitImage, KitSpec  # noqa: E402

AIM_SECONDS = 1.0
SOURCES = ("quay-prod", "ecr-prod", "hub", "public", "replicated")
HOSTS = {"quay-prod": "quay.io", "ecr-prod": "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "hub": "index.docker.io"}


def release(images: int, manifests: int) -> tuple[dict[str, str], list[KitImage]]:
    """A release's files and images: each manifest a Deployment (with an init container) and a
    Service, its images spread over every source and spelled as vendors do."""
    listed: list[KitImage] = []
    references: list[str] = []
    settings = ["images:"]
    for n in range(images):
        source = SOURCES[n % len(SOURCES)]
        name = f"acme/component-{n}"
        if source == "public":
            listed.append(KitImage(source, "index.docker.io", f"library/lib-{n}", visibility="public"))
            references.append(f"lib-{n}:1.{n}")
            settings.append(f"- {{source: public, name: lib-{n}, tag: '1.{n}'}}")
        elif source == "replicated":
            listed.append(KitImage(source, "registry.example.test", f"acme-api/{name}"))
            references.append(f"registry.example.test/acme-api/{name}:1.{n}")
            settings.append(f"- {{source: replicated, name: {name}, tag: '1.{n}'}}")
        else:
            digest = f"sha256:{n:064x}" if n % 3 == 0 else ""
            listed.append(KitImage(source, HOSTS[source], name, digest=digest, visibility="private" if n % 2 else ""))
            spelling = name if source == "hub" and n % 2 else f"{HOSTS[source]}/{name}"
            references.append(f"{spelling}@{digest}" if digest else f"{spelling}:1.{n}")
            pin = f", digest: '{digest}'" if digest else f", tag: '1.{n}'"
            settings.append(f"- {{source: {source}, name: {name}{pin}}}")
    settings.append("additionalNamespaces: [monitoring, logging]")
    files = {"acme.yaml": "\n".join(settings) + "\n"}
    for m in range(manifests):
        main, side = references[m % images], references[(m * 7 + 3) % images]
        files[f"manifests/component-{m:03d}.yaml"] = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: component-{m}
  labels: {{app.kubernetes.io/name: component-{m}, app.kubernetes.io/part-of: acme}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app.kubernetes.io/name: component-{m}}}
  template:
    metadata:
      labels: {{app.kubernetes.io/name: component-{m}}}
    spec:
      initContainers:
      - name: wait
        image: "{side}"
        command: ["sh", "-c", "until nc -z db 5432; do sleep 1; done"]
      containers:
      - name: main
        image: "{main}"
        imagePullPolicy: IfNotPresent
        ports: [{{containerPort: 8080, name: http}}]
        env:
        - {{name: LOG_LEVEL, value: info}}
        - {{name: COMPONENT, value: "component-{m}"}}
        resources:
          requests: {{cpu: 100m, memory: 128Mi}}
          limits: {{memory: 256Mi}}
        readinessProbe:
          httpGet: {{path: /healthz, port: http}}
---
apiVersion: v1
kind: Service
metadata:
  name: component-{m}
spec:
  selector: {{app.kubernetes.io/name: component-{m}}}
  ports: [{{port: 80, targetPort: http}}]
"""
    return files, listed


def timed(function, runs: int) -> tuple[list[float], list[float], object]:
    """(wall seconds, CPU seconds, the last result) of `runs` calls."""
    wall, cpu, result = [], [], None
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = function()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return wall, cpu, result


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--manifests", type=int, default=500)
    parser.add_argument("--kubectl", action="store_true", help="Also render the kit with kubectl kustomize (slow).")
    args = parser.parse_args()

    files, images = release(args.images, args.manifests)
    spec = KitSpec(
        app_slug="acme-api", app_name="Acme API", channel="stable", sequence=42, version="4.2.0", files=files,
        images=images, additional_namespaces=["monitoring", "logging"], license_id="L" * 32,
        proxy_host="portal.example.test", registry_host="registry.example.test", secret_name="acme-api-registry",
    )  # fmt: skip
    source_bytes = sum(len(t.encode()) for t in files.values())

    *split, (manifests, names) = timed(lambda: installkit.split_manifests(spec.files), args.runs)
    *entries, _ = timed(lambda: installkit.image_entries(spec, names), args.runs)
    *build_files, kit_files = timed(lambda: installkit.build_files(spec), args.runs)
    *archive, _ = timed(lambda: installkit.tarball(spec, kit_files), args.runs)
    *whole, data = timed(lambda: installkit.build(spec), args.runs)

    rows = [
        ("parse manifests, find images", split),
        ("images: entries", entries),
        ("all files (incl. parsing)", build_files),
        ("tar.gz", archive),
        ("whole kit (build)", whole),
    ]
    print(f"Install kit: {args.images} images, {args.manifests} manifests ({len(files)} files, "
          f"{source_bytes / 1e6:.2f} MB of YAML), {args.runs} runs")  # fmt: skip
    print(f"load average (1 min): {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'step':<32} {'wall median':>12} {'wall min':>9} {'wall max':>9} {'CPU median':>11}")
    for label, (wall, cpu) in rows:
        print(f"{label:<32} {_ms(statistics.median(wall)):>12} {_ms(min(wall)):>9} {_ms(max(wall)):>9} "
              f"{_ms(statistics.median(cpu)):>11}")  # fmt: skip
    private = sum(1 for i in images if i.private_external)
    kit_entries = installkit.image_entries(spec, names)
    print(f"kit: {len(data) / 1e3:.0f} kB compressed, {len(manifests)} manifests, {private} private external "
          f"images → {len(kit_entries)} images: entries")  # fmt: skip

    kubectl_seconds = None
    if args.kubectl:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / spec.folder
            for path, text in kit_files.items():
                (folder / path).parent.mkdir(parents=True, exist_ok=True)
                (folder / path).write_text(text)
            started = time.perf_counter()
            result = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True)
            kubectl_seconds = time.perf_counter() - started
            if result.returncode != 0:
                print(f"kubectl kustomize FAILED: {result.stderr.strip()[:500]}")
                return 1
            rewritten = result.stdout.count(f"image: {spec.proxy_host}/proxy/")
            print(f"kubectl kustomize (for scale, not part of the aim): {kubectl_seconds:.2f}s, "
                  f"{rewritten} image references sent to the proxy")  # fmt: skip

    wall, cpu = whole
    best = min(wall)
    verdict = "met" if best < AIM_SECONDS else "MISSED"
    print(
        f"aim: the kit renders in < {AIM_SECONDS:.0f} s: best {_ms(best)}, median {_ms(statistics.median(wall))} "
        f"(CPU {_ms(statistics.median(cpu))}), {verdict}"
    )
    summary = {
        "images": args.images,
        "manifests": args.manifests,
        "build_best_s": round(best, 4),
        "build_median_s": round(statistics.median(wall), 4),
        "build_cpu_median_s": round(statistics.median(cpu), 4),
        "parse_cpu_median_s": round(statistics.median(split[1]), 4),
        "kit_bytes": len(data),
        "load_average": round(os.getloadavg()[0], 1),
        "kubectl_kustomize_s": round(kubectl_seconds, 3) if kubectl_seconds is not None else None,
        "aim_met": best < AIM_SECONDS,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
