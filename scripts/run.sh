#!/usr/bin/env bash
# Runs the portal locally: web (ASGI), Celery worker and beat. Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBUG=${DEBUG:-1}
export PORT=${PORT:-8000}
export PORTAL_URL=${PORTAL_URL:-http://127.0.0.1:$PORT}
# Local runs may reach registries on this machine (e.g. a Distribution on 127.0.0.1:5000).
export REGISTRIES_ALLOWED_PRIVATE_NETWORKS=${REGISTRIES_ALLOWED_PRIVATE_NETWORKS:-127.0.0.0/8}

.venv/bin/python manage.py migrate --noinput -v0
.venv/bin/python manage.py seed_demo
echo "Portal: $PORTAL_URL   API docs: $PORTAL_URL/api/v1/docs/   CLI: .venv/bin/portal (PORTAL_URL, PORTAL_API_TOKEN)"
exec .venv/bin/honcho -f Procfile start
