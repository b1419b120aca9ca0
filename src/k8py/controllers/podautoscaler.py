"""HorizontalPodAutoscaler controller (autoscaling/v2) on Resource metrics (cpu, memory)
from metrics.k8s.io, as Kubernetes' podautoscaler does, every `period` seconds per HPA.

Each sync reads the target's `/scale` (replicas, selector); out of [minReplicas,
maxReplicas] it is brought back within ("Current number of replicas above
Spec.MaxReplicas"/"below Spec.MinReplicas"); replicas 0 with minReplicas > 0 is
ScalingDisabled. Otherwise every Resource metric (Utilization or AverageValue) proposes a
count (replicacalc.py: tolerance, unready and missing pods), the highest wins, and
hpabehavior.py applies the stabilization windows and policies. Conditions AbleToScale,
ScalingActive, ScalingLimited and status.currentMetrics carry Kubernetes' reasons; a
rescale is a `SuccessfulRescale` event.
Invariants: only scales through `<target>/scale`; the status is written only when it
changes, and its own status writes do not trigger a sync (only a new HPA or a spec change
does, besides the period); recommendations and scale events are kept per HPA in memory (lost on restart,
as in Kubernetes); the clock is injected.
"""

from __future__ import annotations

import copy
import logging
import re

from k8py.api import quantity, resources
from k8py.api.selectors import parse_label_selector
from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.events import NORMAL, WARNING, EventRecorder
from k8py.client.informer import SharedInformerFactory, split_key
from k8py.clock import Clock, parse_rfc3339, rfc3339
from k8py.controllers import hpabehavior
from k8py.controllers.base import Controller
from k8py.controllers.controllerutil import get_condition, meta
from k8py.controllers.replicacalc import MetricsError, PodMetric, resource_replicas
from k8py.controllers.status import write_status

log = logging.getLogger(__name__)

SYNC_PERIOD = 15.0
_WINDOW = re.compile(r"^([0-9.]+)(ms|s|m)$")


