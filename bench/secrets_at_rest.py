"""Secrets at rest: write and read latency with encryption on (aescbc, aesgcm) vs off
(identity first). Prints numbers, asserts nothing.

Each mode runs an in-process ApiServer (the path every request takes after HTTP) on a
fresh SQLite store in a temporary dir, creates N Secrets (one 1 KiB value each), then gets
each one, sequentially; the modes are interleaved over rounds, and the medians of p50/p99
and of the mean are printed with the overhead against identity.

    PYTHONPATH=src .venv/bin/python bench/secrets_at_rest.py [--n 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from k8py.apiserver import encryption
from k8py.apiserver.config import ApiServerConfig
from k8py.apiserver.encryption import EncryptingStore
from k8py.apiserver.inprocess import InProcessTransport
from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.clock import RealClock
from k8py.store.sqlite import SqliteStore


def _doc(kind: str) -> dict[str, Any]:
    key = {"name": "bench", "secret": base64.b64encode(os.urandom(32)).decode()}
    enc = {"aescbc": {"keys": [key]}} if kind == "identity" else {kind: {"keys": [key]}}
    providers = [{"identity": {}}, enc] if kind == "identity" else [enc, {"identity": {}}]
    return {"apiVersion": encryption.API_VERSION, "kind": encryption.KIND,
            "resources": [{"resources": ["secrets"], "providers": providers}]}


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


async def run(kind: str, n: int, tmp: Path) -> dict[str, float]:
    inner = SqliteStore(str(tmp / f"{kind}.db"))
    await inner.start()
    api = ApiServer(EncryptingStore(inner, encryption.parse(_doc(kind))), ApiServerConfig(), RealClock())
    await api.start()
    client = Client(InProcessTransport(api))
    value = base64.b64encode(os.urandom(768)).decode()  # 1 KiB of base64
    writes, reads = [], []
    try:
        for i in range(n):
            t = time.perf_counter()
            await client.create("secrets", {"metadata": {"name": f"s{i}", "namespace": "default"},
                                            "data": {"v": value}})
            writes.append(time.perf_counter() - t)
        for i in range(n):
            t = time.perf_counter()
            await client.get("secrets", f"s{i}", "default")
            reads.append(time.perf_counter() - t)
    finally:
        await api.close()
        await inner.close()
    return {"write_p50": _pct(writes, 0.5), "write_p99": _pct(writes, 0.99),
            "write_mean": statistics.mean(writes) * 1000,
            "read_p50": _pct(reads, 0.5), "read_p99": _pct(reads, 0.99), "read_mean": statistics.mean(reads) * 1000}


async def main_async(n: int, rounds: int) -> None:
    kinds = ("identity", "aescbc", "aesgcm")
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="k8py-bench-secrets-") as d:
        for i in range(rounds):  # interleaved, so that a noisy moment on a shared machine hits every mode
            for kind in kinds:
                runs[kind].append(await run(kind, n, Path(d) / f"{kind}-{i}"))
    results = {k: {stat: statistics.median(r[stat] for r in rs) for stat in rs[0]} for k, rs in runs.items()}
    base = results["identity"]
    print(f"Secrets at rest, {n} creates then {n} gets, in-process API server on SQLite, "
          f"median of {rounds} interleaved rounds (ms)")
    print(f"{'mode':<10}" + "".join(f"{k:>12}" for k in base) + "   mean overhead write/read vs identity")
    for kind, r in results.items():
        over = (f"{100 * (r['write_mean'] / base['write_mean'] - 1):+.1f}% / "
                f"{100 * (r['read_mean'] / base['read_mean'] - 1):+.1f}%")
        print(f"{kind:<10}" + "".join(f"{v:>12.3f}" for v in r.values()) + f"   {over}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ns = ap.parse_args()
    asyncio.run(main_async(ns.n, ns.rounds))


if __name__ == "__main__":
    main()
