"""The kubelet's eviction manager: hard eviction thresholds on memory.available,
nodefs.available and pid.available, the node pressure they mean, and which pod to evict.

`parse_thresholds("memory.available<100Mi,nodefs.available<10%,pid.available<5%")` reads
the kubelet's --eviction-hard form (K8PY_AGENT_EVICTION_HARD); the default is Kubernetes'
(memory.available<100Mi, nodefs.available<10%) plus pid.available<5% (Kubernetes sets none
by default; k8py does, so that PID pressure is acted on). `EvictionManager(thresholds,
clock).synchronize(stats, pods)` is one pass of the manager's loop:
- a threshold is met when the observed available amount is below its quantity (a
  percentage is of the capacity);
- its pressure condition (MemoryPressure, DiskPressure, PIDPressure) holds while a
  threshold is met and for `transition_period` (the kubelet's
  --eviction-pressure-transition-period, 5 min) after the last time it was met;
- at most one pod is chosen per pass (as the kubelet), ranked as Kubernetes ranks them:
  memory: pods whose usage exceeds their requests first, then lower priority, then
  usage above requests; disk (ephemeral-storage): the same with disk usage; pids: lower
  priority, then more processes. Critical pods (priority >= 2000000000, or static and
  mirror pods) are never chosen;
- the evicted pod's status is phase Failed, reason Evicted and Kubernetes' message
  ("The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. ...").
Invariant: no I/O; the stats and the clock come from the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from k8py.api.quantity import to_int
from k8py.api.types import Obj
from k8py.clock import Clock

MEMORY, NODEFS, PIDS = "memory.available", "nodefs.available", "pid.available"
DEFAULT_EVICTION_HARD = "memory.available<100Mi,nodefs.available<10%,pid.available<5%"
CONDITIONS = {MEMORY: "MemoryPressure", NODEFS: "DiskPressure", PIDS: "PIDPressure"}
RESOURCES = {MEMORY: "memory", NODEFS: "ephemeral-storage", PIDS: "pids"}
CRITICAL_PRIORITY = 2_000_000_000
REASON = "Evicted"
TRANSITION_PERIOD = 300.0


@dataclass(frozen=True)
class Threshold:
    signal: str
    quantity: int = 0  # bytes or processes, when not a percentage
    percentage: float = 0.0  # of the capacity, when given as N%
    text: str = ""  # as written (for the message)

    def value(self, capacity: int) -> int:
        return int(capacity * self.percentage) if self.percentage else self.quantity


def parse_thresholds(text: str) -> list[Threshold]:
    """The --eviction-hard form: signal<quantity or signal<N%, comma-separated; a
    malformed one is a ValueError naming it."""
    out: list[Threshold] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        signal, sep, raw = part.partition("<")
        if not sep or signal not in CONDITIONS or not raw:
            raise ValueError(f"eviction threshold {part!r}: want {'|'.join(CONDITIONS)}<quantity or <N%")
        try:
            if raw.endswith("%"):
                pct = float(raw[:-1]) / 100
                if not 0 < pct <= 1:
                    raise ValueError(raw)
                out.append(Threshold(signal, percentage=pct, text=raw))
            else:
                out.append(Threshold(signal, quantity=to_int(raw), text=raw))
        except (ValueError, ArithmeticError) as e:
            raise ValueError(f"eviction threshold {part!r}: bad quantity {raw!r}") from e
    return out


@dataclass(frozen=True)
class Observed:
    available: int
    capacity: int


@dataclass(frozen=True)
class PodUsage:
    memory: int = 0  # working set bytes
    disk: int = 0  # ephemeral storage bytes (logs, writable layer, emptyDirs)
    pids: int = 0


@dataclass
class NodeStats:
    """One observation: each signal's available amount and capacity, and each pod's usage by uid."""

    signals: dict[str, Observed]
    pods: dict[str, PodUsage] = field(default_factory=dict)


@dataclass
class Decision:
    conditions: dict[str, bool]  # condition type -> under pressure
    pod: Obj | None = None  # the pod to evict this pass
    message: str = ""


def _requests(pod: Obj, resource: str) -> int:
    total = 0
    for c in pod.get("spec", {}).get("containers", []):
        raw = (c.get("resources") or {}).get("requests", {}).get(resource)
        if raw is not None:
            total += to_int(str(raw))
    return total


def _priority(pod: Obj) -> int:
    return int(pod.get("spec", {}).get("priority") or 0)


def is_critical(pod: Obj) -> bool:
    annotations = pod.get("metadata", {}).get("annotations") or {}
    return (_priority(pod) >= CRITICAL_PRIORITY or "kubernetes.io/config.mirror" in annotations
            or annotations.get("kubernetes.io/config.source", "api") != "api")


def _usage(stats: NodeStats, pod: Obj) -> PodUsage:
    return stats.pods.get(pod.get("metadata", {}).get("uid", ""), PodUsage())


def rank(signal: str, pods: Sequence[Obj], stats: NodeStats) -> list[Obj]:
    """`pods` in the order the kubelet evicts them for `signal` (first: evicted first)."""
    def key(pod: Obj) -> tuple[int, int, int]:
        u = _usage(stats, pod)
        if signal == PIDS:
            return (0, _priority(pod), -u.pids)
        used, resource = (u.memory, "memory") if signal == MEMORY else (u.disk, "ephemeral-storage")
        over = used - _requests(pod, resource)
        return (0 if over > 0 else 1, _priority(pod), -over)
    return sorted(pods, key=key)


def _fmt(n: int, signal: str) -> str:
    if signal == PIDS:
        return str(n)
    for unit, size in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if n >= size and n % size == 0 or n >= 10 * size:
            return f"{n // size}{unit}"
    return str(n)


def eviction_message(signal: str, threshold: Threshold, observed: Observed, pod: Obj, stats: NodeStats) -> str:
    """Kubernetes' words for an eviction (eviction/helpers.go's message formats)."""
    resource = RESOURCES[signal]
    msg = (f"The node was low on resource: {resource}. "
           f"Threshold quantity: {threshold.text}, available: {_fmt(observed.available, signal)}. ")
    if signal != PIDS:
        used = _usage(stats, pod).memory if signal == MEMORY else _usage(stats, pod).disk
        containers = pod.get("spec", {}).get("containers", [])
        if len(containers) == 1:  # per-container usage is known only for a pod of one container
            request = _requests(pod, resource)
            msg += (f"Container {containers[0].get('name', '')} was using {_fmt(used, signal)}, request is "
                    f"{_fmt(request, signal)}, has larger consumption of {resource}. ")
    return msg


def evicted_status(pod: Obj, message: str) -> Obj:
    """The status the kubelet writes for an evicted pod."""
    status = dict(pod.get("status") or {})
    status.update({"phase": "Failed", "reason": REASON, "message": message})
    return status


class EvictionManager:
    def __init__(self, thresholds: Sequence[Threshold], clock: Clock,
                 transition_period: float = TRANSITION_PERIOD) -> None:
        self.thresholds = list(thresholds)
        self.clock = clock
        self.transition_period = transition_period
        self._last_met: dict[str, float] = {}  # condition type -> when a threshold was last met

    def met(self, stats: NodeStats) -> list[tuple[Threshold, Observed]]:
        out = []
        for t in self.thresholds:
            obs = stats.signals.get(t.signal)
            if obs is not None and obs.available < t.value(obs.capacity):
                out.append((t, obs))
        return out

    def synchronize(self, stats: NodeStats, pods: Sequence[Obj],
                    active: Callable[[Obj], bool] = lambda p: True) -> Decision:
        now = self.clock.monotonic()
        met = self.met(stats)
        for t, _ in met:
            self._last_met[CONDITIONS[t.signal]] = now
        conditions = {c: now - self._last_met[c] < self.transition_period if c in self._last_met else False
                      for c in CONDITIONS.values()}
        candidates = [p for p in pods if active(p) and not is_critical(p)]
        for t, obs in met:  # in the order the thresholds were given
            ranked = rank(t.signal, candidates, stats)
            if ranked:
                return Decision(conditions, ranked[0], eviction_message(t.signal, t, obs, ranked[0], stats))
        return Decision(conditions)
