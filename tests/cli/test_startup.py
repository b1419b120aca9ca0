"""`k8py server` startup stays cheap: on an existing data dir nothing heavy is imported
before the ready line (no schemas, no validation, no PyYAML, no certificate generation).

Each start runs in a fresh interpreter (sys.modules must start empty of k8py) with the real
store and API server; `run_components` is replaced to record the modules loaded at ready.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import asyncio, json, sys
from k8py.cli import server

async def main():
    stop = asyncio.Event()
    seen = {}
    def run_components(ctx, args):
        seen["modules"] = sorted(sys.modules)
        stop.set()
        return []
    server.run_components = run_components
    args = server.ServerArgs(data_dir=sys.argv[1], port=0, no_agent=True)
    rc = await server.serve(args, stop=stop)
    sys.stderr.write(json.dumps({"rc": rc, "modules": seen["modules"]}) + "\n")

asyncio.run(main())
"""

HEAVY = ("kubernetes_validate", "jsonschema", "yaml", "cryptography", "k8py.api.validation", "k8py.api.schema",
         "k8py.controllers", "k8py.scheduler")


def _start(data: Path) -> set[str]:
    p = subprocess.run([sys.executable, "-c", SCRIPT, str(data)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "k8py: ready at https://127.0.0.1:" in p.stdout
    out = json.loads(p.stderr.strip().splitlines()[-1])
    assert out["rc"] == 0
    return set(out["modules"])


def test_restart_loads_nothing_heavy_before_ready(tmp_path: Path) -> None:
    fresh = _start(tmp_path / "data")
    assert "cryptography" in fresh  # the first start generates the PKI (the check can see imports)
    again = _start(tmp_path / "data")
    assert [m for m in HEAVY if m in again] == []
    assert (tmp_path / "data" / "kubeconfig").read_text().startswith('apiVersion: "v1"\n')
