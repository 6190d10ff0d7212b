#!/usr/bin/env python3
"""Benchmark of the release lint (not a test): a release of 200 images and 500 manifests.

Run from the repository root:
    .venv/bin/python bench/release_lint.py [--runs 5] [--images 200] [--manifests 500] [--keep] [--hostile]

It writes the release (an app settings file and one multi-document manifest file per
workload: the workload, a Service and a ConfigMap) into a temp dir, packs it as a .tar.gz,
then times reading the archive (`read_tarball`) and the lint (`lint`), as an upload does.
No database or network is used. It prints a table and a one-line JSON summary and exits 0
whether or not the aim (issue 11, "Benchmark": the lint in < 2 s) is met; a missed aim says
MISSED. `--hostile` also times the worst upload the bounds allow (16 files of 1 MiB, each one
Deployment of one-line containers): no aim, the figure shows what the bounds cost.
The install kit is timed by its own benchmark once it exists (delivery/installkit.py).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402

django.setup()

from licenses.lint import lint  # noqa: E402
from licenses.release_files import MAX_FILE_BYTES, MAX_TOTAL_BYTES, read_tarball  # noqa: E402

AIM_SECONDS = 2.0
APP_SLUG = "shop"
REGISTRY_HOST = "registry.portal.test:5000"
SOURCES = {"quay-prod": "quay.io", "ecr-prod": "123456789012.dkr.ecr.eu-west-1.amazonaws.com"}
KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def image_entries(count: int) -> list[tuple[str, str, str]]:
    """(source, name, the reference a manifest writes) for `count` images, a mix of sources."""
    entries = []
    for n in range(count):
        match n % 4:
            case 0:
                entries.append(("public", f"team{n}/tool{n}", f"docker.io/team{n}/tool{n}:1.{n}"))
            case 1:
                entries.append(("quay-prod", f"acme/svc{n}", f"quay.io/acme/svc{n}:2.{n}"))
            case 2:
                entries.append(("ecr-prod", f"acme/job{n}", f"{SOURCES['ecr-prod']}/acme/job{n}:3.{n}"))
            case _:
                entries.append(("replicated", f"worker{n}", f"{REGISTRY_HOST}/{APP_SLUG}/worker{n}:4.{n}"))
    return entries


def settings_file(entries: list[tuple[str, str, str]]) -> str:
    lines = ["images:"]
    for source, name, reference in entries:
        tag = reference.rpartition(":")[2]
        lines += [f"- source: {source}", f"  name: {name}", f'  tag: "{tag}"']
    lines.append("additionalNamespaces: [monitoring]")
    return "\n".join(lines) + "\n"


def pod_spec(n: int, images: list[str], indent: str) -> str:
    containers = "".join(
        f"{indent}- name: c{i}\n{indent}  image: {image}\n{indent}  ports:\n{indent}  - containerPort: {8000 + i}\n"
        f"{indent}  env:\n{indent}  - {{name: MODE, value: production}}\n"
        f"{indent}  resources: {{requests: {{cpu: 100m, memory: 128Mi}}}}\n"
        for i, image in enumerate(images[1:])
    )
    return (
        f"{indent[:-2]}initContainers:\n{indent}- name: init\n{indent}  image: {images[0]}\n"
        f"{indent[:-2]}containers:\n{containers}"
    )


def manifest_file(n: int, images: list[str]) -> str:
    kind = KINDS[n % len(KINDS)]
    version = "batch/v1" if kind in ("Job", "CronJob") else "apps/v1"
    namespace = "  namespace: monitoring\n" if n % 10 == 0 else ""
    if kind == "CronJob":
        spec = (
            "spec:\n  schedule: '*/5 * * * *'\n  jobTemplate:\n    spec:\n      template:\n"
            f"        metadata: {{labels: {{app: w{n}}}}}\n        spec:\n" + pod_spec(n, images, " " * 12)
        )
    else:
        spec = (
            f"spec:\n  selector: {{matchLabels: {{app: w{n}}}}}\n  template:\n"
            f"    metadata: {{labels: {{app: w{n}}}}}\n    spec:\n" + pod_spec(n, images, " " * 8)
        )
    return (
        f"apiVersion: {version}\nkind: {kind}\nmetadata:\n  name: w{n}\n{namespace}  labels: {{app: w{n}}}\n{spec}"
        f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: w{n}}}\n"
        f"spec:\n  selector: {{app: w{n}}}\n  ports:\n  - {{port: 80, targetPort: 8000}}\n"
        f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: w{n}-config}}\n"
        f"data:\n" + "".join(f"  key{k}: value number {k} of workload {n}\n" for k in range(10))
    )


def write_release(folder: Path, images: int, manifests: int) -> dict[str, int]:
    entries = image_entries(images)
    references = [reference for _, _, reference in entries]
    (folder / "manifests").mkdir(parents=True)
    (folder / "app.yaml").write_text(settings_file(entries))
    containers = 0
    for n in range(manifests):
        chosen = [references[(n * 3 + i) % len(references)] for i in range(3)]
        if n % 50 == 0:
            chosen[1] = "busybox"  # not listed, no tag: one image-not-listed and one latest-tag each
        (folder / "manifests" / f"w{n:03d}.yaml").write_text(manifest_file(n, chosen))
        containers += len(chosen)
    return {"containers": containers}


def pack(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(folder, arcname="release")
    return buffer.getvalue()


def timed(runs: int, call) -> tuple[float, object]:
    seconds = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def time_hostile() -> tuple[float, float]:
    """Wall and CPU seconds of one lint of the largest release: 16 files of 1 MiB of containers."""
    head = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: big}\n"
    head += "spec:\n  template:\n    spec:\n      containers:\n"
    line = "      - {name: c, image: x}\n"
    text = head + line * ((MAX_FILE_BYTES - len(head)) // len(line))
    files = {f"big{n}.yaml": text for n in range(MAX_TOTAL_BYTES // MAX_FILE_BYTES)}
    wall, cpu = time.perf_counter(), time.process_time()
    lint(files, sources=SOURCES)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="repetitions of each measurement (the median is shown)")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--manifests", type=int, default=500)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir with the generated release")
    parser.add_argument("--hostile", action="store_true", help="also time the largest release the bounds allow")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="release-lint-bench-"))
    try:
        log(f"writing a release of {args.images} images and {args.manifests} manifests into {tmp}")
        counts = write_release(tmp / "release", args.images, args.manifests)
        archive = pack(tmp / "release")
        read_s, files = timed(args.runs, lambda: read_tarball(archive))
        size = sum(len(text.encode()) for text in files.values())
        log(f"linting ({args.runs}x)")
        cpu_started = time.process_time()
        lint_s, result = timed(
            args.runs, lambda: lint(files, sources=SOURCES, registry_host=REGISTRY_HOST, app_slug=APP_SLUG)
        )
        lint_cpu_s = (time.process_time() - cpu_started) / args.runs
        hostile_s = hostile_cpu_s = 0.0
        if args.hostile:
            log("linting the largest release the bounds allow (once)")
            hostile_s, hostile_cpu_s = time_hostile()
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    rules: dict[str, int] = {}
    for finding in result.findings:
        rules[finding.rule] = rules.get(finding.rule, 0) + 1
    met = lint_s < AIM_SECONDS
    rows = [
        ("release", f"{len(files)} files, {size / 1_000_000:.1f} MB, {counts['containers']} containers", "", ""),
        ("  .tar.gz", f"{len(archive) / 1_000_000:.2f} MB", "", ""),
        ("read_tarball", f"{read_s * 1000:.0f} ms", "", ""),
        ("lint", f"{lint_s * 1000:.0f} ms", f"< {AIM_SECONDS:.0f} s", "met" if met else "MISSED"),
        ("  CPU per lint (mean)", f"{lint_cpu_s * 1000:.0f} ms", "", ""),
        ("  read + lint", f"{(read_s + lint_s) * 1000:.0f} ms", "", ""),
        ("  findings", ", ".join(f"{rule} {n}" for rule, n in sorted(rules.items())) or "none", "", ""),
    ]
    if args.hostile:
        rows.append(("hostile: 16 x 1 MiB of containers", f"{hostile_s:.1f} s ({hostile_cpu_s:.1f} s CPU)", "", ""))
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print()
    print(f"Release lint benchmark ({args.runs} runs each; medians; {os.cpu_count()} CPUs)")
    print(f"{'figure'.ljust(width)}  {'value'.ljust(value_width)}  {'aim'.ljust(8)}  status")
    print("-" * (width + value_width + 20))
    for name, value, aim, status in rows:
        print(f"{name.ljust(width)}  {value.ljust(value_width)}  {aim.ljust(8)}  {status}")
    print(f"load average (1 min): {os.getloadavg()[0]:.2f}; other work skews the figures")
    print("install kit: timed by bench/install_kit.py (same release shape)")
    print("all aims met" if met else "aims missed: lint")
    summary = {
        "images": args.images, "manifests": args.manifests, "files": len(files), "bytes": size,
        "containers": counts["containers"], "read_ms": round(read_s * 1000, 1), "lint_ms": round(lint_s * 1000, 1),
        "lint_cpu_ms": round(lint_cpu_s * 1000, 1), "hostile_s": round(hostile_s, 2),
        "findings": rules, "missed": [] if met else ["lint"], "runs": args.runs,
    }  # fmt: skip
    print(json.dumps(summary, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
