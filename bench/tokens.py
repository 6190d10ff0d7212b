#!/usr/bin/env python3
"""Benchmark of the token service, /v2/token (not a test).

Run from the repository root:
    .venv/bin/python bench/tokens.py [--requests 5000] [--clients 50] [--workers 1 2] [--keep] [--hold]

It builds what it needs as bench/proxy.py does (a throwaway PostgreSQL database, else SQLite;
Redis when it answers; an empty Distribution as the app's registry; team, app, release and
license through the services), then for each --workers count starts uvicorn with that many
workers and the rate limits raised (the counters still run: their cost is part of the figure),
and has --clients concurrent clients (ApacheBench, `ab`) ask `GET /v2/token` with the license
as Basic credentials and one repository scope, as `docker pull` does. A new connection per
request, as most clients make for a token. It prints successful tokens/s and p50/p99 latency per
worker count and a one-line JSON summary; exits 0 whether or not the aim (issue 14,
"Benchmark": >= 500 tokens/s with 2 workers) is met; a missed aim says MISSED.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from proxy import (  # bench/proxy.py: the same parts, started the same way
    ROOT,
    Cleanup,
    basic,
    children,
    cpu_seconds,
    log,
    make_database,
    pick_cache,
    portal_environment,
    seed_portal,
    stop_process,
    wait_http,
)

from tests.realparts.distribution import Distribution, free_port

AIM_TOKENS_PER_SECOND = 500  # with 2 workers
WARMUP_REQUESTS = 300
# High enough that no request of the run is refused: the counters are still counted.
RAISED_LIMIT = 1_000_000_000


def start_portal(tmp: Path, env: dict[str, str], cleanup: Cleanup, workers: int) -> tuple[str, subprocess.Popen]:
    """uvicorn serving portal.asgi as the Procfile does, with `--workers N` (the parent then
    supervises N worker processes)."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "portal.asgi:application", "--host", "127.0.0.1",
               "--port", str(port), "--no-access-log", "--no-proxy-headers", "--workers", str(workers)]  # fmt: skip
    for module, flags in (("uvloop", ["--loop", "uvloop"]), ("httptools", ["--http", "httptools"])):
        try:
            __import__(module)
            command += flags
        except ImportError:
            log(f"{module} not installed: uvicorn uses its default")
    log_path = tmp / f"portal-{workers}.log"
    with log_path.open("ab") as log_file:
        process = cleanup.process(
            f"portal ({workers} workers)",
            subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT),
        )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", process, "the portal", log_path)
    deadline = time.monotonic() + 30
    while workers > 1 and len(children(process.pid)) < workers and time.monotonic() < deadline:
        time.sleep(0.1)
    return url, process


