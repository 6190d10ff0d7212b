#!/usr/bin/env python3
"""Benchmark of the registry proxy against Distribution direct and nginx (not a test).

Run from the repository root:
    .venv/bin/python bench/proxy.py [--runs 5] [--sqlite] [--profile DIR] [--keep] [--hold]

It builds everything it needs under one temp dir (a throwaway PostgreSQL database, else SQLite;
var/; Distribution storage; nginx config), measures, prints a table and a one-line JSON
summary, and cleans up, also on Ctrl-C. It exits 0 whether or not the aims (issue 4,
"Benchmark", and issue 14: the pull-through cache and the token service, through bench/tokens.py) are met; a missed aim says MISSED. MB is
10^6 bytes. BENCH_POSTGRES_URL (an admin connection, default
postgres://postgres@127.0.0.1:5432/postgres) and BENCH_REDIS_URL (default
redis://127.0.0.1:6379/12; the portal uses Redis as in production when it answers) override.

Two portals run side by side as `make run` runs one (uvicorn --workers 2), on one database and
one Redis: one with the cache off (PROXY_CACHE_MAX_BYTES=0) for the figures of issue 4, one
with the cache on for those of issue 14, serving only /v2/ (PORTAL_WEB_ROLE=registry) as the web
processes behind a load balancer's /v2/ route do. The upstream is stopped last, to pull from the cache
alone. The summary is one dict of sections (`sections` in main); a new figure is one more
section there and its rows and aims in `report`.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.realparts.distribution import Distribution, free_port  # noqa: E402
from tests.realparts.images import PushedImage, build_image, push  # noqa: E402

MiB = 1024 * 1024
MB = 1_000_000
BIG_LAYER = 256 * MiB
HUGE_BLOB = 1024 * MiB
SMALL_LAYER = 16 * MiB
CONCURRENT_PULLS = 20
TOKEN_REQUESTS = 5000
TOKEN_CLIENTS = 50
AIM_TOKENS_PER_SECOND = 500
COLD_CLIENTS = 50  # concurrent first pulls of an image nobody pulled, through the cache
MANY_PULLS = 100  # concurrent pulls of the 16 MiB image, direct and through the cache
WEB_WORKERS = 2  # uvicorn --workers, as `make run` (WEB_CONCURRENCY=2)
RAISED_LIMIT = 1_000_000_000  # token requests per minute: every pull here is one license's
MANIFEST_REQUESTS = 300
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- processes and cleanup ------------------------------------------------------------------


class Cleanup:
    """Callbacks run last-in first-out, once, whatever happened."""

    def __init__(self) -> None:
        self._callbacks: list[tuple[str, Callable[[], object]]] = []

    def add(self, name: str, callback: Callable[[], object]) -> None:
        self._callbacks.append((name, callback))

    def process(self, name: str, process: subprocess.Popen) -> subprocess.Popen:
        self.add(name, lambda: stop_process(process))
        return process

    def run(self) -> None:
        while self._callbacks:
            name, callback = self._callbacks.pop()
            try:
                callback()
            except Exception as e:  # keep cleaning up the rest
                log(f"cleanup of {name} failed: {e}")


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def wait_http(url: str, process: subprocess.Popen, what: str, log_path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (loopback)
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
                raise RuntimeError(f"{what} did not start:\n{tail}") from None
            time.sleep(0.1)


# --- /proc sampling -------------------------------------------------------------------------


def rss_kib(pid: int, field_name: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (fields 14 and 15 of /proc/PID/stat)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass
class Peak:
    kib: int = 0

    @property
    def mb(self) -> float:
        return self.kib * 1024 / MB


class RssWatch:
    """Peak RSS of the portals' web processes from the kernel's own high-water mark (VmHWM):
    exact, and nothing samples while the clients measure (a sampling thread in this process
    competed with the reading client and skewed the proxy's figure). A section resets the mark
    of the processes it watches ("5" to /proc/PID/clear_refs, Linux >= 4.0) after folding the
    mark so far into each process's peak over the whole run, so both figures hold."""

    def __init__(self) -> None:
        self.peaks: dict[int, int] = {}  # pid: KiB, over the whole run
        self.resettable = True

    def fold(self, pids: list[int]) -> None:
        for pid in pids:
            try:
                self.peaks[pid] = max(self.peaks.get(pid, 0), rss_kib(pid, "VmHWM"))
            except OSError:
                pass  # gone

    @contextmanager
    def section(self, pids: list[int]) -> Iterator[Peak]:
        """The peak RSS of the largest of `pids` within the block (without a reset: since it started)."""
        self.fold(pids)
        for pid in pids:
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                self.resettable = False
        peak = Peak()
        try:
            yield peak
        finally:
            self.fold(pids)
            peak.kib = max((rss_kib(pid, "VmHWM") for pid in pids), default=0)


# --- HTTP helpers ---------------------------------------------------------------------------


def basic(user: str, password: str) -> str:
    return "Basic " + b64encode(f"{user}:{password}".encode()).decode()


def get_body(base: str, path: str, headers: dict[str, str]) -> tuple[int, int, float]:
    """(status, bytes read, seconds) for one GET, reading into a 1 MiB buffer and dropping it."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    buffer = memoryview(bytearray(MiB))
    started = time.perf_counter()
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        total = 0
        while True:
            n = response.readinto(buffer)
            if not n:
                break
            total += n
        return response.status, total, time.perf_counter() - started
    finally:
        connection.close()


def fetch_token(portal: str, license_id: str, service: str, repositories: list[str]) -> str:
    scopes = "&".join(f"scope=repository:{r}:pull" for r in repositories)
    request = urllib.request.Request(
        f"{portal}/v2/token?service={service}&{scopes}", headers={"Authorization": basic(license_id, license_id)}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
        return json.load(response)["token"]


def upload_blob(registry: Distribution, repository: str, path: Path, digest: str) -> None:
    """A monolithic blob upload (POST, then PUT with the whole body) of a file."""
    # Reference: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#post-then-put
    connection = http.client.HTTPConnection(registry.host, registry.port, timeout=300, blocksize=MiB)
    try:
        connection.request("POST", f"/v2/{repository}/blobs/uploads/", headers={"Content-Length": "0"})
        response = connection.getresponse()
        response.read()
        if response.status != 202:
            raise RuntimeError(f"blob upload start: HTTP {response.status}")
        location = urlsplit(response.headers["Location"])
        target = (
            f"{location.path}?{location.query}&digest={digest}"
            if location.query
            else f"{location.path}?digest={digest}"
        )
        with path.open("rb") as body:
            connection.request(
                "PUT",
                target,
                body=body,
                headers={"Content-Length": str(path.stat().st_size), "Content-Type": "application/octet-stream"},
            )
            response = connection.getresponse()
            response.read()
        if response.status != 201:
            raise RuntimeError(f"blob upload: HTTP {response.status}")
    finally:
        connection.close()


def random_file(path: Path, size: int) -> str:
    hasher = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size // (8 * MiB)):
            chunk = os.urandom(8 * MiB)
            hasher.update(chunk)
            out.write(chunk)
    return "sha256:" + hasher.hexdigest()


# --- the parts ------------------------------------------------------------------------------


@dataclass
class Portal:
    url: str
    pid: int  # uvicorn's supervisor; the web processes are its children

    @property
    def netloc(self) -> str:
        return urlsplit(self.url).netloc

    def workers(self) -> list[int]:
        return [pid for pid in children(self.pid) if "resource_tracker" not in cmdline(pid)]


@dataclass
class Setup:
    tmp: Path
    upstream: Distribution
    nginx_url: str
    nginx_pid: int
    portal: Portal  # the cache off (PROXY_CACHE_MAX_BYTES=0)
    cached: Portal  # the cache on
    app_slug: str
    license_id: str
    service: str
    big: PushedImage
    small: PushedImage
    fresh: PushedImage  # pulled by nobody until the cold pulls through the cache
    many: list[PushedImage]  # 16 MiB images, one for each run of MANY_PULLS (cold, then warm)
    blob_repository: str
    blob_digest: str
    database: str
    cache: str
    notes: list[str] = field(default_factory=list)
    load_start: float = field(default_factory=lambda: os.getloadavg()[0])
    rss: RssWatch = field(default_factory=RssWatch)
    pulled_at: dict[str, float] = field(default_factory=dict)  # repository: last pull through the cache

    def proxy_name(self, repository: str) -> str:
        return f"proxy/{self.app_slug}/{self.upstream.netloc.replace(':', '__')}/{repository}"


def make_database(tmp: Path, cleanup: Cleanup, force_sqlite: bool) -> tuple[str, str]:
    """(DATABASE_URL, label): a throwaway PostgreSQL database when one is reachable, else SQLite."""
    if not force_sqlite:
        try:
            import psycopg

            name = f"portal_bench_{os.getpid()}_{secrets.token_hex(3)}"
            with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')

            def drop() -> None:
                with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

            cleanup.add("database", drop)
            return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, f"postgresql ({name})"
        except Exception as e:
            log(f"PostgreSQL not usable ({e}); falling back to SQLite")
    return f"sqlite:///{tmp / 'portal.sqlite3'}", "sqlite"


def pick_cache() -> tuple[str | None, str]:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        return REDIS_URL, f"redis ({REDIS_URL})"
    except Exception:
        return None, "file cache (no Redis reachable)"


def portal_environment(tmp: Path, database_url: str, redis_url: str | None) -> dict[str, str]:
    """Production settings (DEBUG off), plus what a loopback, plain-HTTP upstream needs."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "REDIS_", "CELERY_", "PORTAL_", "REGISTRIES_", "DEBUG"))
    }
    env.setdefault("MALLOC_ARENA_MAX", "2")  # as scripts/run.sh starts the portal
    env.update(
        DATABASE_URL=database_url,
        PORTAL_VAR_DIR=str(tmp / "var"),
        DEBUG="0",
        REGISTRIES_ALLOW_HTTP="1",
        REGISTRIES_ALLOWED_PRIVATE_NETWORKS="127.0.0.0/8",
        CELERY_BROKER_URL="filesystem://localhost/",
        DJANGO_SETTINGS_MODULE="portal.settings",
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def seed_portal(upstream: Distribution, names: list[str]) -> tuple[str, str, str]:
    """Team, app, registry and license through the services, as a vendor would: (app slug, license ID, service)."""
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)

    from accounts import services as accounts
    from accounts.access import Actor
    from accounts.models import Membership, User
    from licenses import services as licenses
    from registries import services as registries

    user = User.objects.create_user("bench@example.test", secrets.token_urlsafe(16))
    team = accounts.team_create(name="Bench", admin=user)
    actor = Actor(team=team, role=Membership.objects.get(user=user, team=team).role, user=user)
    app = licenses.app_create(actor=actor, name="Bench", slug="bench")
    # No auth upstream: the credentials are stored and sent, Distribution ignores them.
    registry = registries.registry_create(
        actor=actor, provider="other", endpoint=upstream.endpoint, username="bench", password="bench"
    )
    # A license pulls only what a release on its channel lists (or a rule names): list them.
    from licenses import releases

    images = "".join(f"- {{source: {registry.name}, name: bench/{name}, tag: '1.0'}}\n" for name in names)
    releases.release_create(actor=actor, app=app, files={"app.yaml": "images:\n" + images}, promote_to="stable")
    _, license_id = licenses.license_create(actor=actor, app=app, customer_name="Bench customer")
    from django.db import connections

    connections.close_all()
    return app.slug, license_id, settings.PROXY_SERVICE


