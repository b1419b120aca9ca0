#!/usr/bin/env python3
"""Start/stop a local OCI registry (Debian's docker-registry, distribution 2.8).

    registry.py start [--port 5000] [--data /var/lib/k8py/registry]   prints host:port
    registry.py stop  [--data ...]
    registry.py status [--data ...]
    registry.py start --mirror-config /etc/k8py/registries.yaml   also write a k3s-style
        registries.yaml that mirrors docker.io, registry.k8s.io, gcr.io, quay.io to it

Invariants: listens on 127.0.0.1 only, no auth, storage on the filesystem under --data;
the pid file and generated config live in --data; `start` returns once /v2/ answers and
is a no-op when a registry from the same --data is already running.
Importable: `start(data, port) -> (proc_pid, "127.0.0.1:port")`, `stop(data)`.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BINARY = "/usr/bin/docker-registry"

CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:{port}
  headers:
    X-Content-Type-Options: [nosniff]
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _ready(addr: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{addr}/v2/", timeout=1) as r:
            return r.status == 200
    except Exception:
        return False


def status(data: Path) -> str | None:
    """host:port of the running registry for `data`, or None."""
    pidf, addrf = data / "registry.pid", data / "registry.addr"
    if pidf.exists() and addrf.exists() and _alive(int(pidf.read_text())):
        return addrf.read_text().strip()
    return None


def start(data: Path, port: int = 5000, timeout: float = 20.0) -> str:
    data.mkdir(parents=True, exist_ok=True)
    running = status(data)
    if running:
        return running
    (data / "storage").mkdir(exist_ok=True)
    cfg = data / "config.yml"
    cfg.write_text(CONFIG.format(root=data / "storage", port=port))
    logf = open(data / "registry.log", "ab")
    proc = subprocess.Popen([BINARY, "serve", str(cfg)], stdout=logf, stderr=logf, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    addr = f"127.0.0.1:{port}"
    (data / "registry.pid").write_text(str(proc.pid))
    (data / "registry.addr").write_text(addr)
    deadline = time.monotonic() + timeout
    while not _ready(addr):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            tail = (data / "registry.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"docker-registry did not start on {addr}: {tail}")
        time.sleep(0.05)
    return addr


def stop(data: Path) -> None:
    pidf = data / "registry.pid"
    if not pidf.exists():
        return
    pid = int(pidf.read_text())
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not _alive(pid):
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
    pidf.unlink(missing_ok=True)


MIRRORED = ("docker.io", "registry.k8s.io", "gcr.io", "quay.io", "ghcr.io")


def write_mirror_config(path: Path, addr: str, fallback: bool = False) -> None:
    """A registries.yaml pointing the usual public registries at this registry: only
    there, or (fallback) there first and then the registry itself, as k3s does."""
    lines = ["# written by scripts/images/registry.py: public registries -> the local registry", "mirrors:"]
    for host in MIRRORED:
        lines += [f'  "{host}":', "    endpoint:", f'      - "http://{addr}"']
    if not fallback:
        lines.append("disable_default_endpoint: true")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="local OCI registry for k8py")
    ap.add_argument("action", choices=["start", "stop", "status"])
    ap.add_argument("--port", type=int, default=5000)
    ap.add_argument("--data", default=os.environ.get("K8PY_REGISTRY_DATA", "/var/lib/k8py/registry"))
    ap.add_argument("--mirror-config", default="", help="write a registries.yaml mirroring public registries here")
    ap.add_argument("--fallback", action="store_true",
                    help="in that registries.yaml, fall back to the public registry for images the mirror lacks")
    args = ap.parse_args(argv)
    data = Path(args.data)
    if args.action == "start":
        addr = start(data, args.port)
        if args.mirror_config:
            write_mirror_config(Path(args.mirror_config), addr, fallback=args.fallback)
        print(addr)
    elif args.action == "stop":
        stop(data)
    else:
        s = status(data)
        print(s or "stopped")
        return 0 if s else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
