"""HorizontalPodAutoscaler controller (autoscaling/v2), as far as k8py has metrics.

k8py serves no resource metrics API (metrics.k8s.io) yet, so — exactly like a
Kubernetes cluster without metrics-server — the HPA cannot compute a replica count
from utilization: it keeps the target within [minReplicas, maxReplicas] through the
target's scale subresource ("Current number of replicas below Spec.MinReplicas" /
"above Spec.MaxReplicas"), and reports AbleToScale, ScalingActive False
(FailedGetResourceMetric, with a Warning event) and ScalingLimited, with
currentReplicas/desiredReplicas, every `period` seconds.
Invariants: only scales through `<target>/scale`; replicas 0 with minReplicas > 0
means autoscaling is disabled (ScalingDisabled), as in Kubernetes; the status is
written only when it changes.
"""

from __future__ import annotations

import copy
import logging

from k8py.api import resources
from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.events import NORMAL, WARNING, EventRecorder
from k8py.client.informer import SharedInformerFactory, split_key
from k8py.clock import Clock, rfc3339
from k8py.controllers.base import Controller
from k8py.controllers.controllerutil import (
    get_condition,
    meta,
)
from k8py.controllers.status import write_status

log = logging.getLogger(__name__)

SYNC_PERIOD = 15.0


class HorizontalPodAutoscalerController(Controller):
    name = "horizontal-pod-autoscaler"

    def __init__(self, client: Client, factory: SharedInformerFactory, clock: Clock,
                 recorder: EventRecorder | None = None, workers: int = 1, period: float = SYNC_PERIOD) -> None:
        super().__init__(client, factory, clock, recorder, workers)
        self.period = period
        self.hpas = self.informer("horizontalpodautoscalers")
        self.watch(self.hpas, self.enqueue)
        self._warned: set[tuple[str, str]] = set()

    def _cond(self, status: Obj, ctype: str, value: str, reason: str, message: str) -> None:
        now = rfc3339(self.clock.now())
        cur = get_condition(status, ctype)
        conds = [c for c in status.get("conditions") or [] if c.get("type") != ctype]
        ltt = cur.get("lastTransitionTime", now) if cur is not None and cur.get("status") == value else now
        conds.append({"type": ctype, "status": value, "lastTransitionTime": ltt, "reason": reason,
                      "message": message})
        order = {"AbleToScale": 0, "ScalingActive": 1, "ScalingLimited": 2}
        status["conditions"] = sorted(conds, key=lambda c: order.get(c["type"], 9))

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        hpa = self.hpas.get(ns, name)
        if hpa is None:
            return
        self.enqueue_after(key, self.period)
        spec = hpa.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        status = copy.deepcopy(hpa.get("status") or {})
        r = resources.by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        kind_name = f"{(ref.get('kind') or '').lower()}/{ref.get('name')}"
        scale: Obj | None = None
        if r is not None and "scale" in r.subresources:
            try:
                scale = await self.client.raw("GET", r.path(ns, ref.get("name", ""), "scale"))
            except ApiError as e:
                if not e.not_found:
                    raise
        if scale is None:
            msg = f"the HPA controller was unable to get the target's current scale: {kind_name} not found"
            self._cond(status, "AbleToScale", "False", "FailedGetScale", msg)
            await self._warn(hpa, "FailedGetScale", msg)
            await self._write(hpa, status)
            return
        self._cond(status, "AbleToScale", "True", "SucceededGetScale",
                   "the HPA controller was able to get the target's current scale")
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        lo = int(spec.get("minReplicas") or 1)
        hi = int(spec.get("maxReplicas") or lo)
        desired = current
        reason = ""
        status["currentReplicas"] = int((scale.get("status") or {}).get("replicas") or 0)
        if current == 0 and lo != 0:
            self._cond(status, "ScalingActive", "False", "ScalingDisabled",
                       "scaling is disabled since the replica count of the target is zero")
        else:
            metric = ((spec.get("metrics") or [{}])[0].get("resource") or {}).get("name", "cpu")
            msg = (f"the HPA was unable to compute the replica count: failed to get {metric} utilization: "
                   f"unable to get metrics for resource {metric}: no metrics returned from resource metrics API")
            self._cond(status, "ScalingActive", "False", "FailedGetResourceMetric", msg)
            await self._warn(hpa, "FailedGetResourceMetric", msg)
            if current > hi:
                desired, reason = hi, "Current number of replicas above Spec.MaxReplicas"
                self._cond(status, "ScalingLimited", "True", "TooManyReplicas",
                           "the desired replica count is more than the maximum replica count")
            elif current < lo:
                desired, reason = lo, "Current number of replicas below Spec.MinReplicas"
                self._cond(status, "ScalingLimited", "True", "TooFewReplicas",
                           "the desired replica count is less than the minimum replica count")
            else:
                self._cond(status, "ScalingLimited", "False", "DesiredWithinRange",
                           "the desired count is within the acceptable range")
        status["desiredReplicas"] = desired
        if desired != current and r is not None:
            s = copy.deepcopy(scale)
            s.setdefault("spec", {})["replicas"] = desired
            await self.client.raw("PUT", r.path(ns, ref.get("name", ""), "scale"), body=s)
            status["lastScaleTime"] = rfc3339(self.clock.now())
            self.recorder.event(hpa, NORMAL, "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
        await self._write(hpa, status)

    async def _warn(self, hpa: Obj, reason: str, message: str) -> None:
        k = (str(meta(hpa).get("uid")), reason)
        if k not in self._warned:
            self._warned.add(k)
            self.recorder.event(hpa, WARNING, reason, message)

    async def _write(self, hpa: Obj, status: Obj) -> None:
        if status != (hpa.get("status") or {}):
            await write_status(self.client, "horizontalpodautoscalers", hpa, status, ignore_conflict=True)
