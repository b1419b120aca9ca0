"""Store write latency: an open-loop load of single writes at a fixed rate, with watchers
attached (as the API server has), then the closed-loop maximum. Prints numbers only.

    .venv/bin/python bench/store.py [--rate 200] [--seconds 10] [--store sqlite|memory|etcd://h:p]

Latency is measured from each write's scheduled start, so queueing counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time

from k8py.store import open_store
from k8py.store.protocol import Store


def _value(i: int) -> bytes:
    obj = {"kind": "Pod", "metadata": {"name": f"pod-{i}", "namespace": "default",
                                       "labels": {"app": "bench", "n": str(i)}},
           "spec": {"containers": [{"name": "c", "image": "busybox", "args": ["x" * 600]}]}}
    return json.dumps(obj).encode()


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


async def _watcher(store: Store, rev: int, counter: list[int]) -> None:
    async for _ev in store.watch("/registry/", rev):
        counter[0] += 1


async def open_loop(store: Store, rate: float, seconds: float, keys: int) -> None:
    latest: dict[str, int] = {}
    lat: list[float] = []
    errors = 0
    counter = [0]
    rev = await store.current_revision()
    watchers = [asyncio.create_task(_watcher(store, rev, counter)) for _ in range(4)]

    async def one(i: int, due: float) -> None:
        nonlocal errors
        key = f"/registry/pods/default/pod-{i % keys}"
        try:
            if key in latest:
                kv = await store.update(key, _value(i), latest[key])
            else:
                kv = await store.create(key, _value(i))
            latest[key] = kv.mod_revision
        except Exception:
            errors += 1
        lat.append(time.perf_counter() - due)

    n = int(rate * seconds)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    tasks = []
    for i in range(n):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    for w in watchers:
        w.cancel()
    ms = [x * 1000 for x in lat]
    print(f"open loop: {n} writes in {elapsed:.2f}s ({n / elapsed:.0f}/s target {rate:.0f}/s), "
          f"errors {errors}, watch events {counter[0]}, CPU {cpu * 1000 / n:.2f} ms/write")
    print(f"  latency ms: p50 {_pct(ms, 0.50):.2f}  p90 {_pct(ms, 0.90):.2f}  "
          f"p99 {_pct(ms, 0.99):.2f}  max {max(ms):.2f}  mean {statistics.mean(ms):.2f}")


async def closed_loop(store: Store, writers: int, seconds: float) -> None:
    done = 0
    run = time.monotonic_ns()
    stop = time.perf_counter() + seconds

    async def writer(w: int) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < stop:
            await store.create(f"/registry/bench/{run}/{w}/{i}", _value(i))
            i += 1
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    print(f"closed loop: {writers} concurrent writers: {done / (time.perf_counter() - t0):.0f} writes/s")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--keys", type=int, default=500)
    ap.add_argument("--store", default="sqlite", help="sqlite, memory or etcd://host:port")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="k8py-bench-") as d:
        url = {"sqlite": None, "memory": "memory://"}.get(args.store, args.store)
        store = open_store(url, d)
        await store.start()
        try:
            print(f"store: {type(store).__name__}")
            await open_loop(store, args.rate, args.seconds, args.keys)
            await closed_loop(store, 1, 2)
            await closed_loop(store, 32, 2)
        finally:
            await store.close()


if __name__ == "__main__":
    asyncio.run(main())
