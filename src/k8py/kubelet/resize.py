"""In-place pod resize (KEP-1287): the kubelet's side of `pods/resize`.

A pod's spec resources are what is *desired*; the kubelet keeps what it *allocated*
(admitted) and what each container was *configured* with (the runtime's
`ContainerStatus.resources`, set at create and by `update_container_resources`):

  desired (spec) --admit--> allocated --actuate--> configured (cgroups)

- admit: when the spec's CPU/memory differ from the allocation, the whole pod's new
  requests must fit the node: more than its allocatable -> `PodResizePending`
  `Infeasible` ("Node didn't have enough capacity: memory, requested: N, capacity: M"),
  more than what the other pods on this node leave -> `Deferred` (retried every sync);
  else the allocation becomes the spec (all containers at once, atomic as Kubernetes).
- actuate: each running container whose configuration differs from its allocation is
  updated in place (`runc update`), or restarted where its `resizePolicy` for a changed
  resource says `RestartContainer`. A memory limit below the container's current usage
  is not applied (that would OOM-kill it, or cgroup v1 refuses it): the resize stays
  `PodResizeInProgress` with reason `Error` and is retried every sync, as Kubernetes does.
- report: `containerStatuses[].allocatedResources` (allocated requests) and `.resources`
  (what the container is configured with), and the two conditions.
Containers (re)started later take the allocation (`spec_for`), never an unadmitted spec.
After an agent restart the allocation is read back from the pod's reported status.
The node's allocations are one `Allocations` shared by the pod workers (admission needs
the other pods' totals).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from k8py.api.quantity import format_quantity, to_int, to_milli
from k8py.api.types import Obj
from k8py.kubelet.status import ContainerView
from k8py.runtime.errors import NodeError
from k8py.runtime.protocol import ContainerResources, ContainerRuntime, ContainerState

log = logging.getLogger(__name__)
NAMES = ("cpu", "memory")
PENDING, IN_PROGRESS = "PodResizePending", "PodResizeInProgress"


@dataclass
class Allocations:
    """The allocated requests (cpu millicores, memory bytes) of each pod on this node."""

    pods: dict[str, tuple[int, int]] = field(default_factory=dict)

    def others(self, uid: str) -> tuple[int, int]:
        cpu = sum(c for u, (c, _) in self.pods.items() if u != uid)
        return cpu, sum(m for u, (_, m) in self.pods.items() if u != uid)


def cpu_mem(res: Obj | None) -> Obj:
    """The CPU and memory part of a container's resources (requests and limits)."""
    out: Obj = {}
    for part in ("requests", "limits"):
        vals = {k: v for k, v in ((res or {}).get(part) or {}).items() if k in NAMES}
        if vals:
            out[part] = vals
    return out


def configured(res: Obj) -> ContainerResources:
    """The runtime's settings for these resources (as the kubelet maps them to cgroups)."""
    lim, req = res.get("limits") or {}, res.get("requests") or {}
    cpu_req = req.get("cpu") or lim.get("cpu")
    return ContainerResources(memory_limit_bytes=to_int(lim["memory"]) if lim.get("memory") else 0,
                              cpu_limit_millis=to_milli(lim["cpu"]) if lim.get("cpu") else 0,
                              cpu_request_millis=to_milli(cpu_req) if cpu_req else 0)


def requests_of(allocated: dict[str, Obj]) -> tuple[int, int]:
    cpu = mem = 0
    for res in allocated.values():
        req = res.get("requests") or {}
        cpu += to_milli(req["cpu"]) if req.get("cpu") else 0
        mem += to_int(req["memory"]) if req.get("memory") else 0
    return cpu, mem


def resizable(spec: Obj) -> list[Obj]:
    """The containers whose resources may change: regular ones and sidecars."""
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    return sidecars + list(spec.get("containers") or [])


def _changed(have: ContainerResources, want: ContainerResources) -> list[str]:
    out = []
    if (have.cpu_limit_millis, have.cpu_request_millis) != (want.cpu_limit_millis, want.cpu_request_millis):
        out.append("cpu")
    if have.memory_limit_bytes != want.memory_limit_bytes:
        out.append("memory")
    return out


def _policy(c: Obj, resource: str) -> str:
    for p in c.get("resizePolicy") or []:
        if p.get("resourceName") == resource:
            return str(p.get("restartPolicy") or "NotRequired")
    return "NotRequired"


