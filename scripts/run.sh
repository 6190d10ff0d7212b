#!/usr/bin/env bash
# Runs the portal locally: web (ASGI), Celery worker and beat, and the private registry
# (Distribution on 127.0.0.1:5000) when installed. Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
# A local install's settings (DEBUG off, plain HTTP): see scripts/local.env; the environment wins.
while IFS='=' read -r name value; do
  case "$name" in '' | '#'*) continue ;; esac
  [ -n "${!name+set}" ] || export "$name=$value"
done <scripts/local.env
export PORT=${PORT:-8000}
export PORTAL_URL=${PORTAL_URL:-http://127.0.0.1:$PORT}
# Web processes (uvicorn --workers): two on these machines, each with its own event loop, so a
# process busy with one request (a long JSON render, a bcrypt check) does not hold up the rest.
# Every piece of state that matters is shared (docs/deployment.md); WEB_CONCURRENCY=1 works too.
export WEB_CONCURRENCY=${WEB_CONCURRENCY:-2}
# glibc gives each thread that allocates an arena of its own; the proxy reads cached blobs in a
# pool of threads, and each arena kept its peak: two arenas cut a web process's peak by ~30 MB
# under 50 concurrent pulls (bench/proxy.py), at no measured cost in speed.
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}

# The private registry (CNCF Distribution, Debian package docker-registry) beside the portal.
export REGISTRY_ADDR=${REGISTRY_ADDR:-127.0.0.1:5000}
export REGISTRY_URL=${REGISTRY_URL:-http://$REGISTRY_ADDR}
export REGISTRY_HOST=${REGISTRY_HOST:-$REGISTRY_ADDR}
export REGISTRY_BINARY=${REGISTRY_BINARY:-/usr/bin/docker-registry}

# Metrics: every process writes its series to files in one folder (prometheus-client's
# multi-process mode); an earlier run's files would count again, so they go before any starts.
# (Only its *.db files: the folder may be one the operator named.)
export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-${PORTAL_VAR_DIR:-$PWD/var}/prometheus}
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -type f -name '*.db' -delete

.venv/bin/python manage.py migrate --noinput -v0
.venv/bin/python manage.py seed_demo

processes="web worker beat"
if [ ! -x "$REGISTRY_BINARY" ]; then
  echo "Private registry: off, $REGISTRY_BINARY is missing; install the Debian package docker-registry" >&2
  echo "                  (sudo apt-get install docker-registry) and run again to push images to the portal." >&2
elif (exec 3<>"/dev/tcp/${REGISTRY_ADDR%:*}/${REGISTRY_ADDR##*:}") 2>/dev/null; then
  echo "Private registry: off, something already listens on $REGISTRY_ADDR (Debian's own docker-registry" >&2
  echo "                  service? sudo systemctl disable --now docker-registry), or set REGISTRY_ADDR." >&2
else
  # Distribution reads REGISTRY_* variables as config overrides: the Procfile hides the portal's own
  # (REGISTRY_STORAGE_DRIVER=s3 would not even parse there).
  REGISTRY_CONFIG=$(.venv/bin/python manage.py registry_config --addr "$REGISTRY_ADDR")
  export REGISTRY_CONFIG
  processes="$processes registry"
  echo "Private registry: $REGISTRY_HOST (docker login with your email and an API token; config $REGISTRY_CONFIG)"
fi
echo "Portal: $PORTAL_URL   API docs: $PORTAL_URL/api/v1/docs/   CLI: .venv/bin/portal (PORTAL_URL, PORTAL_API_TOKEN)"
# shellcheck disable=SC2086 # one word per process name
exec .venv/bin/honcho -f Procfile start $processes
