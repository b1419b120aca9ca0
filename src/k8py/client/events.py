"""EventRecorder: writes core/v1 Events as Kubernetes components do, without blocking
the caller.

`event(obj, type, reason, message)` returns at once; a background task writes the
Event. Repeats of the same (object, type, reason, message) within the aggregation
window update the first Event's count and lastTimestamp instead of creating a new one
("(x15 over 91m)" in kubectl describe). Invariants: at most `max_in_flight` writes run
at once; write failures are logged, never raised to the caller; the recorder owns its
write tasks, and whoever made the recorder `close()`s it when its component stops (no
write outlives the component, so none reaches an API server that is shutting down).
"""

from __future__ import annotations

import asyncio
import logging

from k8py.api.types import Obj
from k8py.api.wellknown import NAMESPACE_DEFAULT
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.clock import Clock, RealClock, rfc3339

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"
AGGREGATION_WINDOW = 600.0  # seconds, as client-go's event correlator


class EventRecorder:
    def __init__(self, client: Client, component: str, clock: Clock | None = None, *,
                 host: str | None = None, max_in_flight: int = 32) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.clock: Clock = clock or RealClock()
        self._sem = asyncio.Semaphore(max_in_flight)
        self._seen: dict[tuple[str, str, str, str], tuple[str, str, int, float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._seq = 0
        self._closed = False

    def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        if self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._write(obj, type_, reason, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Wait until every event recorded so far has been written (for tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel the writes still pending and wait until they stopped; later events are dropped."""
        self._closed = True
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _write(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        async with self._sem:
            try:
                await self._write_one(obj, type_, reason, message)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # events are best effort
                log.info("event %s for %s not written: %s", reason, obj.get("metadata", {}).get("name"), e)

    async def _write_one(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        md = obj.get("metadata") or {}
        kind = obj.get("kind") or ""
        ns = md.get("namespace") or NAMESPACE_DEFAULT
        uid = str(md.get("uid") or md.get("name"))
        now = self.clock.now()
        ts = rfc3339(now)
        key = (uid, type_, reason, message)
        seen = self._seen.get(key)
        if seen is not None and now - seen[3] <= AGGREGATION_WINDOW:
            name, ens, count, _ = seen
            count += 1
            self._seen[key] = (name, ens, count, now)
            try:
                await self.client.patch("events", name, {"count": count, "lastTimestamp": ts}, ens)
                return
            except ApiError as e:
                if not e.not_found:
                    raise
        self._seq += 1
        name = f"{md.get('name')}.{int(now * 1e9) + self._seq:x}"
        ev: Obj = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {
                "kind": kind, "namespace": md.get("namespace") or "", "name": md.get("name"),
                "uid": md.get("uid") or md.get("name"), "apiVersion": obj.get("apiVersion") or "v1",
                "resourceVersion": md.get("resourceVersion") or "",
            },
            "reason": reason, "message": message, "type": type_,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "firstTimestamp": ts, "lastTimestamp": ts, "count": 1,
            "eventTime": None,
            "reportingComponent": self.component, "reportingInstance": self.host or self.component,
        }
        if not md.get("namespace"):
            ev["involvedObject"].pop("namespace")
        await self.client.create("events", ev, ns)
        self._seen[key] = (name, ns, 1, now)
        if len(self._seen) > 4096:  # forget the oldest half
            for k in sorted(self._seen, key=lambda k: self._seen[k][3])[:2048]:
                del self._seen[k]