NGINX_CONF = """\
# Plain reverse proxy: proxy_buffering off, default buffer sizes.
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-tmp/client;
    proxy_temp_path {tmp}/nginx-tmp/proxy;
    fastcgi_temp_path {tmp}/nginx-tmp/fastcgi;
    uwsgi_temp_path {tmp}/nginx-tmp/uwsgi;
    scgi_temp_path {tmp}/nginx-tmp/scgi;
    upstream registry {{ server {upstream}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        location / {{
            proxy_pass http://registry;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_buffering off;
        }}
    }}
}}
"""


def start_nginx(tmp: Path, upstream: Distribution, cleanup: Cleanup) -> tuple[str, int]:
    directory = tmp / "nginx"
    (directory / "nginx-tmp").mkdir(parents=True)
    port = free_port()
    conf = directory / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=directory, upstream=upstream.netloc, port=port))
    log_path = directory / "nginx-error.log"
    with log_path.open("ab") as log_file:
        process = cleanup.process(
            "nginx",
            subprocess.Popen(
                ["nginx", "-p", str(directory), "-c", str(conf), "-e", str(log_path)],
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            ),
        )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/v2/", process, "nginx", log_path)
    return url, process.pid


def uvicorn_command(port: int, workers: int) -> tuple[list[str], list[str]]:
    """(command, notes): uvicorn serving portal.asgi as the Procfile does, with `workers`
    processes and uvloop and httptools when installed (the notes say which is missing)."""
    command = [sys.executable, "-m", "uvicorn", "portal.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers), "--no-access-log", "--no-proxy-headers"]
    notes = []
    for module, flags in (("uvloop", ["--loop", "uvloop"]), ("httptools", ["--http", "httptools"])):
        try:
            __import__(module)
            command += flags
        except ImportError:
            notes.append(f"{module} not installed: uvicorn uses its default")
    return command, notes


def start_portal(tmp: Path, name: str, env: dict[str, str], cleanup: Cleanup) -> tuple[Portal, list[str]]:
    """uvicorn serving portal.asgi as the Procfile does under `make run` (WEB_WORKERS processes),
    with uvloop and httptools when installed; returns once every worker has warmed up."""
    port = free_port()
    command, notes = uvicorn_command(port, WEB_WORKERS)
    log_path = tmp / f"{name}.log"
    with log_path.open("ab") as log_file:
        process = cleanup.process(
            name, subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        )
    portal = Portal(f"http://127.0.0.1:{port}", process.pid)
    wait_http(f"{portal.url}/healthz", process, name, log_path, timeout=60)
    # The socket is shared: the first worker up answers; the others are still warming up
    # (portal/warmup.py) until their CPU time stops growing.
    deadline = time.monotonic() + 60
    before = -1.0
    while time.monotonic() < deadline:
        workers = portal.workers()
        spent = cpu_seconds(workers) if len(workers) == WEB_WORKERS else -1.0
        if before >= 0 and spent - before < 0.02:
            break
        before = spent
        time.sleep(0.5)
    return portal, notes


def build_setup(tmp: Path, cleanup: Cleanup, force_sqlite: bool, runs: int) -> Setup:
    database_url, database_label = make_database(tmp, cleanup, force_sqlite)
    redis_url, cache_label = pick_cache()
    env = portal_environment(tmp, database_url, redis_url)
    env.update(TOKEN_RATE_PER_ADDRESS=str(RAISED_LIMIT), TOKEN_RATE_PER_CREDENTIAL=str(RAISED_LIMIT))
    os.environ.clear()  # this process sets Django up too (to seed), with the portal's settings
    os.environ.update(env)

    log("starting Distribution (no auth)")
    upstream = Distribution(tmp / "distribution", "none").start()
    cleanup.add("distribution", upstream.close)

    log(
        f"building and pushing bench/big (one 256 MiB layer), bench/small, bench/fresh, bench/many-0..{runs - 1} (16 MiB layers)"
    )
    images = {}
    many = [(f"many-{i}", 1, SMALL_LAYER) for i in range(runs)]
    for name, layers, size in (("big", 1, BIG_LAYER), ("small", 1, SMALL_LAYER), ("fresh", 2, SMALL_LAYER), *many):
        layout = tmp / f"layout-{name}"
        images[name] = push(
            build_image(layout, tag="1.0", seed=f"{name}-{secrets.token_hex(4)}", layers=layers, layer_size=size),
            upstream.netloc,
            f"bench/{name}",
        )
        shutil.rmtree(layout)
    log("writing and uploading a 1 GiB random blob to bench/blob")
    source = tmp / "blob.bin"
    blob_digest = random_file(source, HUGE_BLOB)
    upload_blob(upstream, "bench/blob", source, blob_digest)
    source.unlink()

    log(f"migrating {database_label} and creating team, app, registry, license through the services")
    app_slug, license_id, service = seed_portal(upstream, [*images, "blob"])

    log(f"starting nginx and two portals (uvicorn --workers {WEB_WORKERS}), the cache off and on")
    nginx_url, nginx_pid = start_nginx(tmp, upstream, cleanup)
    portal, notes = start_portal(tmp, "portal", {**env, "PROXY_CACHE_MAX_BYTES": "0"}, cleanup)
    # The cache-on portal serves only /v2/, as the web processes a load balancer sends /v2/ to
    # (docs/deployment.md): the production shape of the traffic measured with it.
    cached, _ = start_portal(tmp, "portal-cached", {**env, "PORTAL_WEB_ROLE": "registry"}, cleanup)
    return Setup(
        tmp=tmp,
        upstream=upstream,
        nginx_url=nginx_url,
        nginx_pid=nginx_pid,
        portal=portal,
        cached=cached,
        app_slug=app_slug,
        license_id=license_id,
        service=service,
        big=images["big"],
        small=images["small"],
        fresh=images["fresh"],
        many=[images[name] for name, _, _ in many],
        blob_repository="bench/blob",
        blob_digest=blob_digest,
        database=database_label,
        cache=cache_label,
        notes=notes,
    )


# --- measurements ---------------------------------------------------------------------------


def image_bytes(image: PushedImage) -> int:
    manifest = json.loads(image.manifest)
    return manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"]) + len(image.manifest)


def skopeo_copy(source: str, destination: Path, creds: str | None) -> tuple[subprocess.CompletedProcess, float, float]:
    """(result, wall seconds, skopeo's own CPU seconds)."""
    command = ["skopeo", "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false"]
    if creds:
        command += ["--src-creds", creds]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run([*command, source, f"dir:{destination}"], capture_output=True, text=True, timeout=240)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return result, seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def pulled_layers(directory: Path) -> list[str]:
    return [layer["digest"] for layer in json.loads((directory / "manifest.json").read_text())["layers"]]


class Profiler:
    """py-spy record on the portal process around a section, when --profile DIR is given."""

    def __init__(self, directory: Path | None, pid: int) -> None:
        self.directory, self.pid = directory, pid
        self.binary = shutil.which("py-spy") if directory else None
        if directory and not self.binary:
            log("--profile: py-spy not found on PATH; not profiling")

    def section(self, name: str) -> Callable[[], None]:
        if not self.binary or not self.directory:
            return lambda: None
        self.directory.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            [self.binary, "record", "--pid", str(self.pid), "--rate", "250", "--nonblocking", "--format", "raw",
             "--output", str(self.directory / f"{name}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1.0)  # let it attach

        def stop() -> None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()

        return stop


def measure_skopeo(s: Setup, runs: int, profiler: Profiler) -> dict:
    size = image_bytes(s.big)
    direct_ref = f"docker://{s.upstream.netloc}/{s.big.reference}"
    proxy_ref = f"docker://{s.portal.netloc}/{s.proxy_name(s.big.repository)}:{s.big.tag}"
    times: dict[str, list[float]] = {"direct": [], "proxy": []}
    errors = 0
    stop = profiler.section("skopeo")
    ratios = []
    for i in range(runs):
        pair = {}
        for path, ref, creds in (("direct", direct_ref, None), ("proxy", proxy_ref, f"{s.license_id}:{s.license_id}")):
            out = s.tmp / f"skopeo-{path}-{i}"
            result, seconds, _ = skopeo_copy(ref, out, creds)
            if result.returncode != 0 or pulled_layers(out) != list(s.big.layer_digests):
                errors += 1
                log(f"skopeo {path} failed: {result.stderr[-500:]}")
            else:
                times[path].append(seconds)
                pair[path] = seconds
            shutil.rmtree(out, ignore_errors=True)
        if len(pair) == 2:
            ratios.append(pair["direct"] / pair["proxy"])
    stop()
    mbps = {k: size / MB / statistics.median(v) if v else 0.0 for k, v in times.items()}
    return {"bytes": size, "direct_mbps": mbps["direct"], "proxy_mbps": mbps["proxy"], "errors": errors,
            "ratio": paired_ratio(ratios)}  # fmt: skip


def paired_ratio(ratios: list[float]) -> float:
    """The median of each run's ratio: the two sides of a pair run back to back, so drift in
    what else the machine does cancels out better than in a ratio of two medians."""
    return statistics.median(ratios) if ratios else 0.0


def measure_blob(s: Setup, runs: int, profiler: Profiler) -> dict:
    path = f"/v2/{s.blob_repository}/blobs/{s.blob_digest}"
    proxy_path = f"/v2/{s.proxy_name(s.blob_repository)}/blobs/{s.blob_digest}"
    token = fetch_token(s.portal.url, s.license_id, s.service, [s.proxy_name(s.blob_repository)])
    get_body(s.upstream.url, path, {})  # into the page cache
    rates: dict[str, list[float]] = {"direct": [], "nginx": [], "proxy": []}
    cpu: dict[str, list[float]] = {"nginx": [], "proxy": []}
    errors = 0
    peak = 0
    workers = s.portal.workers()
    baseline = max(rss_kib(pid) for pid in workers)
    targets = {
        "direct": (s.upstream.url, path, {}, []),
        "nginx": (s.nginx_url, path, {}, children(s.nginx_pid)),
        "proxy": (s.portal.url, proxy_path, {"Authorization": f"Bearer {token}"}, workers),
    }
    stop = profiler.section("blob")
    ratios = []
    for _ in range(runs):
        run: dict[str, float] = {}
        for name, (base, url_path, headers, pids) in targets.items():
            cpu_before = cpu_seconds(pids)
            if name == "proxy":
                with s.rss.section(workers) as rss:
                    status, size, seconds = get_body(base, url_path, headers)
                peak = max(peak, rss.kib)
            else:
                status, size, seconds = get_body(base, url_path, headers)
            if status != 200 or size != HUGE_BLOB:
                errors += 1
                log(f"blob GET via {name}: HTTP {status}, {size} bytes")
                continue
            rates[name].append(size / MB / seconds)
            run[name] = size / MB / seconds
            if name in cpu:
                cpu[name].append((cpu_seconds(pids) - cpu_before) / (size / (1024 * MiB)))
        if "nginx" in run and "proxy" in run:
            ratios.append(run["proxy"] / run["nginx"])
    stop()
    median = {k: statistics.median(v) if v else 0.0 for k, v in rates.items()}
    return {
        "direct_mbps": median["direct"],
        "nginx_mbps": median["nginx"],
        "proxy_mbps": median["proxy"],
        "proxy_vs_nginx": paired_ratio(ratios),
        "nginx_cpu_s_per_gib": statistics.median(cpu["nginx"]) if cpu["nginx"] else 0.0,
        "proxy_cpu_s_per_gib": statistics.median(cpu["proxy"]) if cpu["proxy"] else 0.0,
        "rss_baseline_mb": baseline * 1024 / MB,
        "rss_peak_mb": peak * 1024 / MB,
        "errors": errors,
    }


def concurrent_pulls(s: Setup, ref: str, image: PushedImage, pulls: int, portal: Portal | None) -> dict:
    """`pulls` skopeo copies of `ref` started at once; through `portal` (its workers' peak RSS
    measured) or, with None, direct from Distribution."""
    command = ["skopeo", "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false"]
    if portal is not None:
        command += ["--src-creds", f"{s.license_id}:{s.license_id}"]
    outs = [s.tmp / f"concurrent-{i}" for i in range(pulls)]
    with s.rss.section(portal.workers() if portal else []) as rss:
        started = time.perf_counter()
        processes = [
            subprocess.Popen(
                [*command, ref, f"dir:{out}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            for out in outs
        ]
        failures = []
        for process, out in zip(processes, outs, strict=True):
            try:
                _, stderr = process.communicate(timeout=300)
            except subprocess.TimeoutExpired:
                process.kill()
                stderr = "timed out"
            if process.returncode != 0 or pulled_layers(out) != list(image.layer_digests):
                failures.append(stderr[-300:])
        seconds = time.perf_counter() - started
    for out in outs:
        shutil.rmtree(out, ignore_errors=True)
    for failure in failures[:3]:
        log(f"concurrent pull failed: {failure}")
    size = image_bytes(image) * pulls
    return {"pulls": pulls, "errors": len(failures), "seconds": seconds, "mbps": size / MB / seconds,
            "rss_peak_mb": rss.mb}  # fmt: skip


def measure_concurrency(s: Setup, profiler: Profiler) -> dict:
    ref = f"docker://{s.portal.netloc}/{s.proxy_name(s.small.repository)}:{s.small.tag}"
    stop = profiler.section("concurrent")
    try:
        return concurrent_pulls(s, ref, s.small, CONCURRENT_PULLS, s.portal)
    finally:
        stop()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def measure_manifests(s: Setup, profiler: Profiler) -> dict:
    """Sequential GETs on one keep-alive connection each, direct and proxy alternating."""
    token = fetch_token(s.portal.url, s.license_id, s.service, [s.proxy_name(s.small.repository)])
    targets = {
        "direct": (s.upstream, f"/v2/{s.small.repository}/manifests/{s.small.tag}", {}),
        "proxy": (
            urlsplit(s.portal.url),
            f"/v2/{s.proxy_name(s.small.repository)}/manifests/{s.small.tag}",
            {"Authorization": f"Bearer {token}"},
        ),
    }
    connections = {}
    for name, (where, _, _) in targets.items():
        host, port = (where.host, where.port) if isinstance(where, Distribution) else (where.hostname, where.port)
        connections[name] = http.client.HTTPConnection(host, port, timeout=30)
    latencies: dict[str, list[float]] = {"direct": [], "proxy": []}
    errors = 0
    stop = profiler.section("manifests")
    try:
        for i in range(20 + MANIFEST_REQUESTS):  # the first 20 warm up connections and caches
            for name, (_, path, headers) in targets.items():
                connection = connections[name]
                started = time.perf_counter()
                connection.request("GET", path, headers={"Accept": MANIFEST_TYPES, **headers})
                response = connection.getresponse()
                body = response.read()
                elapsed = time.perf_counter() - started
                if response.status != 200 or body != s.small.manifest:
                    errors += 1
                    continue
                if i >= 20:
                    latencies[name].append(elapsed * 1000)
    finally:
        stop()
        for connection in connections.values():
            connection.close()
    result = {"requests": MANIFEST_REQUESTS, "errors": errors}
    for name, values in latencies.items():
        result[f"{name}_p50_ms"] = statistics.median(values) if values else 0.0
        result[f"{name}_p99_ms"] = percentile(values, 99) if values else 0.0
    result["overhead_p50_ms"] = result["proxy_p50_ms"] - result["direct_p50_ms"]
    return result


# --- the pull-through cache (issue 14) ------------------------------------------------------


def cached_ref(s: Setup, image: PushedImage) -> str:
    return f"docker://{s.cached.netloc}/{s.proxy_name(image.repository)}:{image.tag}"


def measure_warm(s: Setup, runs: int) -> dict:
    """skopeo copy of the 256 MiB image: once through the cache portal (cold: the cache fills
    while the bytes pass), then direct and from the warm cache in pairs, with skopeo's own CPU
    time (how near it is to a whole CPU, the bound of both); then plain GETs of its layer, direct
    and from the warm cache in pairs: the part of a pull the server alone decides."""
    size = image_bytes(s.big)
    creds = f"{s.license_id}:{s.license_id}"
    direct_ref, proxy_ref = f"docker://{s.upstream.netloc}/{s.big.reference}", cached_ref(s, s.big)
    errors = 0
    busy: dict[str, list[float]] = {"direct": [], "warm": []}  # skopeo CPU seconds / wall seconds

    def pull(path: str, ref: str, creds: str | None, i: int) -> float | None:
        nonlocal errors
        out = s.tmp / f"skopeo-{path}-{i}"
        result, seconds, cpu = skopeo_copy(ref, out, creds)
        ok = result.returncode == 0 and pulled_layers(out) == list(s.big.layer_digests)
        shutil.rmtree(out, ignore_errors=True)
        if not ok:
            errors += 1
            log(f"skopeo {path} failed: {result.stderr[-500:]}")
            return None
        if path in busy:
            busy[path].append(cpu / seconds)
        return seconds

    cold = pull("cold", proxy_ref, creds, 0)
    times: dict[str, list[float]] = {"direct": [], "warm": []}
    ratios = []
    for i in range(runs):
        pair = {"direct": pull("direct", direct_ref, None, i), "warm": pull("warm", proxy_ref, creds, i)}
        for k, v in pair.items():
            if v is not None:
                times[k].append(v)
        if None not in pair.values():
            ratios.append(pair["direct"] / pair["warm"])
    s.pulled_at[s.big.repository] = time.monotonic()

    layer, layer_size = s.big.layer_digests[0], json.loads(s.big.manifest)["layers"][0]["size"]
    token = fetch_token(s.cached.url, s.license_id, s.service, [s.proxy_name(s.big.repository)])
    gets = {
        "direct": (s.upstream.url, f"/v2/{s.big.repository}/blobs/{layer}", {}),
        "warm": (s.cached.url, f"/v2/{s.proxy_name(s.big.repository)}/blobs/{layer}", {"Authorization": f"Bearer {token}"}),
    }  # fmt: skip
    get_rates: dict[str, list[float]] = {"direct": [], "warm": []}
    get_ratios = []
    for _ in range(runs):
        run = {}
        for label, (base, path, headers) in gets.items():
            status, got, seconds = get_body(base, path, headers)
            if status != 200 or got != layer_size:
                errors += 1
                log(f"layer GET {label}: HTTP {status}, {got} bytes")
                continue
            run[label] = seconds
            get_rates[label].append(layer_size / MB / seconds)
        if len(run) == 2:
            get_ratios.append(run["direct"] / run["warm"])
    direct = statistics.median(times["direct"]) if times["direct"] else 0.0
    return {
        "bytes": size, "errors": errors,
        "direct_mbps": size / MB / direct if direct else 0.0,
        "cold_mbps": size / MB / cold if cold else 0.0,
        "warm_mbps": size / MB / statistics.median(times["warm"]) if times["warm"] else 0.0,
        "cold_ratio": direct / cold if cold and direct else 0.0,  # one cold pull against the direct median
        "warm_ratio": paired_ratio(ratios),  # direct seconds / cached seconds, per pair
        "skopeo_busy": {k: statistics.median(v) if v else 0.0 for k, v in busy.items()},
        "get_direct_mbps": statistics.median(get_rates["direct"]) if get_rates["direct"] else 0.0,
        "get_warm_mbps": statistics.median(get_rates["warm"]) if get_rates["warm"] else 0.0,
        "get_ratio": paired_ratio(get_ratios),
    }  # fmt: skip


def upstream_gets(registry: Distribution, repository: str, kind: str, reference: str) -> int:
    """GETs of /v2/<repository>/<kind>/<reference> the upstream answered 200, from its access
    log (as tests/proxy/test_cache.py counts them)."""
    pattern = re.compile(rf'"GET /v2/{re.escape(repository)}/{kind}/{re.escape(reference)} HTTP/1\.1" 200 ')
    return sum(1 for line in registry.log_path.read_text(errors="replace").splitlines() if pattern.search(line))


def http_pull(portal: Portal, name: str, tag: str, token: str) -> str:
    """A pull as plain GETs on one connection: the manifest by tag, then the config and each
    layer, every blob's digest checked. "" when it all arrived, else what went wrong."""
    connection = http.client.HTTPConnection(*portal.netloc.split(":"), timeout=300)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        connection.request("GET", f"/v2/{name}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES, **headers})
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            return f"manifest: HTTP {response.status}"
        manifest = json.loads(body)
        for descriptor in [manifest["config"], *manifest["layers"]]:
            connection.request("GET", f"/v2/{name}/blobs/{descriptor['digest']}", headers=headers)
            response = connection.getresponse()
            hasher = hashlib.sha256()
            while chunk := response.read(MiB):
                hasher.update(chunk)
            if response.status != 200 or "sha256:" + hasher.hexdigest() != descriptor["digest"]:
                return f"blob {descriptor['digest'][:19]}: HTTP {response.status}, digest {hasher.hexdigest()[:12]}"
        return ""
    except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
        return f"{type(e).__name__}: {e}"
    finally:
        connection.close()


def measure_cold_fanout(s: Setup) -> dict:
    """COLD_CLIENTS plain-HTTP pulls of an image nobody pulled, started at once through the
    cache portal; how often the upstream sent each blob (the aim: once)."""
    name = s.proxy_name(s.fresh.repository)
    token = fetch_token(s.cached.url, s.license_id, s.service, [name])
    manifest = json.loads(s.fresh.manifest)
    targets = [
        ("manifests", s.fresh.tag),
        *(("blobs", d) for d in [manifest["config"]["digest"], *s.fresh.layer_digests]),
    ]

    def upstream_counts() -> list[int]:  # before and after: pushing the image GETs its manifest too
        return [upstream_gets(s.upstream, s.fresh.repository, kind, reference) for kind, reference in targets]

    before = upstream_counts()
    barrier = threading.Barrier(COLD_CLIENTS)
    errors: list[str] = []

    def client() -> None:
        barrier.wait()
        if failure := http_pull(s.cached, name, s.fresh.tag, token):
            errors.append(failure)

    threads = [threading.Thread(target=client) for _ in range(COLD_CLIENTS)]
    with s.rss.section(s.cached.workers()) as rss:
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
    s.pulled_at[s.fresh.repository] = time.monotonic()
    for failure in errors[:3]:
        log(f"cold pull failed: {failure}")
    time.sleep(0.5)  # the access log's last lines
    fetched = [after - was for after, was in zip(upstream_counts(), before, strict=True)]
    return {
        "clients": COLD_CLIENTS, "errors": len(errors), "seconds": seconds,
        "mbps": image_bytes(s.fresh) * COLD_CLIENTS / MB / seconds, "blobs": len(targets) - 1,
        "upstream_gets_per_blob": fetched[1:], "upstream_manifest_gets": fetched[0], "rss_peak_mb": rss.mb,
    }  # fmt: skip


def measure_many(s: Setup) -> dict:
    """MANY_PULLS concurrent skopeo pulls of a 16 MiB image, in each run one nobody pulled yet:
    direct, then through the cache portal cold (the first pulls of it there), then warm."""
    times: dict[str, list[float]] = {"direct": [], "cold": [], "warm": []}
    errors = dict.fromkeys(times, 0)
    peak = dict.fromkeys(times, 0.0)
    ratios: dict[str, list[float]] = {"cold": [], "warm": []}
    for i, image in enumerate(s.many):
        log(f"  run {i + 1}: direct, cold, warm")
        run = {}
        for label, ref, portal in (("direct", f"docker://{s.upstream.netloc}/{image.reference}", None),
                                   ("cold", cached_ref(s, image), s.cached), ("warm", cached_ref(s, image), s.cached)):  # fmt: skip
            result = concurrent_pulls(s, ref, image, MANY_PULLS, portal)
            errors[label] += result["errors"]
            peak[label] = max(peak[label], result["rss_peak_mb"])
            times[label].append(result["seconds"])
            run[label] = result["seconds"]
        s.pulled_at[image.repository] = time.monotonic()
        for label in ratios:
            ratios[label].append(run["direct"] / run[label])  # throughput through the cache / direct
    size = image_bytes(s.many[0]) * MANY_PULLS
    result = {
        label: {"pulls": MANY_PULLS, "errors": errors[label], "seconds": statistics.median(times[label]),
                "mbps": size / MB / statistics.median(times[label]), "rss_peak_mb": peak[label]}
        for label in times
    }  # fmt: skip
    result["cold_vs_direct"] = paired_ratio(ratios["cold"])
    result["warm_vs_direct"] = paired_ratio(ratios["warm"])
    return result


def measure_upstream_down(s: Setup) -> dict:
    """With Distribution stopped, skopeo copies by tag of every image pulled through the cache
    portal; the last, as nothing after it needs the upstream."""
    s.upstream.stop()
    ttl = int(os.environ.get("PROXY_TAG_TTL", "60"))
    result: dict = {"ok": 0, "failed": 0, "tag_ttl_s": ttl, "tag_ages_s": {}}
    for image in (s.big, s.fresh, s.many[-1]):
        age = time.monotonic() - s.pulled_at.get(image.repository, 0)
        out = s.tmp / f"down-{image.repository.replace('/', '-')}"
        completed, _, _ = skopeo_copy(cached_ref(s, image), out, f"{s.license_id}:{s.license_id}")
        ok = completed.returncode == 0 and pulled_layers(out) == list(image.layer_digests)
        shutil.rmtree(out, ignore_errors=True)
        result["ok" if ok else "failed"] += 1
        result["tag_ages_s"][image.repository] = round(age)
        if not ok:
            log(f"pull of {image.repository} with the upstream stopped failed: {completed.stderr[-300:]}")
    return result


def measure_tokens(s: Setup) -> dict:
    """bench/tokens.py's figures, against the cache-on portal (uvicorn --workers 2, as make run)."""
    from tokens import measure  # bench/tokens.py

    scope = f"repository:{s.proxy_name(s.small.repository)}:pull"
    pids = [s.cached.pid, *s.cached.workers()]
    return measure(s.cached.url, s.license_id, scope, service=s.service, requests=TOKEN_REQUESTS,
                   clients=TOKEN_CLIENTS, pids=pids)  # fmt: skip


def rss_figures(s: Setup) -> dict:
    """Each web process's peak RSS over the whole run (VmHWM, folded across every reset)."""
    figures = {}
    for label, portal in (("no_cache", s.portal), ("cache", s.cached)):
        workers = portal.workers()
        s.rss.fold(workers)
        figures[f"{label}_mb"] = [s.rss.peaks.get(pid, 0) * 1024 / MB for pid in workers]
    figures["max_mb"] = max((v for peaks in figures.values() for v in peaks), default=0.0)
    return figures


# --- report ---------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(s: Setup, sections: dict[str, dict], runs: int, seconds: float) -> None:
    skopeo, blob, concurrent, manifests = (sections[k] for k in ("skopeo", "blob", "concurrent", "manifests"))
    warm, fanout, many, down, rss, tokens = (
        sections[k] for k in ("cache_skopeo", "cold_fanout", "many", "upstream_down", "rss", "tokens")
    )
    per_blob = fanout["upstream_gets_per_blob"]
    aims = {
        "skopeo_ratio": skopeo["ratio"] >= 0.9 and skopeo["errors"] == 0,
        "blob_proxy_vs_nginx": blob["proxy_vs_nginx"] >= 0.8 and blob["errors"] == 0,
        "concurrent_errors": concurrent["errors"] == 0,
        "manifest_overhead_p50": manifests["overhead_p50_ms"] < 5 and manifests["errors"] == 0,
        "rss_peak": 0 < blob["rss_peak_mb"] < 150,
        "cache_warm_vs_direct": warm["warm_ratio"] >= 1.0 and warm["errors"] == 0,
        "cache_one_fetch_per_blob": fanout["errors"] == 0 and bool(per_blob) and set(per_blob) == {1},
        "cache_many_warm": many["warm"]["errors"] == 0 and many["warm_vs_direct"] >= 0.8,
        "cache_many_cold": many["cold"]["errors"] == 0 and many["cold_vs_direct"] >= 0.8,
        "cache_upstream_down": down["failed"] == 0 and down["ok"] > 0,
        "rss_per_process": 0 < max(rss["cache_mb"], default=0) < 150,
        "tokens_per_s": tokens["tokens_per_s"] >= AIM_TOKENS_PER_SECOND and tokens["errors"] == 0,
    }
    ages = ", ".join(f"{k.split('/')[-1]} {v} s" for k, v in down["tag_ages_s"].items())
    rows = [
        ("skopeo copy 256 MiB image, direct", f"{skopeo['direct_mbps']:.0f} MB/s", "", ""),
        ("skopeo copy 256 MiB image, proxy, cache off", f"{skopeo['proxy_mbps']:.0f} MB/s", "", ""),
        ("  proxy / direct", f"{skopeo['ratio']:.2f}x", ">= 0.90x", verdict(aims["skopeo_ratio"])),
        ("GET 1 GiB blob, direct", f"{blob['direct_mbps']:.0f} MB/s", "", ""),
        ("GET 1 GiB blob, nginx", f"{blob['nginx_mbps']:.0f} MB/s", "", ""),
        ("GET 1 GiB blob, proxy, cache off", f"{blob['proxy_mbps']:.0f} MB/s", "", ""),
        ("  proxy / nginx", f"{blob['proxy_vs_nginx']:.2f}x", ">= 0.80x", verdict(aims["blob_proxy_vs_nginx"])),
        ("  proxy / direct", f"{blob['proxy_mbps'] / blob['direct_mbps']:.2f}x" if blob["direct_mbps"] else "-", "", ""),
        ("  CPU per GiB, nginx / proxy", f"{blob['nginx_cpu_s_per_gib']:.2f} s / {blob['proxy_cpu_s_per_gib']:.2f} s", "", ""),
        ("proxy RSS while 1 GiB streams (peak)", f"{blob['rss_peak_mb']:.0f} MB", "< 150 MB", verdict(aims["rss_peak"])),
        ("  (RSS before the stream)", f"{blob['rss_baseline_mb']:.0f} MB", "", ""),
        (f"{concurrent['pulls']} concurrent pulls of 16 MiB image, proxy, cache off",
         f"{concurrent['seconds']:.1f} s, {concurrent['errors']} errors", "0 errors", verdict(aims["concurrent_errors"])),
        ("  aggregate throughput / peak RSS", f"{concurrent['mbps']:.0f} MB/s / {concurrent['rss_peak_mb']:.0f} MB", "", ""),
        ("manifest GET p50, direct / proxy, cache off", f"{manifests['direct_p50_ms']:.2f} / {manifests['proxy_p50_ms']:.2f} ms", "", ""),
        ("manifest GET p99, direct / proxy, cache off", f"{manifests['direct_p99_ms']:.2f} / {manifests['proxy_p99_ms']:.2f} ms", "", ""),
        ("  proxy overhead p50", f"{manifests['overhead_p50_ms']:.2f} ms", "< 5 ms", verdict(aims["manifest_overhead_p50"])),
        ("cache: skopeo 256 MiB image, direct (paired)", f"{warm['direct_mbps']:.0f} MB/s", "", ""),
        ("cache: skopeo 256 MiB image, cold (1 pull, fills)", f"{warm['cold_mbps']:.0f} MB/s, {warm['cold_ratio']:.2f}x direct", "", ""),
        ("cache: skopeo 256 MiB image, warm", f"{warm['warm_mbps']:.0f} MB/s", "", ""),
        ("  direct s / warm cache s", f"{warm['warm_ratio']:.2f}x, {warm['errors']} errors", ">= 1.00x",
         verdict(aims["cache_warm_vs_direct"])),
        ("  skopeo's CPU / wall time, direct / warm", " / ".join(f"{v:.2f}" for v in warm["skopeo_busy"].values()), "", ""),
        ("cache: GET of the 256 MiB layer, direct / warm cache",
         f"{warm['get_direct_mbps']:.0f} / {warm['get_warm_mbps']:.0f} MB/s, {warm['get_ratio']:.2f}x", "", ""),
        (f"cache: {fanout['clients']} concurrent cold pulls (HTTP GETs), 2x16 MiB",
         f"{fanout['seconds']:.1f} s, {fanout['mbps']:.0f} MB/s, {fanout['errors']} errors", "", ""),
        ("  upstream fetches per blob (config, layers)", " / ".join(str(n) for n in per_blob) or "-", "1 each",
         verdict(aims["cache_one_fetch_per_blob"])),
        ("  upstream manifest GETs by tag / peak RSS", f"{fanout['upstream_manifest_gets']} / {fanout['rss_peak_mb']:.0f} MB", "", ""),
    ]  # fmt: skip
    for label in ("direct", "cold", "warm"):
        m = many[label]
        aim, status = ("", "") if label == "direct" else (
            ">= 0.80x, 0 err", verdict(aims[f"cache_many_{label}"]))  # fmt: skip
        ratio = "" if label == "direct" else f", {many[f'{label}_vs_direct']:.2f}x direct"
        rows.append((f"cache: {m['pulls']} concurrent skopeo pulls 16 MiB (new image a run), {label}",
                     f"{m['mbps']:.0f} MB/s{ratio}, {m['errors']} errors, {m['seconds']:.1f} s", aim, status))  # fmt: skip
    rows += [
        ("cache: pulls by tag, upstream stopped", f"{down['ok']} ok, {down['failed']} failed", "0 failed",
         verdict(aims["cache_upstream_down"])),
        (f"  tag age (PROXY_TAG_TTL {down['tag_ttl_s']} s)", ages, "", ""),
        (f"peak RSS per web process serving /v2/, whole run ({WEB_WORKERS} workers, cache on, role registry)",
         " ".join(f"{v:.0f}" for v in rss["cache_mb"]) + " MB", "< 150 MB", verdict(aims["rss_per_process"])),
        ("  the same, cache off, role all (pages, API and /v2/)", " ".join(f"{v:.0f}" for v in rss["no_cache_mb"])
         + " MB", "", ""),
        (f"token service, {TOKEN_CLIENTS} clients, {WEB_WORKERS} workers",
         f"{tokens['tokens_per_s']:.0f} tokens/s, {tokens['errors']} errors", f">= {AIM_TOKENS_PER_SECOND}/s",
         verdict(aims["tokens_per_s"])),
        ("  p50 / p99, portal CPU per 1000 tokens", f"{tokens['p50_ms']:.0f} / {tokens['p99_ms']:.0f} ms, "
         f"{tokens.get('portal_cpu_s_per_1000', 0):.2f} s", "", ""),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    aim_width = max(len(r[2]) for r in rows)
    print()
    print(
        f"Registry proxy benchmark ({runs} runs each; medians, ratios the median of each run's; {os.cpu_count()} CPUs; "
        f"database {s.database}; cache {s.cache}; two portals of uvicorn --workers {WEB_WORKERS}, the cache off "
        "(PROXY_CACHE_MAX_BYTES=0) and on)"
    )
    print(f"{'figure'.ljust(width)}  {'value'.ljust(value_width)}  {'aim'.ljust(aim_width)}  status")
    print("-" * (width + value_width + aim_width + 12))
    for name, value, aim, status in rows:
        print(f"{name.ljust(width)}  {value.ljust(value_width)}  {aim.ljust(aim_width)}  {status}")
    print(
        f"load average (1 min): {s.load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end; other work skews the figures"
    )
    if not s.rss.resettable:
        s.notes.append("VmHWM could not be reset: each section's peak RSS is the peak since the process started")
    for note in s.notes:
        print(f"note: {note}")
    missed = [k for k, ok in aims.items() if not ok]
    print(f"aims missed: {', '.join(missed)}" if missed else "all aims met")
    summary = {
        **sections,
        "missed": missed, "runs": runs, "database": s.database, "cache": s.cache, "seconds": round(seconds, 1),
        "load": [round(s.load_start, 2), round(os.getloadavg()[0], 2)],
    }  # fmt: skip
    print(json.dumps(summary, separators=(",", ":")))


def rounded(value: object) -> object:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def hold(s: Setup) -> None:
    """Print where everything is and wait for Ctrl-C (for profiling by hand)."""
    blob = s.proxy_name(s.blob_repository)
    print(f"upstream {s.upstream.url}  nginx {s.nginx_url}  portal {s.portal.url} (pid {s.portal.pid}, cache off)")
    print(f"portal with the cache: {s.cached.url} (pid {s.cached.pid}); the upstream is stopped")
    print(f"license {s.license_id}  temp dir {s.tmp}")
    print(f"proxy blob: {s.portal.url}/v2/{blob}/blobs/{s.blob_digest}")
    print(f"proxy manifest: {s.portal.url}/v2/{s.proxy_name(s.small.repository)}/manifests/{s.small.tag}")
    print("holding; Ctrl-C to stop and clean up", flush=True)
    while True:
        time.sleep(3600)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="repetitions of the skopeo and 1 GiB measurements")
    parser.add_argument("--sqlite", action="store_true", help="use a SQLite file instead of a PostgreSQL database")
    parser.add_argument("--profile", type=Path, help="record py-spy profiles of the portal per section into DIR")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs) after the run")
    parser.add_argument("--hold", action="store_true", help="after measuring, keep everything running until Ctrl-C")
    args = parser.parse_args()

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)  # also when started with SIGINT ignored (a background job)
    started = time.monotonic()
    cleanup = Cleanup()
    tmp = Path(tempfile.mkdtemp(prefix="proxy-bench-"))
    if args.keep:
        log(f"keeping {tmp}")
    else:
        cleanup.add("temp dir", lambda: shutil.rmtree(tmp, ignore_errors=True))
    try:
        s = build_setup(tmp, cleanup, args.sqlite, args.runs)
        profiler = Profiler(args.profile, s.portal.pid)
        sections: dict[str, dict] = {}
        log(f"skopeo copy of the 256 MiB image, direct and through the proxy, cache off ({args.runs}x each)")
        sections["skopeo"] = measure_skopeo(s, args.runs, profiler)
        log(f"GET of the 1 GiB blob, direct, nginx and proxy, cache off ({args.runs}x each)")
        sections["blob"] = measure_blob(s, args.runs, profiler)
        log(f"{CONCURRENT_PULLS} concurrent pulls of the 16 MiB image through the proxy, cache off")
        sections["concurrent"] = measure_concurrency(s, profiler)
        log(f"manifest latency, {MANIFEST_REQUESTS} GETs each, direct and proxy, cache off")
        sections["manifests"] = measure_manifests(s, profiler)
        log(f"cache: skopeo copy of the 256 MiB image, cold once, then direct and warm ({args.runs}x each)")
        sections["cache_skopeo"] = measure_warm(s, args.runs)
        log(f"cache: {COLD_CLIENTS} concurrent cold pulls of bench/fresh (plain HTTP GETs)")
        sections["cold_fanout"] = measure_cold_fanout(s)
        log(f"cache: {MANY_PULLS} concurrent pulls of a 16 MiB image, direct, cold and warm ({args.runs}x each)")
        sections["many"] = measure_many(s)
        log(f"token service: {TOKEN_REQUESTS} GET /v2/token, {TOKEN_CLIENTS} clients, of the portal with 2 workers")
        sections["tokens"] = measure_tokens(s)
        log("cache: pulls by tag with the upstream stopped")
        sections["upstream_down"] = measure_upstream_down(s)
        sections["rss"] = rss_figures(s)
        report(s, {k: rounded(v) for k, v in sections.items()}, args.runs, time.monotonic() - started)
        for name in ("portal", "portal-cached"):
            if "ERROR" in (tmp / f"{name}.log").read_text(errors="replace"):
                log(f"{name} logged errors; see {tmp / (name + '.log')} (use --keep)")
        if args.hold:
            hold(s)
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    finally:
        cleanup.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
