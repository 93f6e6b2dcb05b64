#!/usr/bin/env bash
# 云诊 Yunzhen: the two commands of the README.
#   ./yunzhen.sh serve   install what the service needs, start it (private Redis, demo data)
#   ./yunzhen.sh test    install what the tests need, run lint, types and the whole suite
# Safe to run again: each step is skipped when it is already done.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY=${PYTHON:-python3}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "==> apt-get install ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

python_env() {  # $1: pip extras ("" or "test")
  local want=".${1:+[$1]}"
  if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then apt_install python3-venv; fi
  # A C compiler and Python's headers: pip builds the media path's C part (rooms/native/).
  apt_install gcc libc6-dev python3-dev
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  local base="$VENV/.yunzhen-$(cat pyproject.toml setup.py rooms/native/* | sha256sum | cut -c1-16)"
  local stamp="$base${1:+-$1}"
  # The test extras include everything serve needs: after `test`, `serve` installs nothing.
  if [ ! -f "$stamp" ] && [ ! -f "$base-test" ]; then
    echo "==> pip install -e '$want'"
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q -e "$want"
    touch "$stamp"
  fi
}

web_env() {
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  local stamp="web/node_modules/.yunzhen-$(sha256sum web/package-lock.json | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "==> npm ci (web/)"
    (cd web && npm ci --no-audit --no-fund --loglevel=error)
    touch "$stamp"
  fi
}

case "${1:-}" in
  serve)
    shift
    # espeak-ng: the kiosk's spoken prompts (server/speech.py)
    apt_install redis-server fonts-noto-cjk espeak-ng
    # nginx: in front of the worker processes of `serve --workers N` (server/workers.py)
    apt_install nginx
    python_env ""
    web_env
    exec "$VENV/bin/python" -m server serve --demo "$@"
    ;;
  test)
    shift
    apt_install redis-server chromium iproute2 util-linux coturn fonts-noto-cjk espeak-ng
    # nginx: tests/cluster starts `serve --workers 2` behind a real one
    apt_install nginx
    python_env test
    web_env
    echo "==> ruff"; "$VENV/bin/ruff" check .
    echo "==> mypy"; "$VENV/bin/mypy"
    echo "==> pytest (in a private network namespace: loopback only)"
    # Every test talks only to 127.0.0.1: a fresh network namespace has nothing else.
    if [ "$(id -u)" = 0 ]; then ns=(unshare -n); else ns=(unshare -r -n); fi
    exec "${ns[@]}" -- sh -c \
      'ip link set lo up && exec "$0" -m pytest -p no:cacheprovider "$@"' "$VENV/bin/python" "$@"
    ;;
  *)
    echo "usage: $0 serve [--port N] | test [pytest args]" >&2
    exit 2
    ;;
esac
