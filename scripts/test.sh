#!/usr/bin/env bash
# The whole suite against PostgreSQL and a real Celery worker over Redis, as CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh

export DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/portal_$$}
export REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/13}
export CELERY_BROKER_URL=${TEST_CELERY_BROKER_URL:-redis://127.0.0.1:6379/14}
export PORTAL_VAR_DIR="$PWD/var/test"
mkdir -p "$PORTAL_VAR_DIR" test-artifacts

echo "== ruff"
.venv/bin/ruff check .
echo "== migrations are up to date"
DATABASE_URL=sqlite://:memory: .venv/bin/python manage.py makemigrations --check --dry-run >/dev/null || {
  echo "error: models changed without a migration; run: .venv/bin/python manage.py makemigrations" >&2; exit 1; }
echo "== pytest"
# Four pytest-xdist workers: most tests wait on real parts (registries, skopeo, Chromium, a
# Celery worker), so four overlap well even on two CPUs. TEST_WORKERS=0 runs in one process.
exec .venv/bin/pytest -n "${TEST_WORKERS:-4}" "$@"
