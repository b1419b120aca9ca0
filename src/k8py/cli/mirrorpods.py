"""kube-system mirror pods of the supervised control plane, as kubeadm's static pods show.

`k8py server --components processes` with its embedded node keeps, in kube-system, one pod
per part of the control plane and of the node, bound to the node, as a kubelet keeps
the mirror pods of its static pods: kube-apiserver-<node>, kube-scheduler-<node>,
kube-controller-manager-<node>, and the node's cluster DNS (kube-dns-<node>) and service
proxy (kube-proxy-<node>), which run in the API server's process. Each carries the
`kubernetes.io/config.mirror` annotation (the kubelet runs no container for it); its
status is Running and ready, with the restarts the supervisor counted and the start time
of the process.

`MirrorPods.sync()` is level-triggered: it compares what the supervisor knows with the
pods the API has and creates what is missing, updates a status that differs (CAS on
resourceVersion; a conflict waits for the next round), force-deletes a pod someone
deleted (a terminating mirror pod; then creates it anew) and deletes mirror pods of ours
that nothing backs any more. `run()` syncs every PERIOD seconds.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from k8py.api.wellknown import ANNOTATION_MIRROR_POD
from k8py.client.errors import ApiError
from k8py.clock import rfc3339

if TYPE_CHECKING:
    from collections.abc import Callable

    from k8py.api.types import Obj
    from k8py.client.client import Client

log = logging.getLogger("k8py.supervisor")

PERIOD = 1.0
NAMESPACE = "kube-system"
LABEL = "k8py.io/mirror"  # our mirror pods: value = the node's name


@dataclass(frozen=True)
class Static:
    """One part as its mirror pod shows it: the component, its process, its restarts."""

    component: str  # kube-apiserver, kube-scheduler, kube-controller-manager, kube-dns, kube-proxy
    pid: int
    restarts: int
    started_at: float  # wall clock
    tier: str = "control-plane"  # or "node"
    running: bool = True  # False: the supervisor waits to restart it


def mirror_pod(node: str, host_ip: str, s: Static) -> Obj:
    """The mirror pod of `s` on `node` (without status: the API clears it on create)."""
    config = f"k8py-{s.component}"
    labels = {"component": s.component, "tier": s.tier, LABEL: node}
    if s.component == "kube-dns":
        labels["k8s-app"] = "kube-dns"
    elif s.component == "kube-proxy":
        labels["k8s-app"] = "kube-proxy"
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{s.component}-{node}", "namespace": NAMESPACE, "labels": labels,
                         "annotations": {ANNOTATION_MIRROR_POD: config, "kubernetes.io/config.hash": config,
                                         "kubernetes.io/config.source": "k8py-supervisor"}},
            "spec": {"nodeName": node, "hostNetwork": True, "priorityClassName": "system-node-critical",
                     "priority": 2000001000,
                     "containers": [{"name": s.component, "image": "k8py", "command": ["k8py", s.component]}]},
            "status": pod_status(host_ip, s)}


def pod_status(host_ip: str, s: Static) -> Obj:
    started = rfc3339(s.started_at)
    ready = "True" if s.running else "False"
    conditions = [{"type": t, "status": "True" if t in ("Initialized", "PodScheduled") else ready,
                   "lastTransitionTime": started}
                  for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")]
    state: Obj = ({"running": {"startedAt": started}} if s.running
                  else {"waiting": {"reason": "CrashLoopBackOff", "message": "the supervisor restarts it"}})
    return {"phase": "Running", "hostIP": host_ip, "hostIPs": [{"ip": host_ip}], "podIP": host_ip,
            "podIPs": [{"ip": host_ip}], "startTime": started, "qosClass": "BestEffort", "conditions": conditions,
            "containerStatuses": [{"name": s.component, "image": "k8py", "imageID": "", "ready": s.running,
                                   "started": s.running, "restartCount": s.restarts,
                                   "containerID": f"k8py://{s.pid}", "state": state}]}


def _differs(live: Obj, want: Obj) -> bool:
    ls, ws = live.get("status") or {}, want["status"]
    lc, wc = (ls.get("containerStatuses") or [{}])[0], ws["containerStatuses"][0]
    return (ls.get("phase") != ws["phase"] or ls.get("startTime") != ws["startTime"]
            or ls.get("podIP") != ws["podIP"]
            or any(lc.get(k) != wc[k] for k in ("restartCount", "containerID", "ready", "state")))


class MirrorPods:
    """Keeps the mirror pods of `statics()` on `node` in the API."""

    def __init__(self, client: Client, node: str, statics: Callable[[], list[Static]]) -> None:
        self.client, self.node, self.statics = client, node, statics

    async def _host_ip(self) -> str:
        """The node's InternalIP (127.0.0.1 until it has one)."""
        node = await self.client.get_or_none("nodes", self.node)
        for a in ((node or {}).get("status") or {}).get("addresses") or []:
            if a.get("type") == "InternalIP":
                return str(a["address"])
        return "127.0.0.1"

    async def run(self) -> None:
        while True:
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the API may be restarting: the next round retries
                log.info("mirror pods: %s", e)
            await asyncio.sleep(PERIOD)

    async def sync(self) -> None:
        live = {p["metadata"]["name"]: p for p in (await self.client.list(
            "pods", NAMESPACE, label_selector=f"{LABEL}={self.node}"))["items"]}
        wanted, host_ip = {}, await self._host_ip()
        for s in self.statics():
            want = mirror_pod(self.node, host_ip, s)
            wanted[want["metadata"]["name"]] = want
        for name, want in wanted.items():
            await self._sync_one(live.get(name), want)
        for name, pod in live.items():
            if name not in wanted:
                await self._force_delete(pod)

    async def _sync_one(self, live: Obj | None, want: Obj) -> None:
        if live is not None and live["metadata"].get("deletionTimestamp"):
            await self._force_delete(live)  # deleted by someone: a new one replaces it, as a kubelet does
            live = None
        try:
            if live is None:
                live = await self.client.create("pods", {k: v for k, v in want.items() if k != "status"})
            if _differs(live, want):
                await self.client.update_status("pods", {**live, "status": want["status"]})
        except ApiError as e:
            if e.status != 409:  # a conflict: the next round reads it again
                raise

    async def _force_delete(self, pod: Obj) -> None:
        md = pod["metadata"]
        try:
            await self.client.delete("pods", md["name"], NAMESPACE, grace_period_seconds=0,
                                     preconditions={"uid": md["uid"]})
        except ApiError as e:
            if not (e.not_found or e.status == 409):
                raise
