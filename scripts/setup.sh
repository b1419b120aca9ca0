#!/usr/bin/env bash
# Installs everything k8py needs on a fresh Debian/Ubuntu machine, idempotently:
# system packages (when root), a virtualenv in .venv, and k8py with its test extras.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

APT_PKGS=(runc nftables etcd-server docker-registry debootstrap iproute2 iputils-ping tcpdump curl ca-certificates python3-venv)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${APT_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ! command -v kubectl >/dev/null; then missing+=(kubernetes-client); fi
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
command -v kubectl >/dev/null || echo "setup: warning: no kubectl on PATH" >&2

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=".venv/.k8py-installed-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[test]"
  rm -f .venv/.k8py-installed-*
  touch "$stamp"
fi
# Byte-compile k8py once, so that `k8py server` starts fast even where the environment
# forbids writing bytecode at import time (PYTHONDONTWRITEBYTECODE).
.venv/bin/python -m compileall -q src >/dev/null || true
