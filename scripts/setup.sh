#!/usr/bin/env bash
# Installs what the portal and its tests need: system packages (as root), a venv, Python packages.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: Distribution (private registry, test upstreams), skopeo (a real client),
# htpasswd, Chromium (browser tests), nginx (benchmark baseline), PostgreSQL and Redis,
# kubectl (renders install kits in tests: `kubectl kustomize`, offline), dnsmasq (a real DNS
# server for the custom-domain tests).
SYSTEM_PACKAGES="docker-registry skopeo apache2-utils chromium nginx-light postgresql redis-server kubectl dnsmasq-base"
missing=""
for pkg in $SYSTEM_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing system packages:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    # Debian starts its own unauthenticated registry on :5000; make run starts ours there instead.
    case " $missing " in *" docker-registry "*)
      [ -d /run/systemd/system ] && systemctl disable --now docker-registry >/dev/null 2>&1 || true ;;
    esac
  else
    echo "warning: missing system packages:$missing" >&2
    echo "         install them with: sudo apt-get install$missing" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: Python 3.11 or newer is needed ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
.venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
echo "Python environment ready in .venv"
