"""Settings for the vendor portal, read from the environment (see the README's table)."""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from portal.env import (
    email_settings,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_nameservers,
    env_networks,
    env_ports,
    env_str,
)
from portal.hosts import AllowedHosts
from portal.logging import uvicorn_access_log_wanted

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("PORTAL_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)


def _local_secret(name: str) -> str:
    """A secret from the environment, else one generated into var/ on first run (local installs)."""
    value = env_str(name)
    if value:
        return value
    path = VAR_DIR / name.lower()
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _local_secret("SECRET_KEY")
# Keys the hash by which license IDs are looked up; kept apart from SECRET_KEY so rotating
# one does not lock every customer out.
LICENSE_LOOKUP_KEY = _local_secret("LICENSE_LOOKUP_KEY")
# Shared with the private registry, which sends it with every notification.
REGISTRY_NOTIFY_SECRET = _local_secret("REGISTRY_NOTIFY_SECRET")
# Where customers and vendors reach us; used in instructions and token realms.
PORTAL_URL = env_str("PORTAL_URL", "http://127.0.0.1:8000").rstrip("/")
# The one host the vendor UI and API answer on (no port); unset: every allowed host. The
# customer doors (/v2/, /customer/v1/) then never answer there (delivery/hosts.py).
PORTAL_UI_HOST = env_str("PORTAL_UI_HOST").strip().lower().rstrip(".")
if PORTAL_UI_HOST and PORTAL_UI_HOST == (urlsplit(PORTAL_URL).hostname or ""):
    raise ImproperlyConfigured(
        f"PORTAL_UI_HOST must differ from PORTAL_URL's host ({PORTAL_UI_HOST}): the registry answers there, "
        "and the point of PORTAL_UI_HOST is that pages and registry bytes never share an origin"
    )
# The configured hosts, plus each request's verified custom domain (portal/hosts.py).
ALLOWED_HOSTS = AllowedHosts(
    [*env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]"), *([PORTAL_UI_HOST] if PORTAL_UI_HOST else [])]
)
# Pages answer on the portal's own hosts only (custom domains are for customers' clusters), so
# no custom domain belongs here.
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# The front proxies whose X-Forwarded-For/-Host/-Proto are believed (addresses and CIDR
# networks); from any other peer those headers are dropped (portal/forwarded.py).
PORTAL_TRUSTED_PROXIES = env_networks("PORTAL_TRUSTED_PROXIES")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "accounts",
    "licenses",
    "registries",
    "delivery",
    "insights",
]

MIDDLEWARE = [
    # These two first: which client and host a request is from (trusted X-Forwarded-*), then
    # which doors answer on that host; both handlers run them (REGISTRY_MIDDLEWARE).
    "portal.forwarded.ForwardedHeadersMiddleware",
    "delivery.hosts.HostRoutingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "portal.requestcontext.RequestContextMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "accounts.middleware.CurrentTeamMiddleware",
]
# The registry's handler (portal/asgi.py) runs only these, both async: no thread hop per request.
REGISTRY_MIDDLEWARE = MIDDLEWARE[:2]

# What a web process serves: "all" (the pages, the API, the token service and the proxy), or
# "registry" (only /v2/: the token service and the proxy; /healthz and /metrics too), for web
# processes a load balancer sends /v2/ to. A registry process imports nothing of the pages or
# the API and holds ~30 MB less (README, "Benchmark"); see docs/deployment.md.
PORTAL_WEB_ROLE = env_str("PORTAL_WEB_ROLE", "all")
if PORTAL_WEB_ROLE not in ("all", "registry"):
    raise ImproperlyConfigured(f"PORTAL_WEB_ROLE is all or registry, not {PORTAL_WEB_ROLE!r}")
