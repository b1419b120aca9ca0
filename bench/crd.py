"""Custom resources vs ConfigMaps: prints numbers, asserts nothing.

Starts a real `k8py server --no-agent` (SQLite) on a free loopback port, creates a
CRD (a namespaced `Bench` with a small structural schema, a default and a printer
column), then in the same run measures for ConfigMaps and for the custom resource,
alternately, p50/p99 of create and get at a fixed rate (default 200/s) over concurrent
HTTPS clients and of list of all the objects (`--n`, default 1,000).

    .venv/bin/python bench/crd.py [--rate 200] [--n 1000] [--clients 8]
Traffic goes to 127.0.0.1 only; every loop is bounded in count.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from api import Server, paced, pct  # bench/api.py

from k8py.api.resources import Resource
from k8py.client.client import Client
from k8py.client.rest import RestTransport

NS = "default"
CR = Resource("bench.k8py.io", "v1", "Bench", "benches", True)
CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "benches.bench.k8py.io"},
    "spec": {"group": "bench.k8py.io", "scope": "Namespaced",
             "names": {"plural": "benches", "singular": "bench", "kind": "Bench"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "additionalPrinterColumns": [{"name": "I", "type": "string", "jsonPath": ".data.i"}],
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "data": {"type": "object", "additionalProperties": {"type": "string"}},
                               "mode": {"type": "string", "default": "fast"}}}}}]},
}


def _obj(kind: str, i: int) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": f"b-{i}", "labels": {"bench": "1"}}, "data": {"i": str(i)}}
    if kind == "cr":
        body.update(apiVersion="bench.k8py.io/v1", kind="Bench")
    return body


async def _lists(c: Client, res: str | Resource, n: int) -> list[float]:
    out = []
    for _ in range(30):
        s = time.monotonic()
        got = await c.list(res, NS, label_selector="bench=1")
        out.append(time.monotonic() - s)
        assert len(got["items"]) == n
    return out


async def load(kubeconfig: Path, n: int, rate: float, nclients: int) -> dict[str, dict[str, list[float]]]:
    clients = [Client(RestTransport.from_kubeconfig(kubeconfig)) for _ in range(nclients)]
    kinds: dict[str, str | Resource] = {"configmaps": "configmaps", "cr": CR}
    out: dict[str, dict[str, list[float]]] = {k: {} for k in kinds}
    try:
        await clients[0].create("customresourcedefinitions", CRD)
        for _ in range(100):
            crd = await clients[0].get("customresourcedefinitions", "benches.bench.k8py.io")
            if any(c["type"] == "Established" and c["status"] == "True"
                   for c in (crd.get("status") or {}).get("conditions") or []):
                break
            await asyncio.sleep(0.1)
        for op in ("create", "get"):
            for k, res in kinds.items():
                if op == "create":
                    out[k][op] = await paced(n, rate, clients, lambda c, i, k=k, res=res: c.create(
                        res, _obj(k, i), NS))
                else:
                    out[k][op] = await paced(n, rate, clients, lambda c, i, res=res: c.get(res, f"b-{i}", NS))
        for k, res in kinds.items():
            out[k][f"list ({n} objects)"] = await _lists(clients[0], res, n)
    finally:
        for c in clients:
            await c.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="k8py-bench-crd-"))
    try:
        srv = Server(tmp / "data", None)
        srv.start()
        try:
            res = asyncio.run(load(srv.data / "kubeconfig", args.n, args.rate, args.clients))
        finally:
            srv.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"k8py custom resources vs ConfigMaps (SQLite): {args.n} objects, {args.rate:.0f}/s over "
          f"{args.clients} HTTPS clients, {os.cpu_count()} CPUs")
    print("| operation | ConfigMap p50 / p99 | custom resource p50 / p99 | CR p99 / ConfigMap p99 |")
    print("|---|---|---|---|")
    for op in res["configmaps"]:
        cm, cr = res["configmaps"][op], res["cr"][op]
        print(f"| {op} | {pct(cm, 50):.1f} / {pct(cm, 99):.1f} ms | {pct(cr, 50):.1f} / {pct(cr, 99):.1f} ms "
              f"| {pct(cr, 99) / pct(cm, 99):.2f} |")


if __name__ == "__main__":
    main()
