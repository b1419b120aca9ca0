"""Pod status from what the runtime reports, as the kubelet's generateAPIPodStatus.

Container status: the newest attempt decides `state` (running / terminated / waiting
with the worker's reason, e.g. CrashLoopBackOff or ErrImagePull), the one before it
(or the newest, while waiting to restart) is `lastState`; restartCount = attempt.
Phase (Kubernetes' getPhase): Pending until init containers finish (a sidecar, an
init container with restartPolicy Always: until it has started) and every container
has started once; Running while any (sidecars included) runs or restarts;
Succeeded/Failed when all have stopped for good under the restart policy and the
sidecars are stopped (a stopped sidecar never counts, whatever its exit code). Conditions in Kubernetes'
order keep their lastTransitionTime while their status does not change.
Invariant: pure functions; the same input gives the same output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from k8py.api.types import Obj
from k8py.clock import rfc3339
from k8py.runtime.protocol import ContainerState, ContainerStatus

CONTAINER_ID_PREFIX = "runc://"


@dataclass
class ContainerView:
    """What the worker knows of one container name."""

    spec: Obj
    records: list[ContainerStatus] = field(default_factory=list)  # by attempt, newest last
    waiting: tuple[str, str] | None = None  # (reason, message) while not running
    ready: bool = False
    started: bool = False

    @property
    def latest(self) -> ContainerStatus | None:
        return self.records[-1] if self.records else None


def _terminated(r: ContainerStatus) -> Obj:
    t: Obj = {"exitCode": r.exit_code if r.exit_code is not None else 0, "reason": r.reason or "Error",
              "startedAt": rfc3339(r.started_at or r.created_at),
              "finishedAt": rfc3339(r.finished_at or r.created_at), "containerID": CONTAINER_ID_PREFIX + r.id}
    if r.message:
        t["message"] = r.message
    return t


def container_status(v: ContainerView, image_ids: dict[str, str]) -> Obj:
    c = v.spec
    latest = v.latest
    prev = v.records[-2] if len(v.records) >= 2 else None
    st: Obj = {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False,
               "restartCount": latest.attempt if latest else 0, "started": False, "state": {}, "lastState": {}}
    if latest is not None:
        st["containerID"] = CONTAINER_ID_PREFIX + latest.id
        st["imageID"] = image_ids.get(latest.image_id, latest.image_id)
    if v.waiting and (latest is None or latest.state != ContainerState.RUNNING):
        reason, msg = v.waiting
        st["state"] = {"waiting": {"reason": reason, **({"message": msg} if msg else {})}}
        if latest is not None and latest.state == ContainerState.EXITED:
            st["lastState"] = {"terminated": _terminated(latest)}
        elif prev is not None and prev.state == ContainerState.EXITED:
            st["lastState"] = {"terminated": _terminated(prev)}
    elif latest is None or latest.state in (ContainerState.CREATED, ContainerState.UNKNOWN):
        st["state"] = {"waiting": {"reason": "ContainerCreating"}}
    elif latest.state == ContainerState.RUNNING:
        st["state"] = {"running": {"startedAt": rfc3339(latest.started_at or latest.created_at)}}
        st["ready"] = v.ready
        st["started"] = v.started
        if prev is not None and prev.state == ContainerState.EXITED:
            st["lastState"] = {"terminated": _terminated(prev)}
    else:
        st["state"] = {"terminated": _terminated(latest)}
        if prev is not None and prev.state == ContainerState.EXITED:
            st["lastState"] = {"terminated": _terminated(prev)}
    return st


def is_sidecar(c: Obj) -> bool:
    """A restartable init container (`restartPolicy: Always`): Kubernetes' sidecar."""
    return c.get("restartPolicy") == "Always"


def init_container_statuses(views: list[ContainerView], image_ids: dict[str, str]) -> list[Obj]:
    """As the kubelet reports them: a regular init container is ready once it completed; a
    running one is started (it has no probes). A sidecar's started/ready come from its probes."""
    out = []
    for v in views:
        st = container_status(v, image_ids)
        if not is_sidecar(v.spec):
            term = st["state"].get("terminated")
            st["ready"] = bool(term and term.get("exitCode") == 0)
            st["started"] = "running" in st["state"]
        out.append(st)
    return out


def any_regular_started(statuses: list[Obj]) -> bool:
    """Kubernetes' HasAnyRegularContainerStarted: the pod was initialized once."""
    return any("running" in s["state"] or "terminated" in s["state"] for s in statuses)


def incomplete_inits(spec: Obj, init_statuses: list[Obj]) -> list[str]:
    """Init containers that hold initialization: a regular one until it exited 0, a sidecar
    until it has started (its startupProbe, if any, succeeded)."""
    by_name = {s["name"]: s for s in init_statuses}
    out = []
    for c in spec.get("initContainers") or []:
        st = by_name.get(c["name"]) or {"state": {}}
        if is_sidecar(c):
            done = "running" in st["state"] and bool(st.get("started"))
        else:
            done = (st["state"].get("terminated") or {}).get("exitCode") == 0
        if not done:
            out.append(c["name"])
    return out


