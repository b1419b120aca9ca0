#!/bin/sh
# Lab setup: a local registry on 127.0.0.1:5000 holding k8py's images, and
# /etc/k8py/registries.yaml mirroring docker.io (and registry.k8s.io, gcr.io, ...) to it,
# so that `image: nginx:1.14.2` works on a machine without access to Docker Hub.
# Idempotent; the image build is cached (first run about a minute, then seconds).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
port=${K8PY_REGISTRY_PORT:-5000}
fallback=""
[ -n "${K8PY_REGISTRY_FALLBACK:-}" ] && fallback="--fallback"  # images the lab lacks come from their registry
addr=$(python3 "$here/registry.py" start --port "$port" --mirror-config "${K8PY_REGISTRIES:-/etc/k8py/registries.yaml}" $fallback)
python3 "$here/build.py" --push "$addr" --sizes
echo "registry: http://$addr  mirrors: ${K8PY_REGISTRIES:-/etc/k8py/registries.yaml}"