def _as_resources(have: ContainerResources, allocated: Obj) -> Obj:
    """A container's configured resources as Kubernetes reports them (quantities)."""
    if configured(allocated) == have:
        return allocated
    req = dict(allocated.get("requests") or {})
    lim: Obj = {}
    if have.cpu_request_millis:
        req["cpu"] = format_quantity(f"{have.cpu_request_millis}m")
    if have.cpu_limit_millis:
        lim["cpu"] = format_quantity(f"{have.cpu_limit_millis}m")
    if have.memory_limit_bytes:
        lim["memory"] = format_quantity(str(have.memory_limit_bytes), "BinarySI")
    return {k: v for k, v in (("requests", req), ("limits", lim)) if v}


class PodResize:
    """One pod's resize state, owned by its pod worker."""

    def __init__(self, uid: str, runtime: ContainerRuntime, allocations: Allocations,
                 allocatable: Callable[[], dict[str, str]], event: Callable[[str, str, str], None]) -> None:
        self.uid = uid
        self.runtime = runtime
        self.allocations = allocations
        self.allocatable = allocatable
        self.event = event
        self.allocated: dict[str, Obj] | None = None  # container name -> cpu/memory resources
        self.pending: tuple[str, str] | None = None  # (Infeasible|Deferred, message)
        self.errors: dict[str, str] = {}  # container name -> why its resize is not applied

    def forget(self) -> None:
        self.allocations.pods.pop(self.uid, None)

    def spec_for(self, c: Obj) -> Obj:
        """The container as it must be (re)started: with its allocated resources."""
        alloc = (self.allocated or {}).get(c["name"])
        if alloc is None or cpu_mem(c.get("resources")) == alloc:
            return c
        res = {k: v for k, v in (c.get("resources") or {}).items() if k not in ("requests", "limits")}
        for part in ("requests", "limits"):
            other = {k: v for k, v in ((c.get("resources") or {}).get(part) or {}).items() if k not in NAMES}
            merged = {**other, **(alloc.get(part) or {})}
            if merged:
                res[part] = merged
        return {**c, "resources": res}

    # ------------------------------------------------------------- admission
    def admit(self, pod: Obj) -> None:
        spec = pod.get("spec") or {}
        desired = {c["name"]: cpu_mem(c.get("resources")) for c in resizable(spec)}
        if self.allocated is None:
            self.allocated = self._restored(pod, desired)
        if desired != self.allocated:
            self.pending = self._check(desired)
            if self.pending is None:
                log.info("pod %s: resize admitted", self.uid)
                self.allocated = desired
        else:
            self.pending = None
        self.allocations.pods[self.uid] = requests_of(self.allocated)

    def _restored(self, pod: Obj, desired: dict[str, Obj]) -> dict[str, Obj]:
        """After an agent restart: the allocation this node reported (else the spec)."""
        st = pod.get("status") or {}
        out = dict(desired)
        for cs in (st.get("containerStatuses") or []) + (st.get("initContainerStatuses") or []):
            if cs.get("name") in out and isinstance(cs.get("resources"), dict):
                alloc = cpu_mem(cs["resources"])
                if cs.get("allocatedResources"):
                    alloc["requests"] = {k: v for k, v in cs["allocatedResources"].items() if k in NAMES}
                out[cs["name"]] = {k: v for k, v in alloc.items() if v}
        return out

    def _check(self, desired: dict[str, Obj]) -> tuple[str, str] | None:
        """None if the pod's new requests fit the node; else (reason, message) as the kubelet's."""
        cpu, mem = requests_of(desired)
        alloc = self.allocatable()
        cap_cpu = to_milli(alloc["cpu"]) if alloc.get("cpu") else None
        cap_mem = to_int(alloc["memory"]) if alloc.get("memory") else None
        if cap_mem is not None and mem > cap_mem:
            return "Infeasible", f"Node didn't have enough capacity: memory, requested: {mem}, capacity: {cap_mem}"
        if cap_cpu is not None and cpu > cap_cpu:
            return "Infeasible", f"Node didn't have enough capacity: cpu, requested: {cpu}, capacity: {cap_cpu}"
        used_cpu, used_mem = self.allocations.others(self.uid)
        if cap_mem is not None and used_mem + mem > cap_mem:
            return "Deferred", (f"Node didn't have enough resource: memory, requested: {mem}, used: {used_mem}, "
                                f"capacity: {cap_mem}")
        if cap_cpu is not None and used_cpu + cpu > cap_cpu:
            return "Deferred", (f"Node didn't have enough resource: cpu, requested: {cpu}, used: {used_cpu}, "
                                f"capacity: {cap_cpu}")
        return None

    # ------------------------------------------------------------- actuation
    async def actuate(self, views: list[ContainerView], restart: Callable[[ContainerView, str], Awaitable[None]]
                      ) -> bool:
        """Bring each running container to its allocation: in place, or restarted per resizePolicy.
        True if a container was updated in place (the runtime's snapshot is then stale)."""
        updated = False
        for v in views:
            name = v.spec["name"]
            latest = v.latest
            alloc = (self.allocated or {}).get(name)
            if latest is None or latest.state != ContainerState.RUNNING or alloc is None or latest.resources is None:
                self.errors.pop(name, None)
                continue
            want = configured(alloc)
            changed = _changed(latest.resources, want)
            if not changed:
                self.errors.pop(name, None)
                continue
            if any(_policy(v.spec, r) == "RestartContainer" for r in changed):
                self.errors.pop(name, None)
                await restart(v, f"Container {name} resize requires restart")
                continue
            updated = await self._update(v, latest.id, latest.resources, want) or updated
        return updated

    async def _update(self, v: ContainerView, cid: str, have: ContainerResources, want: ContainerResources) -> bool:
        name = v.spec["name"]
        if 0 < want.memory_limit_bytes < (have.memory_limit_bytes or 2**63):
            stats = await self.runtime.container_stats(cid)
            used = stats.memory_working_set_bytes if stats else 0
            if used > want.memory_limit_bytes:
                msg = (f"attempting to set container {name!r} memory limit ({want.memory_limit_bytes}) "
                       f"below current usage ({used})").replace("'", '"')
                if self.errors.get(name) != msg:
                    self.event("Warning", "ResizeError", msg)
                self.errors[name] = msg
                return False
        try:
            await self.runtime.update_container_resources(cid, want)
        except NodeError as e:
            msg = f"failed to update resources of container {name!r}: {e.message}".replace("'", '"')
            log.info("pod %s: %s", self.uid, msg)
            if self.errors.get(name) != msg:
                self.event("Warning", "ResizeError", msg)
            self.errors[name] = msg
            return False
        self.errors.pop(name, None)
        log.info("pod %s: container %s resized in place", self.uid, name)
        return True

    # ------------------------------------------------------------- status
    def report(self, st: Obj, views: list[ContainerView], old_conditions: list[Obj], now: str) -> None:
        """allocatedResources, resources and the resize conditions into a pod status `st`."""
        by_name = {v.spec["name"]: v for v in views}
        in_progress = bool(self.errors)
        for cs in (st.get("containerStatuses") or []) + (st.get("initContainerStatuses") or []):
            alloc = (self.allocated or {}).get(cs.get("name", ""))
            v = by_name.get(cs.get("name", ""))
            if alloc is None:
                continue
            if alloc.get("requests"):
                cs["allocatedResources"] = dict(alloc["requests"])
            latest = v.latest if v is not None else None
            running = latest is not None and latest.state == ContainerState.RUNNING and latest.resources is not None
            if running and latest is not None and latest.resources is not None:
                cs["resources"] = _as_resources(latest.resources, alloc)
                in_progress = in_progress or bool(_changed(latest.resources, configured(alloc)))
            else:
                cs["resources"] = alloc
        old = {str(c.get("type")): c for c in old_conditions}
        conds = [c for c in st.get("conditions") or [] if c.get("type") not in (PENDING, IN_PROGRESS)]
        if self.pending is not None:
            conds.append(_condition(PENDING, self.pending[0], self.pending[1], old, now))
        if in_progress:
            msg = "; ".join(self.errors[k] for k in sorted(self.errors))
            conds.append(_condition(IN_PROGRESS, "Error" if msg else "", msg, old, now))
        st["conditions"] = conds


def _condition(type_: str, reason: str, message: str, old: dict[str, Obj], now: str) -> Obj:
    prev = old.get(type_) or {}
    c: Obj = {"type": type_, "status": "True", "lastProbeTime": None,
              "lastTransitionTime": prev.get("lastTransitionTime") if prev.get("status") == "True" else now}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c