def _milli_str(m: int) -> str:
    return str(m // 1000) if m % 1000 == 0 else f"{m}m"


def _window(s: str) -> float:
    w = _WINDOW.match(s or "")
    if not w:
        return 0.0
    return float(w.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[w.group(2)]


class HorizontalPodAutoscalerController(Controller):
    name = "horizontal-pod-autoscaler"

    def __init__(self, client: Client, factory: SharedInformerFactory, clock: Clock,
                 recorder: EventRecorder | None = None, workers: int = 1, period: float = SYNC_PERIOD,
                 downscale_window: float = hpabehavior.DEFAULT_DOWNSCALE_WINDOW) -> None:
        super().__init__(client, factory, clock, recorder, workers)
        self.period = period
        self.downscale_window = downscale_window
        self.hpas = self.informer("horizontalpodautoscalers")
        self.pods = self.informer("pods")
        self.watch(self.hpas, self._on_hpa)
        self._generations: dict[str, tuple[str, int]] = {}  # key -> (uid, generation) last enqueued
        self._warned: set[tuple[str, str]] = set()
        self.history: dict[str, hpabehavior.History] = {}

    def _on_hpa(self, hpa: Obj) -> None:
        """A new HPA or a spec change syncs now; its own status writes do not (the period
        paces syncs, as Kubernetes' rate-limited resync does)."""
        key = f"{meta(hpa).get('namespace')}/{meta(hpa).get('name')}"
        gen = (str(meta(hpa).get("uid")), int(meta(hpa).get("generation") or 0))
        if self._generations.get(key) != gen:
            self._generations[key] = gen
            self.enqueue(hpa)

    def _cond(self, status: Obj, ctype: str, value: str, reason: str, message: str) -> None:
        now = rfc3339(self.clock.now())
        cur = get_condition(status, ctype)
        conds = [c for c in status.get("conditions") or [] if c.get("type") != ctype]
        ltt = cur.get("lastTransitionTime", now) if cur is not None and cur.get("status") == value else now
        conds.append({"type": ctype, "status": value, "lastTransitionTime": ltt, "reason": reason,
                      "message": message})
        order = {"AbleToScale": 0, "ScalingActive": 1, "ScalingLimited": 2}
        status["conditions"] = sorted(conds, key=lambda c: order.get(c["type"], 9))

    async def _get_scale(self, hpa: Obj, status: Obj) -> tuple[resources.Resource, Obj] | None:
        ns = meta(hpa)["namespace"]
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        r = resources.by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        scale: Obj | None = None
        if r is not None and "scale" in r.subresources:
            try:
                scale = await self.client.raw("GET", r.path(ns, ref.get("name", ""), "scale"))
            except ApiError as e:
                if not e.not_found:
                    raise
        if r is None or scale is None:
            msg = ("the HPA controller was unable to get the target's current scale: "
                   f"{(ref.get('kind') or '').lower()}/{ref.get('name')} not found")
            self._cond(status, "AbleToScale", "False", "FailedGetScale", msg)
            await self._warn(hpa, "FailedGetScale", msg)
            return None
        self._cond(status, "AbleToScale", "True", "SucceededGetScale",
                   "the HPA controller was able to get the target's current scale")
        return r, scale

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        hpa = self.hpas.get(ns, name)
        if hpa is None:
            self.history.pop(key, None)
            self._generations.pop(key, None)
            return
        self.enqueue_after(key, self.period)
        spec = hpa.get("spec") or {}
        status = copy.deepcopy(hpa.get("status") or {})
        got = await self._get_scale(hpa, status)
        if got is None:
            await self._write(hpa, status)
            return
        r, scale = got
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        lo = int(spec.get("minReplicas") or 1)
        hi = int(spec.get("maxReplicas") or lo)
        status["currentReplicas"] = int((scale.get("status") or {}).get("replicas") or 0)
        desired, reason = current, ""
        if current == 0 and lo != 0:
            self._cond(status, "ScalingActive", "False", "ScalingDisabled",
                       "scaling is disabled since the replica count of the target is zero")
        elif current > hi:
            desired, reason = hi, "Current number of replicas above Spec.MaxReplicas"
            self._cond(status, "ScalingLimited", "True", *hpabehavior.TOO_MANY)
        elif current < lo:
            desired, reason = lo, "Current number of replicas below Spec.MinReplicas"
            self._cond(status, "ScalingLimited", "True", *hpabehavior.TOO_FEW)
        else:
            desired, reason = await self._from_metrics(hpa, key, scale, status, current, lo, hi)
        status["desiredReplicas"] = desired
        if desired != current:
            s = copy.deepcopy(scale)
            s.setdefault("spec", {})["replicas"] = desired
            await self.client.raw("PUT", r.path(ns, (spec.get("scaleTargetRef") or {}).get("name", ""), "scale"),
                                  body=s)
            self.history.setdefault(key, hpabehavior.History()).record_scale(self.clock.now(), current, desired)
            status["lastScaleTime"] = rfc3339(self.clock.now())
            self.recorder.event(hpa, NORMAL, "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
        await self._write(hpa, status)

    async def _from_metrics(self, hpa: Obj, key: str, scale: Obj, status: Obj, current: int, lo: int,
                            hi: int) -> tuple[int, str]:
        """(desired replicas, rescale reason) from the HPA's metrics; conditions set."""
        spec = hpa.get("spec") or {}
        selector = (scale.get("status") or {}).get("selector") or ""
        proposal, what, current_metrics, errors = -1, "", [], []
        for m in spec.get("metrics") or []:
            try:
                n, label, cm = await self._resource_metric(meta(hpa)["namespace"], m, selector, current)
            except MetricsError as e:
                res = (m.get("resource") or {}).get("name", m.get("type", ""))
                errors.append((res, str(e)))
                continue
            current_metrics.append(cm)
            if n > proposal:
                proposal, what = n, label
        if proposal < 0:
            res, err = errors[0] if errors else ("cpu", "no metrics to compute a replica count from")
            msg = f"the HPA was unable to compute the replica count: failed to get {res} utilization: {err}"
            self._cond(status, "ScalingActive", "False", "FailedGetResourceMetric", msg)
            await self._warn(hpa, "FailedGetResourceMetric", msg)
            return current, ""
        status["currentMetrics"] = current_metrics
        self._cond(status, "ScalingActive", "True", "ValidMetricFound",
                   f"the HPA was able to successfully calculate a replica count from {what}")
        out = hpabehavior.normalize(self.history.setdefault(key, hpabehavior.History()), spec.get("behavior"),
                                    current, proposal, lo, hi, self.clock.now(), self.downscale_window)
        self._cond(status, "AbleToScale", "True", *out.able)
        self._cond(status, "ScalingLimited", "False" if out.limited == hpabehavior.WITHIN else "True",
                   *out.limited)
        reason = f"{what} above target" if out.replicas > current else "All metrics below target"
        return out.replicas, reason

    async def _resource_metric(self, ns: str, m: Obj, selector: str, current: int) -> tuple[int, str, Obj]:
        """(proposed replicas, what it was computed from, its currentMetrics entry)."""
        if m.get("type") != "Resource":
            raise MetricsError(f"metric type {m.get('type')} is not supported (Resource metrics only)")
        res = (m.get("resource") or {}).get("name", "")
        target = (m.get("resource") or {}).get("target") or {}
        pods = self._pods(ns, selector)
        metrics = await self._pod_metrics(ns, selector, res)
        now = self.clock.now()
        if target.get("type") == "Utilization":
            util = int(target.get("averageUtilization") or 0)
            result = resource_replicas(current, pods, metrics, res, now, target_utilization=util)
            cur: Obj = {"averageValue": _milli_str(result.average), "averageUtilization": result.utilization}
            label = f"{res} resource utilization (percentage of request)"
        elif target.get("type") == "AverageValue":
            avg = quantity.to_milli(target.get("averageValue") or "0")
            result = resource_replicas(current, pods, metrics, res, now, target_average=avg)
            cur = {"averageValue": _milli_str(result.average)}
            label = f"{res} resource"
        else:
            raise MetricsError(f"invalid resource metric target type {target.get('type')}")
        return result.replicas, label, {"type": "Resource", "resource": {"name": res, "current": cur}}

    def _pods(self, ns: str, selector: str) -> list[Obj]:
        sel = parse_label_selector(selector)
        return [p for p in self.pods.list() if meta(p).get("namespace") == ns and sel.matches(meta(p).get("labels"))]

    async def _pod_metrics(self, ns: str, selector: str, res: str) -> dict[str, PodMetric]:
        try:
            body = await self.client.raw("GET", f"/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods",
                                         query={"labelSelector": selector})
        except ApiError as e:
            raise MetricsError(f"unable to get metrics for resource {res}: unable to fetch metrics from "
                               f"resource metrics API: {e}") from e
        out: dict[str, PodMetric] = {}
        for it in body.get("items") or []:
            total = sum(quantity.to_milli((c.get("usage") or {}).get(res) or "0") for c in it.get("containers") or [])
            out[it["metadata"]["name"]] = PodMetric(total, parse_rfc3339(it.get("timestamp") or rfc3339(0)),
                                                    _window(it.get("window") or ""))
        if not out:
            raise MetricsError(f"unable to get metrics for resource {res}: no metrics returned from resource "
                               "metrics API")
        return out

    async def _warn(self, hpa: Obj, reason: str, message: str) -> None:
        k = (str(meta(hpa).get("uid")), reason)
        if k not in self._warned:
            self._warned.add(k)
            self.recorder.event(hpa, WARNING, reason, message)

    async def _write(self, hpa: Obj, status: Obj) -> None:
        if status != (hpa.get("status") or {}):
            await write_status(self.client, "horizontalpodautoscalers", hpa, status, ignore_conflict=True)
