#!/usr/bin/env python3
"""Benchmark of the air-gap build (not a test): a 256 MiB single-layer image from a local
Distribution, built into a bundle by the portal and copied by `skopeo copy docker://… oci:DIR`.

Run from the repository root:
    .venv/bin/python bench/airgap.py [--runs 3] [--layer-mib 256]

It starts a Distribution without auth, pushes the image with skopeo, then, per run, times
`skopeo copy` of the image into a fresh OCI layout and the portal's whole build
(delivery.airgap.build.bundle_build: fetch by digest with every blob verified, the signed tar,
storing it) in a child process on its own SQLite database, which also reports how far its RSS
rose above what it held before the build (VmHWM after − VmRSS before, with the peak reset).
Each side's CPU time is printed too: on a machine busy with other work the wall times swing,
the CPU times hardly.
Aims (issue 12, "Tests against real parts"): build MB/s ≥ 0.8 × skopeo's, and the RSS rise
≤ ~50 MB. The best run of each counts, as timeit does. It prints a table and a one-line JSON
summary and exits 0 whether or not the aims are met; a missed aim says MISSED.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AIM_RATIO = 0.8
AIM_RSS_MB = 50
MIB = 1024 * 1024


def child_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"sqlite:///{tmp / 'portal.sqlite3'}",
        PORTAL_VAR_DIR=str(tmp / "var"),
        DEBUG="0",
        REGISTRIES_ALLOW_HTTP="1",
        REGISTRIES_ALLOWED_PRIVATE_NETWORKS="127.0.0.0/8",
        CELERY_BROKER_URL="filesystem://localhost/",
        AIRGAP_WORK_DIR=str(tmp / "work"),
        AIRGAP_STORAGE_URL=f"file://{tmp / 'store'}",
        DJANGO_SETTINGS_MODULE="portal.settings",
    )
    env.pop("REDIS_URL", None)
    return env


def _proc_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def child(reference: str) -> None:
    """In the child: a team, an app and a release listing `reference`, resolved; then the build,
    timed, with the RSS before and the peak during it. Prints one JSON line."""
    import logging

    import django
    from django.core.management import call_command

    django.setup()
    logging.getLogger("delivery.airgap.build").setLevel(logging.INFO)
    logging.getLogger("delivery.airgap.build").addHandler(logging.StreamHandler(sys.stderr))
    call_command("migrate", interactive=False, verbosity=0)

    from delivery.airgap.build import bundle_build
    from delivery.airgap.bundles import bundle_request
    from licenses import releases
    from registries import release_resolve
    from tests import factories

    team = factories.make_team("Bench", admin=factories.make_user("bench@example.test"))
    actor = factories.actor_of(team.memberships.get().user, team)
    app = factories.make_app(team, "bench")
    name, _, tag = reference.rpartition(":")
    settings_file = f"images:\n- source: public\n  name: {name}\n  tag: '{tag}'\n"
    release, _ = releases.release_create(actor=actor, app=app, files={"app.yaml": settings_file})
    release_resolve.release_resolve(release.pk)
    release.refresh_from_db()
    bundle = bundle_request(actor=actor, release=release)

    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _proc_kib("VmRSS")
    started, cpu = time.perf_counter(), time.process_time()
    bundle = bundle_build(bundle.pk)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = _proc_kib("VmHWM")
    assert bundle is not None and bundle.status == "ready", bundle and bundle.error
    print(json.dumps({"seconds": seconds, "cpu": cpu, "bytes": bundle.bytes_total, "rss_rise_kib": peak - before}))


def skopeo_copy(reference: str, target: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one copy."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        ["skopeo", "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false",
         f"docker://{reference}", f"oci:{target}:bench"],
        check=True, timeout=600,
    )  # fmt: skip
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)


def portal_build(reference: str, tmp: Path) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", reference],
        env=child_env(tmp), cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"the build failed:\n{result.stderr[-3000:]}")
    print(
        "\n".join(f"  {line}" for line in result.stderr.splitlines() if line.startswith("air-gap bundle")), flush=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--layer-mib", type=int, default=256)
    parser.add_argument("--child", metavar="REFERENCE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0

    from tests.realparts.distribution import Distribution
    from tests.realparts.images import build_image, push

    with tempfile.TemporaryDirectory(prefix="bench-airgap-") as name:
        tmp = Path(name)
        upstream = Distribution(tmp / "distribution", "none").start()
        try:
            print(f"building a {args.layer_mib} MiB single-layer image…", flush=True)
            image = build_image(tmp / "layout", seed="bench", layers=1, layer_size=args.layer_mib * MIB)
            push(image, upstream.netloc, "bench/big")
            reference = f"{upstream.netloc}/bench/big:1.0.0"
            skopeo_runs, portal_runs = [], []
            for run in range(args.runs):
                skopeo_runs.append(skopeo_copy(reference, tmp / f"skopeo-{run}"))
                portal_runs.append(portal_build(reference, tmp / f"portal-{run}"))
                print(
                    f"run {run + 1}: skopeo {skopeo_runs[-1][0]:.2f} s (CPU {skopeo_runs[-1][1]:.2f} s), "
                    f"portal {portal_runs[-1]['seconds']:.2f} s (CPU {portal_runs[-1]['cpu']:.2f} s), "
                    f"RSS +{portal_runs[-1]['rss_rise_kib'] / 1024:.1f} MB",
                    flush=True,
                )
        finally:
            upstream.close()

    size = portal_runs[0]["bytes"]
    skopeo_mbs = size / min(wall for wall, _ in skopeo_runs) / 1e6
    skopeo_cpu = min(cpu for _, cpu in skopeo_runs)
    portal_cpu = min(r["cpu"] for r in portal_runs)
    portal_mbs = size / min(r["seconds"] for r in portal_runs) / 1e6
    ratio = portal_mbs / skopeo_mbs
    rss_mb = max(r["rss_rise_kib"] for r in portal_runs) / 1024
    print()
    print(f"{'image':<28} {size / MIB:.0f} MiB (config, manifest and one layer)")
    print(f"{'skopeo copy → oci: (best)':<28} {skopeo_mbs:8.0f} MB/s")
    print(f"{'portal build (best)':<28} {portal_mbs:8.0f} MB/s")
    print(
        f"{'CPU s (best)':<28} skopeo {skopeo_cpu:.2f}, portal {portal_cpu:.2f} (wall time is noisy on a busy machine)"
    )
    print(f"{'ratio':<28} {ratio:8.2f}×   aim ≥ {AIM_RATIO}×  {'met' if ratio >= AIM_RATIO else 'MISSED'}")
    print(
        f"{'build RSS rise (worst)':<28} {rss_mb:8.1f} MB  aim ≤ {AIM_RSS_MB} MB  {'met' if rss_mb <= AIM_RSS_MB else 'MISSED'}"
    )
    summary = {
        "bytes": size, "skopeo_mb_s": round(skopeo_mbs), "portal_mb_s": round(portal_mbs),
        "ratio": round(ratio, 2), "skopeo_cpu_s": round(skopeo_cpu, 2), "portal_cpu_s": round(portal_cpu, 2),
        "rss_rise_mb": round(rss_mb, 1), "runs": args.runs,
    }  # fmt: skip
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