ROOT_URLCONF = "portal.registry_urls" if PORTAL_WEB_ROLE == "registry" else "portal.urls"
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.current_team",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DATABASE_POOL", True):
    # A connection pool: opening a PostgreSQL connection per request cost the proxy ~7 ms.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    _pool_timeout = env_int("DATABASE_POOL_TIMEOUT", 3)
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env_int("DATABASE_POOL_SIZE", 20),
        # How long a request waits for a connection (psycopg_pool's default is 30 s): while
        # PostgreSQL is down or restarting, a request fails after this long instead of hanging.
        "timeout": _pool_timeout,
        # How long the pool retries, with growing pauses, before the next request starts afresh
        # (default 5 min): after a long outage the pauses grew so long that requests failed for
        # as long again once PostgreSQL was back.
        "reconnect_timeout": _pool_timeout,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker, beat and manage.py all write this one file. IMMEDIATE takes the write lock at
    # BEGIN: a transaction that reads and then writes would otherwise fail at once with
    # "database is locked" when another process writes meanwhile. A writer waits up to 20 s for
    # the lock (Python's default is 5 s); WAL lets readers go on while one writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"  # the dashboard
LOGOUT_REDIRECT_URL = "accounts:login"

# The lockout guard first: a locked account's password is refused at every door (accounts/lockout.py).
AUTHENTICATION_BACKENDS = ["accounts.lockout.LockoutGuard", "django.contrib.auth.backends.ModelBackend"]
# After LOGIN_FAILURE_LIMIT failed password logins for one account (any address) within
# LOGIN_FAILURE_WINDOW seconds, its password logins get 429 for LOGIN_COOLDOWN seconds.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
LOGIN_FAILURE_WINDOW = env_int("LOGIN_FAILURE_WINDOW", 900)
LOGIN_COOLDOWN = env_int("LOGIN_COOLDOWN", LOGIN_FAILURE_WINDOW)
for _name in ("LOGIN_FAILURE_LIMIT", "LOGIN_FAILURE_WINDOW", "LOGIN_COOLDOWN"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1, not {globals()[_name]}")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Shared state lives in Redis when configured, else in files under var/ (still shared by
# every local process, unlike an in-memory cache).
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    # Django's Redis cache, one redis.Redis kept per pool and counters in one round trip (portal/cache.py).
    CACHES = {"default": {"BACKEND": "portal.cache.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True  # serve straight from static/ when collectstatic was not run

# Request bodies are small everywhere but the registry; refuse huge JSON early.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# Larger bodies get 413 before they are read (portal/bodylimit.py), per route, in bytes.
BODY_LIMIT_V2 = env_int("BODY_LIMIT_V2", 16 * 1024)  # /v2/token's forms; the proxy is read-only
BODY_LIMIT_HOOKS = env_int("BODY_LIMIT_HOOKS", 256 * 1024)  # Distribution posts one event (~1 KiB) at a time
BODY_LIMIT_API = env_int("BODY_LIMIT_API", DATA_UPLOAD_MAX_MEMORY_SIZE)
BODY_LIMIT_LOGIN = env_int("BODY_LIMIT_LOGIN", 64 * 1024)  # log-in, sign-up and invite pages
BODY_LIMIT_PAGES = env_int("BODY_LIMIT_PAGES", 1024 * 1024)  # other forms (a 64 KiB key file, pasted or uploaded)
# A release's page upload: up to 16 MiB of YAML (licenses.release_files) and the form around it.
BODY_LIMIT_RELEASE_UPLOAD = env_int("BODY_LIMIT_RELEASE_UPLOAD", 17 * 1024 * 1024)
# A release folder holds up to 1000 YAML files; without JavaScript the browser sends the
# folder's other files too (the server skips them). Bodies stay under the limits above.
DATA_UPLOAD_MAX_NUMBER_FILES = 2000

# Production hardening: on unless DEBUG; each can be overridden for a TLS-terminating proxy.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# The pages run only this site's own files: htmx, portal.js and registries.js are static
# files, templates have no inline script, handler or style (htmx's indicator <style> is
# switched off in base.html). The Swagger UI page adds inline styles for itself
# (portal/urls.py). The registry API (/v2/) has its own, stricter policy (portal/asgi.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
# https behind a TLS-terminating proxy: X-Forwarded-Proto from a trusted proxy, as
# portal/forwarded.py copies it into a META key no client can send. The older switch
# SECURE_PROXY_SSL_HEADER=true (X-Forwarded-Proto believed from any peer) still works while
# PORTAL_TRUSTED_PROXIES is empty; once the list is set, only the list counts.
SECURE_PROXY_SSL_HEADER = ("PORTAL_FORWARDED_PROTO", "https")
PORTAL_FORWARDED_PROTO_FROM_ANYONE = env_bool("SECURE_PROXY_SSL_HEADER", False) and not PORTAL_TRUSTED_PROXIES
# The registry protocol is plain HTTP between loopback parts in development.
SECURE_REDIRECT_EXEMPT = [r"^v2/", r"^healthz$"]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.TeamPermission"],
    "DEFAULT_PAGINATION_CLASS": "portal.api.Pagination",
    # JSON only, with a parser that refuses deep nesting with 400; the release uploads add
    # multipart for themselves (licenses/api/releases.py), no other endpoint reads forms.
    "DEFAULT_PARSER_CLASSES": ["portal.api.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Vendor portal API",
    "DESCRIPTION": "Apps, releases, channels, licenses, registries and tokens. Authenticate with `Authorization: Bearer <token>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Two `status` choice sets (a registry test's, a release's) would get a made-up name.
    "ENUM_NAME_OVERRIDES": {
        "ReleaseStatusEnum": "licenses.models.ReleaseStatus",
        "DownloadKindEnum": "delivery.models.DownloadKind",
        "TokenKindEnum": "accounts.models.TokenKind",  # both are fields named `kind`
        "BundleStatusEnum": "delivery.models.BundleStatus",
        "RegistryTestStatusEnum": "registries.models.CheckStatus",
        "DomainStatusEnum": "accounts.models.DomainStatus",
        "DomainKindEnum": "accounts.models.DomainKind",
    },
}

# Celery: Redis when CELERY_BROKER_URL is set, else a broker that needs no server. (Its host is
# named only so that kombu does not warn "No hostname was supplied" at every task sent.)
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery" / "queue"
    _processed_dir = VAR_DIR / "celery" / "processed"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    _processed_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        "store_processed": False,
        "control_folder": str(VAR_DIR / "celery" / "control"),
    }
else:
    # Publishing must fail fast, never hang a request, when the broker is down.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 3, "socket_timeout": 5, "visibility_timeout": 900}
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# Encryption key ring for stored credentials: "id:base64key,id:base64key" (newest first).
PORTAL_ENCRYPTION_KEYS = env_str("PORTAL_ENCRYPTION_KEYS")

# Outbound network guard for vendor-given addresses (see portal/outbound/).
REGISTRIES_ALLOWED_PRIVATE_NETWORKS = env_networks("REGISTRIES_ALLOWED_PRIVATE_NETWORKS")
REGISTRIES_ALLOW_HTTP = env_bool("REGISTRIES_ALLOW_HTTP", DEBUG)
# Ports every outbound connection may use ("443,5000,8000-8999"); unset: any port.
REGISTRIES_ALLOWED_PORTS = env_ports("REGISTRIES_ALLOWED_PORTS")

INVITE_TTL_DAYS = env_int("INVITE_TTL_DAYS", 7)

# E-mail, for "Forgot your password?": EMAIL_URL=smtp://user:password@host:587 (smtp+tls://,
# smtps://) or console:// (printed to the log; the default with DEBUG). Unset: no mail is sent
# and the page sends people to a team admin for a reset link instead.
EMAIL_URL = env_str("EMAIL_URL", "console://" if DEBUG else "")
_email = email_settings(EMAIL_URL)
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST", "localhost")
EMAIL_PORT = _email.get("EMAIL_PORT", 25)
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str(
    "DEFAULT_FROM_EMAIL", f"Vendor portal <portal@{urlsplit(PORTAL_URL).hostname or 'localhost'}>"
)

# Docker token auth (the portal's /v2/token) for the registry proxy and the private registry.
REGISTRY_TOKEN_TTL = env_int("REGISTRY_TOKEN_TTL", 300)
REGISTRY_TOKEN_ISSUER = env_str("REGISTRY_TOKEN_ISSUER", "vendor-portal")
REGISTRY_TOKEN_KEY_FILE = env_str("REGISTRY_TOKEN_KEY_FILE", str(VAR_DIR / "token_signing_key.pem"))
PROXY_SERVICE = env_str("PROXY_SERVICE", "portal-proxy")
REGISTRY_SERVICE = env_str("REGISTRY_SERVICE", "portal-registry")
# The private registry customers and vendors reach (license files, pull secrets, push hints).
_portal_host = urlsplit(PORTAL_URL).hostname or "127.0.0.1"
REGISTRY_HOST = env_str("REGISTRY_HOST", f"[{_portal_host}]:5000" if ":" in _portal_host else f"{_portal_host}:5000")
# Where the portal itself reaches the private registry's API (listing tags, deleting manifests),
# and at most how often a page refreshes its list from there (0: every time).
REGISTRY_URL = env_str("REGISTRY_URL", "http://127.0.0.1:5000").rstrip("/")
REGISTRY_REFRESH_SECONDS = env_int("REGISTRY_REFRESH_SECONDS", 10)
# The Ed25519 key license files are signed with; generated there on first use.
LICENSE_SIGNING_KEY_FILE = env_str("LICENSE_SIGNING_KEY_FILE", str(VAR_DIR / "license_signing_key.pem"))
# Air-gap bundles: where finished bundles are kept ("" → files under var/airgap; file:///path;
# s3://bucket/prefix with the usual AWS variables), where a build stages the blobs it fetched
# (kept between attempts, so a retry fetches only what is missing), and how long a presigned
# download link to the bucket lives.
AIRGAP_STORAGE_URL = env_str("AIRGAP_STORAGE_URL")
AIRGAP_WORK_DIR = Path(env_str("AIRGAP_WORK_DIR", str(VAR_DIR / "airgap-work")))
AIRGAP_LINK_SECONDS = env_int("AIRGAP_LINK_SECONDS", 300, minimum=10)
# Custom domains: the name servers their TXT records are looked up with ("ip[:port],…"; empty:
# the system resolver), and how long each process may keep the map of verified domains.
PORTAL_DNS_NAMESERVERS = env_nameservers("PORTAL_DNS_NAMESERVERS")
DOMAIN_CACHE_SECONDS = env_int("DOMAIN_CACHE_SECONDS", 5, minimum=0)
# Token requests per minute before 429, per client address and per credential tried.
TOKEN_RATE_PER_ADDRESS = env_int("TOKEN_RATE_PER_ADDRESS", 300)
TOKEN_RATE_PER_CREDENTIAL = env_int("TOKEN_RATE_PER_CREDENTIAL", 120)
# How long the proxy may trust a license's state, and the token service a license it found by
# its ID, before asking the database again (revoking through the services forgets both at once).
LICENSE_CACHE_SECONDS = env_int("LICENSE_CACHE_SECONDS", 5)
# Connection tests ("Test" on a registry) a team may run per window of seconds (SECURITY-TESTS S10).
REGISTRY_TEST_RATE = env_int("REGISTRY_TEST_RATE", 20, minimum=1)
REGISTRY_TEST_RATE_WINDOW = env_int("REGISTRY_TEST_RATE_WINDOW", 600, minimum=1)
# The proxy's bulkhead (delivery/proxy/bulkhead.py), per worker process: requests in flight
# to upstreams per team, and per team and upstream host; how long a request waits for one of
# those slots before 503; seconds to connect, and to the response headers of an upstream.
UPSTREAM_MAX_CONNECTIONS_PER_TEAM = env_int("UPSTREAM_MAX_CONNECTIONS_PER_TEAM", 128, minimum=1)
UPSTREAM_MAX_CONNECTIONS_PER_HOST = env_int("UPSTREAM_MAX_CONNECTIONS_PER_HOST", 64, minimum=1)
UPSTREAM_POOL_WAIT = env_float("UPSTREAM_POOL_WAIT", 10.0)
UPSTREAM_CONNECT_TIMEOUT = env_float("UPSTREAM_CONNECT_TIMEOUT", 5.0, minimum=0.1)
UPSTREAM_FIRST_BYTE_TIMEOUT = env_float("UPSTREAM_FIRST_BYTE_TIMEOUT", 30.0, minimum=0.1)

# The proxy's pull-through cache (delivery/proxy/cache.py): where blobs and manifests are kept
# per team ("" → files under var/proxy-cache; file:///path; s3://bucket/prefix, shared by every
# web process on every machine), the most bytes it holds before the least recently used go
# (0: no cache, every pull goes upstream), how long a tag's digest is trusted before asking the
# upstream again, and where a blob being fetched is written until its digest checks out (on
# the same file system as a file:// cache, so it is renamed in, not copied).
PROXY_CACHE_URL = env_str("PROXY_CACHE_URL")
PROXY_CACHE_MAX_BYTES = env_int("PROXY_CACHE_MAX_BYTES", 20 * 1024**3, minimum=0)
PROXY_TAG_TTL = env_int("PROXY_TAG_TTL", 60, minimum=0)
PROXY_CACHE_STAGING_DIR = Path(env_str("PROXY_CACHE_STAGING_DIR", str(VAR_DIR / "proxy-cache" / ".staging")))
# The name of this machine; processes on one machine share staging files (a request for a blob
# another process of this machine is fetching reads its staging file as it grows; one on another
# machine waits for the blob to reach the shared storage). Two machines must not share a name.
PORTAL_NODE_NAME = env_str("PORTAL_NODE_NAME") or socket.gethostname()

# /metrics (Prometheus text format) answers only a scraper sending `Authorization: Bearer
# <METRICS_TOKEN>`; unset, it answers 404. Every process (each uvicorn worker, each Celery
# worker) writes its series to files in PROMETHEUS_MULTIPROC_DIR and /metrics adds them up
# (prometheus-client's multi-process mode, which reads the variable from the environment when
# it is first imported: portal/metrics.py imports it only after these lines have run).
# scripts/run.sh empties the folder at start: an earlier run's files would count again.
METRICS_TOKEN = env_str("METRICS_TOKEN")
PROMETHEUS_MULTIPROC_DIR = Path(env_str("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "prometheus")))
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(PROMETHEUS_MULTIPROC_DIR)

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
    raise ImproperlyConfigured(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {LOG_LEVEL!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "portal.logging.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # One line per outbound request is noise at INFO; failures are reported by our code.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # Every line goes through the root handler and its filter. Django's own console handler
        # (DEBUG only) and uvicorn's handlers (its default log config, applied before Django's)
        # would write beside it unfiltered: tracebacks, access lines with query strings.
        "django": {"handlers": [], "propagate": True},
        "uvicorn": {"handlers": [], "propagate": True},
        # ... unless uvicorn runs with --no-access-log: then none at all (portal/logging.py).
        "uvicorn.access": {"handlers": [], "propagate": uvicorn_access_log_wanted()},
    },
}

CELERY_BEAT_SCHEDULE = {
    "purge-expired-invites": {"task": "accounts.tasks.invites_purge_expired_task", "schedule": 24 * 3600},
    "refresh-registry-tokens": {"task": "registries.tasks.registries_refresh_tokens_task", "schedule": 5 * 60},
    "retest-registries": {"task": "registries.tasks.registries_retest_task", "schedule": 24 * 3600},
    "resolve-stuck-releases": {"task": "registries.tasks.releases_resolve_stuck_task", "schedule": 5 * 60},
    # Every verified custom domain's TXT record looked up again; one that vanished becomes lost.
    "recheck-custom-domains": {"task": "accounts.tasks.domains_recheck_task", "schedule": 24 * 3600},
    # Bytes in the proxy cache that no row records (a process died between the two) removed.
    "sweep-proxy-cache": {"task": "delivery.tasks.proxy_cache_sweep_task", "schedule": 6 * 3600},
}
