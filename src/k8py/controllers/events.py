"""EventRecorder: writes core/v1 Events about objects, as client-go's recorder does.

An event names its object (involvedObject: kind, namespace, name, uid, apiVersion,
resourceVersion), a reason (CamelCase, e.g. ScalingReplicaSet), a message, a type
(Normal/Warning) and its source component. A repeat of the same (object, reason,
message) within the recorder's life bumps `count` and `lastTimestamp` of the event
it wrote instead of writing a new one. Invariant: recording never raises; a
failure to write an event is logged and dropped (events are best effort).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.clock import Clock, rfc3339

log = logging.getLogger(__name__)
Obj = dict[str, Any]

NORMAL = "Normal"
WARNING = "Warning"


class EventRecorder:
    def __init__(self, client: Client, component: str, clock: Clock, host: str = "") -> None:
        self.client = client
        self.component = component
        self.clock = clock
        self.host = host
        # (uid, reason, message) -> (namespace, event name, count)
        self._seen: dict[tuple[str, str, str], tuple[str, str, int]] = {}
        self.recorded: list[tuple[str, str, str, str]] = []  # (key, type, reason, message)

    async def event(self, obj: Obj, etype: str, reason: str, message: str) -> None:
        md = obj.get("metadata") or {}
        ns = md.get("namespace") or "default"
        key = f"{md.get('namespace', '')}/{md.get('name')}"
        self.recorded.append((key, etype, reason, message))
        now = rfc3339(self.clock.now())
        seen_key = (str(md.get("uid", "")), reason, message)
        try:
            prev = self._seen.get(seen_key)
            if prev is not None:
                pns, pname, count = prev
                try:
                    await self.client.patch("events", pname, {"count": count + 1, "lastTimestamp": now},
                                            pns)
                    self._seen[seen_key] = (pns, pname, count + 1)
                    return
                except ApiError as e:
                    if not e.not_found:
                        raise
            name = f"{md.get('name')}.{os.urandom(8).hex()}"
            involved: Obj = {
                "kind": obj.get("kind", ""), "name": md.get("name", ""),
                "uid": md.get("uid", ""), "apiVersion": obj.get("apiVersion", ""),
                "resourceVersion": md.get("resourceVersion", ""),
            }
            if md.get("namespace"):
                involved["namespace"] = md["namespace"]
            ev: Obj = {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": ns},
                "involvedObject": involved,
                "reason": reason, "message": message, "type": etype,
                "source": {"component": self.component, **({"host": self.host} if self.host else {})},
                "firstTimestamp": now, "lastTimestamp": now, "count": 1,
                "reportingComponent": self.component, "reportingInstance": self.host or self.component,
            }
            await self.client.create("events", ev, ns)
            self._seen[seen_key] = (ns, name, 1)
            if len(self._seen) > 4096:
                self._seen.pop(next(iter(self._seen)))
        except Exception as e:  # events are best effort
            log.debug("event %s %s on %s not recorded: %s", reason, message, key, e)

    def for_reason(self, reason: str) -> list[str]:
        """Messages recorded with a reason (for tests)."""
        return [m for _, _, r, m in self.recorded if r == reason]
