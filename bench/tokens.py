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

Another benchmark measures a portal it already runs with `measure(base_url, license_id, scope)`
(bench/ on sys.path, `from tokens import measure`); only the standard library is imported at
the top, so bench/proxy.py may import this module while this module uses its parts.
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
from base64 import b64encode
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlencode

AIM_TOKENS_PER_SECOND = 500  # with 2 workers
WARMUP_REQUESTS = 300
# High enough that no request of the run is refused: the counters are still counted.
RAISED_LIMIT = 1_000_000_000


def measure(
    base_url: str,
    license_id: str,
    scope: str,
    *,
    service: str = "portal-proxy",
    requests: int = 5000,
    clients: int = 50,
    warmup: int = WARMUP_REQUESTS,
    pids: Sequence[int] = (),
) -> dict:
    """Token figures of a portal already running at `base_url`: `warmup` requests first
    (connections, caches, routes), then `requests` of `GET /v2/token?service=&scope=` with the
    license as Basic credentials, `clients` at a time (ab, a new connection per request).
    Returns requests, ok, errors, seconds, tokens_per_s, p50_ms, p99_ms and, given the
    portal's process ids, portal_cpu_s_per_1000 (their CPU seconds per 1000 tokens issued).
    The portal's TOKEN_RATE_PER_ADDRESS and TOKEN_RATE_PER_CREDENTIAL must allow that many
    requests a minute from one address and one license, or the refusals count as errors."""
    url = f"{base_url.rstrip('/')}/v2/token?{urlencode({'service': service, 'scope': scope})}"
    authorization = "Basic " + b64encode(f"{license_id}:{license_id}".encode()).decode()
    with tempfile.TemporaryDirectory(prefix="tokens-ab-") as tmp:
        if warmup:
            ab(url, authorization, warmup, clients, Path(tmp) / "warmup.csv")
        cpu_before = _parts().cpu_seconds(pids)
        result = ab(url, authorization, requests, clients, Path(tmp) / "ab.csv")
        if pids:
            result["portal_cpu_s_per_1000"] = (_parts().cpu_seconds(pids) - cpu_before) / max(result["ok"], 1) * 1000
    return result


def _parts():
    """bench/proxy.py, whose parts (database, cache, seeding, process handling) the command
    line run uses: imported when needed, since bench/proxy.py may import this module."""
    import proxy

    return proxy


def start_portal(tmp: Path, env: dict[str, str], cleanup, workers: int) -> tuple[str, subprocess.Popen]:
    """uvicorn serving portal.asgi as the Procfile does, with `--workers N` (the parent then
    supervises N worker processes)."""
    parts = _parts()  # puts the repository on sys.path
    from tests.realparts.distribution import free_port

    port = free_port()
    command, notes = parts.uvicorn_command(port, workers)
    for note in notes:
        parts.log(note)
    log_path = tmp / f"portal-{workers}.log"
    with log_path.open("ab") as log_file:
        process = cleanup.process(
            f"portal ({workers} workers)",
            subprocess.Popen(command, cwd=parts.ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT),
        )
    url = f"http://127.0.0.1:{port}"
    parts.wait_http(f"{url}/healthz", process, "the portal", log_path)
    deadline = time.monotonic() + 30
    while workers > 1 and len(parts.children(process.pid)) < workers and time.monotonic() < deadline:
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


def measure_workers(
    tmp: Path, env: dict[str, str], cleanup, workers: int, license_id: str, scope: str, service: str, args
) -> tuple[dict, str, subprocess.Popen]:
    """The figures of a portal started here with `workers` uvicorn workers."""
    parts = _parts()
    portal, process = start_portal(tmp, env, cleanup, workers)
    pids = [process.pid, *parts.children(process.pid)]
    result = measure(
        portal, license_id, scope, service=service, requests=args.requests, clients=args.clients, pids=pids
    )
    result["workers"] = workers
    log_text = (tmp / f"portal-{workers}.log").read_text(errors="replace")
    if "ERROR" in log_text or "Traceback" in log_text:
        parts.log(f"the portal logged errors; see {tmp / f'portal-{workers}.log'} (use --keep)")
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
    parts = _parts()  # puts the repository on sys.path
    from tests.realparts.distribution import Distribution

    log = parts.log
    cleanup = parts.Cleanup()
    tmp = Path(tempfile.mkdtemp(prefix="tokens-bench-"))
    if args.keep:
        log(f"keeping {tmp}")
    else:
        cleanup.add("temp dir", lambda: shutil.rmtree(tmp, ignore_errors=True))
    load_start = os.getloadavg()[0]
    try:
        database_url, database_label = parts.make_database(tmp, cleanup, args.sqlite)
        redis_url, cache_label = parts.pick_cache()
        env = parts.portal_environment(tmp, database_url, redis_url)
        env.update(TOKEN_RATE_PER_ADDRESS=str(RAISED_LIMIT), TOKEN_RATE_PER_CREDENTIAL=str(RAISED_LIMIT))
        os.environ.clear()  # this process sets Django up too (to seed), with the portal's settings
        os.environ.update(env)
        log("starting Distribution (no auth, empty): the app's registry")
        upstream = Distribution(tmp / "distribution", "none").start()
        cleanup.add("distribution", upstream.close)
        log(f"migrating {database_label} and creating team, app, registry, release, license")
        app_slug, license_id, service = parts.seed_portal(upstream, ["small"])
        scope = f"repository:proxy/{app_slug}/{upstream.netloc.replace(':', '__')}/bench/small:pull"
        results = []
        process = None
        for workers in args.workers:
            if process is not None:
                parts.stop_process(process)  # one portal at a time: they would share the 2 CPUs
            log(f"{args.requests} token requests, {args.clients} concurrent clients, uvicorn --workers {workers}")
            result, portal, process = measure_workers(tmp, env, cleanup, workers, license_id, scope, service, args)
            results.append(result)
        report(results, args, database_label, cache_label, load_start)
        if args.hold:
            query = urlencode({"service": service, "scope": scope})
            print(f"portal {portal} (pid {process.pid}); license {license_id}; GET {portal}/v2/token?{query}")
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
