"""The status of a pod a simulated node "runs": phase Running, the usual conditions, every
container running (started, ready, never restarted) and every init container completed
(a sidecar, restartPolicy Always: running, started and ready).

Container IDs are `k8py-sim://<hash of pod uid and container name>`, stable across
calls. Invariant: a pure function of its inputs; PodScheduled keeps its transition time.
"""

from __future__ import annotations

import hashlib

from k8py.api.types import Obj


def _container_id(pod: Obj, name: str) -> str:
    return "k8py-sim://" + hashlib.sha256(f"{pod['metadata'].get('uid')}/{name}".encode()).hexdigest()[:32]


def _conditions(pod: Obj, now: str) -> list[Obj]:
    old = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}
    scheduled = old.get("PodScheduled") or {}
    return [
        {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": None, "lastTransitionTime": now},
        {"type": "Initialized", "status": "True", "lastProbeTime": None, "lastTransitionTime": now},
        {"type": "Ready", "status": "True", "lastProbeTime": None, "lastTransitionTime": now},
        {"type": "ContainersReady", "status": "True", "lastProbeTime": None, "lastTransitionTime": now},
        {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
         "lastTransitionTime": scheduled.get("lastTransitionTime", now) if scheduled.get("status") == "True" else now},
    ]


def running_status(pod: Obj, now: str, ip: str, host_ip: str | None) -> Obj:
    """The status fields of `pod` running at `ip` on a node at `host_ip` (None: no InternalIP)."""
    spec = pod.get("spec") or {}
    containers = [{
        "name": c["name"], "image": c.get("image", ""), "imageID": "", "containerID": _container_id(pod, c["name"]),
        "ready": True, "started": True, "restartCount": 0,
        "state": {"running": {"startedAt": now}}, "lastState": {},
    } for c in spec.get("containers") or []]
    inits = [{
        "name": c["name"], "image": c.get("image", ""), "imageID": "", "containerID": _container_id(pod, c["name"]),
        "ready": True, "restartCount": 0, "lastState": {},
        "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now,
                                 "containerID": _container_id(pod, c["name"])}},
    } if c.get("restartPolicy") != "Always" else {  # a sidecar runs beside the containers
        "name": c["name"], "image": c.get("image", ""), "imageID": "", "containerID": _container_id(pod, c["name"]),
        "ready": True, "started": True, "restartCount": 0, "lastState": {}, "state": {"running": {"startedAt": now}},
    } for c in spec.get("initContainers") or []]
    st: Obj = {"phase": "Running", "conditions": _conditions(pod, now), "podIP": ip, "podIPs": [{"ip": ip}],
               "startTime": (pod.get("status") or {}).get("startTime") or now,
               "containerStatuses": containers}
    if inits:
        st["initContainerStatuses"] = inits
    if host_ip:
        st["hostIP"] = host_ip
        st["hostIPs"] = [{"ip": host_ip}]
    return st
