"""metrics.k8s.io/v1beta1 served by the API server itself (what metrics-server serves
behind its APIService): NodeMetrics and PodMetrics computed from every node agent's
Summary API (`/stats/summary`, reached through the node proxy: `source`).

CPU is a rate between two samples of the cumulative counters (as metrics-server does):
a node's samples are kept (the last two; nodes are sampled concurrently); a request takes a new sample when the newest
is older than `interval` seconds, and when only one exists it waits `min_window` and
samples again, so the first `kubectl top` answers with a short window. `window` is the
time between the two samples; memory is the newest working set.
Simulated nodes (label k8py.io/simulated=true) have no agent: their figures are
synthetic, the sum of their pods' requests, and the objects carry the annotation
`k8py.io/simulated` saying so (scale tests only).
Invariants: read-only (get, list; watch is refused); a pod appears only when all its
running containers have two samples; a node that cannot be reached is left out of
lists and answers 404 to a get (metrics-server's behaviour), never a 500.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from k8py.api import quantity
from k8py.api.request import ApiRequest, ApiResponse
from k8py.api.resources import Resource
from k8py.api.selectors import parse_label_selector
from k8py.api.types import Obj
from k8py.api.wellknown import ANNOTATION_SIMULATED, LABEL_SIMULATED
from k8py.apiserver import codec, machinery
from k8py.apiserver.errors import StatusError, bad_request, method_not_allowed, not_found
from k8py.clock import rfc3339

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
SIMULATED_NOTE = "synthetic figures (the sum of the pods' requests) from a simulated node"

Read = Callable[[ApiRequest], Awaitable[ApiResponse]]
SummarySource = Callable[[str], Awaitable["Obj | str"]]
Sample = tuple[float, Obj]  # (time taken, Summary document)


def _cpu(nanocores: float) -> str:
    return f"{max(0, int(nanocores))}n"


def _mem(b: int) -> str:
    return f"{max(0, int(b)) // 1024}Ki"


def _window(dt: float) -> str:
    return f"{dt:.3f}".rstrip("0").rstrip(".") + "s"


def _rate(a: Obj | None, b: Obj | None, dt: float) -> float | None:
    if a is None or b is None or dt <= 0:
        return None
    d = int((b.get("cpu") or {}).get("usageCoreNanoSeconds") or 0) - int(
        (a.get("cpu") or {}).get("usageCoreNanoSeconds") or 0)
    return None if d < 0 else d / dt


def _ws(s: Obj) -> int:
    return int((s.get("memory") or {}).get("workingSetBytes") or 0)


class ResourceMetrics:
    """NodeMetrics and PodMetrics from the node agents' Summary API (`source`, set by the
    node proxy); `read` answers API requests (nodes and pods are read through it)."""

    def __init__(self, read: Read, interval: float = 5.0, min_window: float = 1.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.read = read
        self.monotonic = monotonic
        self.source: SummarySource | None = None
        self.interval = interval
        self.min_window = min_window
        self._samples: dict[str, list[Sample]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    # -- sampling ---------------------------------------------------------------------
    async def _take(self, node: str) -> bool:
        if self.source is None:
            return False
        got = await self.source(node)
        if isinstance(got, str):
            return False
        samples = self._samples.setdefault(node, [])
        samples.append((self.monotonic(), got))
        del samples[:-2]
        return True

    async def samples(self, node: str) -> tuple[Sample, Sample] | None:
        """The two newest samples of `node` (sampling as needed), or None if unreachable."""
        lock = self._locks.setdefault(node, asyncio.Lock())
        async with lock:
            have = self._samples.get(node) or []
            if not have or self.monotonic() - have[-1][0] >= self.interval:
                if not await self._take(node):
                    return None
            if len(self._samples[node]) < 2:
                await asyncio.sleep(self.min_window)
                if not await self._take(node):
                    return None
            a, b = self._samples[node][-2:]
            return a, b

    # -- objects -------------------------------------------------------------------------
    async def _list(self, path: str) -> list[Obj]:
        resp = await self.read(ApiRequest("GET", path))
        if resp.status != 200:
            raise StatusError(resp.status, resp.body.get("reason", ""), resp.body.get("message", ""))
        items: list[Obj] = resp.body.get("items") or []
        return items

    async def node_metrics(self, node: Obj, pods: list[Obj]) -> Obj | None:
        meta = node.get("metadata") or {}
        name = meta.get("name", "")
        labels = meta.get("labels") or {}
        out: Obj = {"metadata": {"name": name, "creationTimestamp": rfc3339(time.time()), "labels": labels}}
        if labels.get(LABEL_SIMULATED) == "true":
            mine = [p for p in pods if (p.get("spec") or {}).get("nodeName") == name]
            cpu = sum(_requests(p, "cpu") for p in mine)
            mem = sum(_requests(p, "memory") for p in mine)
            out["metadata"]["annotations"] = {ANNOTATION_SIMULATED: SIMULATED_NOTE}
            out.update(timestamp=rfc3339(time.time()), window=_window(self.interval),
                       usage={"cpu": _cpu(cpu * 1e6), "memory": _mem(int(mem))})
            return out
        got = await self.samples(name)
        if got is None:
            return None
        (t1, s1), (t2, s2) = got
        rate = _rate(s1.get("node"), s2.get("node"), t2 - t1)
        if rate is None:
            return None
        out.update(timestamp=rfc3339(time.time() - (self.monotonic() - t2)), window=_window(t2 - t1),
                   usage={"cpu": _cpu(rate), "memory": _mem(_ws(s2.get("node") or {}))})
        return out

    async def pod_metrics(self, pods: list[Obj], nodes: dict[str, Obj]) -> list[Obj]:
        by_node: dict[str, list[Obj]] = {}
        for p in pods:
            if (p.get("status") or {}).get("phase") == "Running":
                by_node.setdefault((p.get("spec") or {}).get("nodeName") or "", []).append(p)
        real = [n for n in sorted(by_node) if n in nodes and
                ((nodes[n].get("metadata") or {}).get("labels") or {}).get(LABEL_SIMULATED) != "true"]
        sampled = dict(zip(real, await asyncio.gather(*(self.samples(n) for n in real)), strict=True))
        out: list[Obj] = []
        for node_name, mine in sorted(by_node.items()):
            if node_name not in nodes:
                continue
            if node_name not in sampled:
                out += [_simulated_pod(p, self.interval) for p in mine]
                continue
            got = sampled[node_name]
            if got is not None:
                out += _pods_from_samples(mine, *got, age=self.monotonic() - got[1][0])
        return out

    # -- HTTP ----------------------------------------------------------------------------
    async def respond(self, req: ApiRequest, r: Resource, namespace: str | None, name: str | None,
                      sub: str | None) -> ApiResponse:
        if req.method.upper() != "GET" or sub is not None:
            raise method_not_allowed()
        if req.query.get("watch") in ("true", "1"):
            raise method_not_allowed()
        try:
            sel = parse_label_selector(req.query.get("labelSelector", ""))
        except ValueError as e:
            raise bad_request(f"unable to parse requirement: {e}") from e
        nodes = {n["metadata"]["name"]: n for n in await self._list("/api/v1/nodes")}
        for gone in set(self._samples) - set(nodes):  # deleted nodes: their samples go too
            del self._samples[gone]
        if r.plural == "nodes":
            if name is not None:
                nodes = {k: v for k, v in nodes.items() if k == name}
            pods = await self._list("/api/v1/pods") if any(
                (n["metadata"].get("labels") or {}).get(LABEL_SIMULATED) == "true" for n in nodes.values()) else []
            found = await asyncio.gather(*(self.node_metrics(n, pods) for n in nodes.values()
                                           if sel.matches(n["metadata"].get("labels"))))
            items = [m for m in found if m is not None]
        else:
            path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
            pods = [p for p in await self._list(path) if (name is None or p["metadata"]["name"] == name)
                    and sel.matches(p["metadata"].get("labels"))]
            items = await self.pod_metrics(pods, nodes)
        return _answer(req, r, items, namespace, name)


def _answer(req: ApiRequest, r: Resource, items: list[Obj], namespace: str | None, name: str | None) -> ApiResponse:
    for it in items:
        it["kind"], it["apiVersion"] = r.kind, API_VERSION
    if name is not None and not items:  # metrics-server's NotFound: nodemetrics "<name>", podmetrics "<ns>/<name>"
        raise not_found(r.kind.lower(), f"{namespace}/{name}" if namespace else name, GROUP)
    acc = codec.negotiate(req.headers.get("accept", ""))
    if acc.as_kind == "Table":  # `kubectl get nodemetrics|podmetrics`
        t = machinery.to_table(r, items, time.time())
        t["apiVersion"] = f"meta.k8s.io/{acc.version}"
        return ApiResponse(200, t)
    if name is not None:
        return ApiResponse(200, items[0])
    lst = [{k: v for k, v in it.items() if k not in ("kind", "apiVersion")} for it in items]
    return ApiResponse(200, {"kind": r.list_kind_name, "apiVersion": API_VERSION, "metadata": {}, "items": lst})


def _requests(pod: Obj, res: str) -> float:
    """Sum of a pod's containers' requests of `res` (millicores for cpu, bytes for memory)."""
    tot = 0.0
    for c in (pod.get("spec") or {}).get("containers") or []:
        v = ((c.get("resources") or {}).get("requests") or {}).get(res)
        if v is not None:
            tot += quantity.to_milli(v) if res == "cpu" else quantity.to_int(v)
    return tot


def _pod_meta(p: Obj) -> Obj:
    m = p.get("metadata") or {}
    return {"name": m.get("name"), "namespace": m.get("namespace"), "creationTimestamp": rfc3339(time.time()),
            "labels": m.get("labels") or {}}


def _simulated_pod(p: Obj, interval: float) -> Obj:
    meta = _pod_meta(p)
    meta["annotations"] = {ANNOTATION_SIMULATED: SIMULATED_NOTE}
    cs = []
    for c in (p.get("spec") or {}).get("containers") or []:
        one = {"spec": {"containers": [c]}}
        cs.append({"name": c.get("name"), "usage": {"cpu": _cpu(_requests(one, "cpu") * 1e6),
                                                    "memory": _mem(int(_requests(one, "memory")))}})
    return {"metadata": meta, "timestamp": rfc3339(time.time()), "window": _window(interval), "containers": cs}


def _pods_from_samples(pods: list[Obj], first: Sample, second: Sample, age: float) -> list[Obj]:
    (t1, s1), (t2, s2) = first, second
    old = {(p["podRef"].get("uid")): p for p in s1.get("pods") or []}
    new = {(p["podRef"].get("uid")): p for p in s2.get("pods") or []}
    out: list[Obj] = []
    for pod in pods:
        uid = pod["metadata"].get("uid")
        a, b = old.get(uid), new.get(uid)
        if a is None or b is None:
            continue
        before = {(c.get("name"), c.get("startTime")): c for c in a.get("containers") or []}
        cs: list[Obj] = []
        for c in b.get("containers") or []:
            rate = _rate(before.get((c.get("name"), c.get("startTime"))), c, t2 - t1)
            if rate is None:
                break
            cs.append({"name": c.get("name"), "usage": {"cpu": _cpu(rate), "memory": _mem(_ws(c))}})
        else:
            if cs:
                out.append({"metadata": _pod_meta(pod), "timestamp": rfc3339(time.time() - age),
                            "window": _window(t2 - t1), "containers": cs})
    return out


def register(api: Any) -> ResourceMetrics:
    """The API server's metrics.k8s.io (its node proxy sets `source`)."""
    return ResourceMetrics(api.handle)