def initialized(spec: Obj, init_statuses: list[Obj], statuses: list[Obj]) -> bool:
    return not incomplete_inits(spec, init_statuses) or any_regular_started(statuses)


def _init_phase_counts(spec: Obj, init_statuses: list[Obj]) -> tuple[int, int, int, int]:
    """(pending initialization, failed initialization, running sidecars, waiting sidecars),
    as getPhase counts them; an exited sidecar does not count."""
    by_name = {s["name"]: s for s in init_statuses}
    pending = failed = running = waiting = 0
    for c in spec.get("initContainers") or []:
        st = by_name.get(c["name"])
        if st is None:
            pending += 1
            continue
        s, last = st["state"], (st.get("lastState") or {}).get("terminated")
        if is_sidecar(c):
            if "running" in s:
                pending += 0 if st.get("started") else 1
                running += 1
            elif "waiting" in s and not last:
                pending += 1
                waiting += 1
        elif "terminated" in s:
            failed += 1 if s["terminated"].get("exitCode") != 0 else 0
        elif "waiting" in s and last:
            failed += 1 if last.get("exitCode") != 0 else 0
        else:
            pending += 1
    return pending, failed, running, waiting


def phase(spec: Obj, init_statuses: list[Obj], statuses: list[Obj], terminal: bool = False) -> str:
    """Kubernetes' getPhase: sidecars count as running while they run, never as stopped, so a
    pod whose main containers are done is Succeeded/Failed once its sidecars are stopped.
    `terminal`: the pod is being deleted and its containers are stopped for good, so whatever
    the restartPolicy it ends Succeeded (every container exited 0) or Failed."""
    policy = spec.get("restartPolicy") or "Always"
    pending_init, failed_init, running, waiting = _init_phase_counts(spec, init_statuses)
    stopped = succeeded = 0
    for st in statuses:
        s = st["state"]
        if "running" in s:
            running += 1
        elif "terminated" in s:
            stopped += 1
            if s["terminated"].get("exitCode") == 0:
                succeeded += 1
        elif "waiting" in s:
            if st.get("lastState", {}).get("terminated"):
                stopped += 1
                if st["lastState"]["terminated"].get("exitCode") == 0:
                    succeeded += 1
            else:
                waiting += 1
    if failed_init and policy == "Never":
        return "Failed"
    if (pending_init and not any_regular_started(statuses)) or waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "OnFailure":
            return "Running"
        return "Failed"
    return "Pending"


def _cond(type_: str, ok: bool, now: str, old: dict[str, Obj], reason: str = "", message: str = "") -> Obj:
    status = "True" if ok else "False"
    prev = old.get(type_)
    trans = prev.get("lastTransitionTime") if prev and prev.get("status") == status and \
        prev.get("lastTransitionTime") else now
    c: Obj = {"type": type_, "status": status, "lastProbeTime": None, "lastTransitionTime": trans}
    if not ok and reason:
        c["reason"] = reason
        c["message"] = message
    return c


def conditions(pod: Obj, sandbox_ready: bool, init_statuses: list[Obj], statuses: list[Obj],
               phase_: str, now: str) -> list[Obj]:
    """Kubernetes' pod conditions; Ready counts the sidecars' readiness before the containers'."""
    spec = pod.get("spec") or {}
    old = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}
    incomplete = [] if any_regular_started(statuses) else incomplete_inits(spec, init_statuses)
    sidecars = {c["name"] for c in spec.get("initContainers") or [] if is_sidecar(c)}
    unready = [s["name"] for s in init_statuses if s["name"] in sidecars and not s.get("ready")]
    unready += [s["name"] for s in statuses if not s.get("ready")]
    if phase_ == "Succeeded":
        # Kubernetes: a completed pod's containers are not ready, reason PodCompleted
        ready_ok = False
        reason = "PodCompleted"
        msg = ""
    else:
        ready_ok = not unready
        reason = "ContainersNotReady"
        msg = f"containers with unready status: [{' '.join(unready)}]"
    out = [
        _cond("PodReadyToStartContainers", sandbox_ready, now, old),
        _cond("Initialized", not incomplete, now, old, "ContainersNotInitialized",
              f"containers with incomplete status: [{' '.join(incomplete)}]"),
        _cond("Ready", ready_ok, now, old, reason, msg),
        _cond("ContainersReady", ready_ok, now, old, reason, msg),
    ]
    if phase_ == "Succeeded":
        for c in out[2:]:
            c.pop("message", None)
    sched = old.get("PodScheduled")
    out.append(sched if sched else _cond("PodScheduled", True, now, old))
    return out