def ab(url: str, authorization: str, requests: int, clients: int, csv: Path) -> dict:
    """ApacheBench's figures: successful (HTTP 200) answers per second and latency percentiles."""
    command = ["ab", "-q", "-n", str(requests), "-c", str(clients), "-H", f"Authorization: {authorization}",
               "-e", str(csv), "-s", "30", url]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"ab failed: {result.stderr[-1000:]}")
    out = result.stdout

    def number(label: str) -> float:
        match = re.search(rf"^{label}:\s+([\d.]+)", out, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    complete = int(number("Complete requests"))
    failed = int(number("Failed requests"))
    non_2xx = int(number("Non-2xx responses"))
    elapsed = number("Time taken for tests") or seconds
    ok = complete - failed - non_2xx
    # ab -e: "Percentage served,Time in ms", one row per percent 0..100.
    percentiles = {}
    for line in csv.read_text().splitlines()[1:]:
        percent, ms = line.split(",")
        percentiles[int(float(percent))] = float(ms)
    return {
        "requests": complete,
        "ok": ok,
        "errors": failed + non_2xx,
        "seconds": elapsed,
        "tokens_per_s": ok / elapsed if elapsed else 0.0,
        "p50_ms": percentiles.get(50, 0.0),
        "p99_ms": percentiles.get(99, 0.0),
    }


def measure(tmp: Path, env: dict[str, str], cleanup: Cleanup, workers: int, url_path: str, authorization: str,
            requests: int, clients: int) -> tuple[dict, str, subprocess.Popen]:  # fmt: skip
    portal, process = start_portal(tmp, env, cleanup, workers)
    pids = [process.pid, *children(process.pid)]
    url = portal + url_path
    ab(url, authorization, WARMUP_REQUESTS, clients, tmp / "warmup.csv")  # connections, caches, routes
    cpu_before = cpu_seconds(pids)
    result = ab(url, authorization, requests, clients, tmp / f"ab-{workers}.csv")
    result["portal_cpu_s_per_1000"] = (cpu_seconds(pids) - cpu_before) / max(result["ok"], 1) * 1000
    result["workers"] = workers
    log_text = (tmp / f"portal-{workers}.log").read_text(errors="replace")
    if "ERROR" in log_text or "Traceback" in log_text:
        log(f"the portal logged errors; see {tmp / f'portal-{workers}.log'} (use --keep)")
    return result, portal, process


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="token requests per worker count")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="uvicorn worker counts to measure")
    parser.add_argument("--sqlite", action="store_true", help="use a SQLite file instead of a PostgreSQL database")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs) after the run")
    parser.add_argument(
        "--hold", action="store_true", help="after measuring, keep the last portal running until Ctrl-C"
    )
    args = parser.parse_args()
    if not shutil.which("ab"):
        print("bench/tokens.py needs ApacheBench (`ab`, Debian package apache2-utils)", file=sys.stderr)
        return 2

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    cleanup = Cleanup()
    tmp = Path(tempfile.mkdtemp(prefix="tokens-bench-"))
    if args.keep:
        log(f"keeping {tmp}")
    else:
        cleanup.add("temp dir", lambda: shutil.rmtree(tmp, ignore_errors=True))
    load_start = os.getloadavg()[0]
    try:
        database_url, database_label = make_database(tmp, cleanup, args.sqlite)
        redis_url, cache_label = pick_cache()
        env = portal_environment(tmp, database_url, redis_url)
        env.update(TOKEN_RATE_PER_ADDRESS=str(RAISED_LIMIT), TOKEN_RATE_PER_CREDENTIAL=str(RAISED_LIMIT))
        os.environ.clear()  # this process sets Django up too (to seed), with the portal's settings
        os.environ.update(env)
        log("starting Distribution (no auth, empty): the app's registry")
        upstream = Distribution(tmp / "distribution", "none").start()
        cleanup.add("distribution", upstream.close)
        log(f"migrating {database_label} and creating team, app, registry, release, license")
        app_slug, license_id, service = seed_portal(upstream)
        repository = f"proxy/{app_slug}/{upstream.netloc.replace(':', '__')}/bench/small"
        url_path = f"/v2/token?service={quote(service)}&scope={quote(f'repository:{repository}:pull')}"
        authorization = basic(license_id, license_id)
        results = []
        process = None
        for workers in args.workers:
            if process is not None:
                stop_process(process)  # one portal at a time: they would share the 2 CPUs
            log(f"{args.requests} token requests, {args.clients} concurrent clients, uvicorn --workers {workers}")
            result, portal, process = measure(
                tmp, env, cleanup, workers, url_path, authorization, args.requests, args.clients
            )
            results.append(result)
        report(results, args, database_label, cache_label, load_start)
        if args.hold:
            print(f"portal {portal} (pid {process.pid}); license {license_id}; GET {portal}{url_path}")
            print("holding; Ctrl-C to stop and clean up", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    finally:
        cleanup.run()
    return 0


def report(results: list[dict], args: argparse.Namespace, database: str, cache: str, load_start: float) -> list[str]:
    missed = []
    print()
    print(
        f"Token service benchmark ({args.clients} concurrent clients, {args.requests} requests each; "
        f"{os.cpu_count()} CPUs; database {database}; cache {cache})"
    )
    print(f"{'workers':>7}  {'tokens/s':>9}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}  {'CPU s/1000':>10}  status")
    for r in results:
        status = ""
        if r["workers"] == 2:
            ok = r["tokens_per_s"] >= AIM_TOKENS_PER_SECOND and r["errors"] == 0
            status = f">= {AIM_TOKENS_PER_SECOND}/s {'ok' if ok else 'MISSED'}"
            if not ok:
                missed.append("tokens_2_workers")
        print(
            f"{r['workers']:>7}  {r['tokens_per_s']:>9.0f}  {r['p50_ms']:>7.1f}  {r['p99_ms']:>7.1f}  "
            f"{r['errors']:>6}  {r['portal_cpu_s_per_1000']:>10.2f}  {status}"
        )
    print(f"load average (1 min): {load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    summary = {"tokens": [{k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()} for r in results],
               "missed": missed, "database": database, "cache": cache, "clients": args.clients}  # fmt: skip
    print(json.dumps(summary, separators=(",", ":")))
    return missed


if __name__ == "__main__":
    sys.exit(main())
