"""What the benchmarks share: loading the image scripts, free loopback ports,
percentiles, and a k8py cluster with its real node agent (the e2e AgentCluster) whose
docker.io is a private local registry holding the images asked for.

Invariant: `agent_cluster` removes everything it made (cluster, node leftovers, registry,
temp dirs) on the way out, even when the benchmark fails.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def load(name: str):  # type: ignore[no-untyped-def]
    """A module of scripts/images/ (registry.py, build.py) by name."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts/images" / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def json_stream(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The objects of a concatenated JSON stream (`kubectl get --watch -o json`), as they complete."""
    dec, buf = json.JSONDecoder(), ""
    for line in lines:
        buf += line
        while True:
            buf = buf.lstrip()
            try:
                obj, end = dec.raw_decode(buf)
            except ValueError:
                break
            buf = buf[end:]
            yield obj


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


@contextlib.contextmanager
def agent_cluster(images: list[str], prefix: str = "k8py-bench-cluster-") -> Iterator[Any]:
    """A started AgentCluster whose images come from a private registry (built and cached
    by scripts/images/build.py); stopped and cleaned up on exit."""
    sys.path.insert(0, str(REPO / "tests" / "e2e"))
    from conftest import AgentCluster  # type: ignore[import-not-found]

    registry = load("registry")
    data = Path(tempfile.mkdtemp(prefix="k8py-bench-registry-", dir="/var/tmp"))
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        addr = registry.start(data, free_port())
        subprocess.run([sys.executable, str(REPO / "scripts/images/build.py"), "--push", addr, *images], check=True,
                       capture_output=True)
        regs = tmp / "registries.yaml"
        regs.write_text(f'mirrors:\n  "docker.io":\n    endpoint: ["http://{addr}"]\ndisable_default_endpoint: true\n')
        c = AgentCluster(tmp, regs)
        c.start()
        try:
            yield c
        finally:
            c.stop()
            c.cleanup_node()
    finally:
        registry.stop(data)
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
