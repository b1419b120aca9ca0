"""kube-system lists the supervised control plane and the node's DNS and proxy as mirror
pods (as kubeadm's static pods), on a cluster with its embedded node agent, which runs in
a process of its own."""

from __future__ import annotations

import os
import signal
from typing import Any

from e2e_harness import wait_for
from helpers.procs import component_pids

PARTS = ("kube-apiserver", "kube-scheduler", "kube-controller-manager", "kube-dns", "kube-proxy")


def mirror_pods(c: Any) -> dict[str, Any]:
    return {p["metadata"]["name"]: p for p in c.kubectl_json("get", "pods", "-n", "kube-system")["items"]}


def running(pod: Any) -> bool:
    cs = pod["status"].get("containerStatuses") or [{}]
    return bool(pod["status"].get("phase") == "Running" and cs[0].get("ready"))


def test_kube_system_shows_the_control_plane(agent_cluster: Any) -> None:
    c, node = agent_cluster, agent_cluster.node_name
    names = [f"{part}-{node}" for part in PARTS]
    pods = wait_for(lambda: (p := mirror_pods(c)) and all(n in p and running(p[n]) for n in names) and p,
                    timeout=60, what="five Running mirror pods")
    assert c.proc is not None
    pids = component_pids(c.proc.pid)
    assert sorted(pids) == ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"]
    assert pods[f"kube-proxy-{node}"]["status"]["containerStatuses"][0]["containerID"] == f"k8py://{pids['kubelet']}"
    sched = pods[f"kube-scheduler-{node}"]
    assert "kubernetes.io/config.mirror" in sched["metadata"]["annotations"] and sched["spec"]["nodeName"] == node
    assert sched["status"]["containerStatuses"][0]["restartCount"] == 0

    # Deleted: made again. Its process killed: restarted, and the restart counted.
    c.kubectl("delete", "pod", "-n", "kube-system", f"kube-scheduler-{node}", "--wait=false")
    wait_for(lambda: (p := mirror_pods(c).get(f"kube-scheduler-{node}")) and running(p)
             and p["metadata"]["uid"] != sched["metadata"]["uid"], timeout=60, what="a new mirror pod")
    os.kill(component_pids(c.proc.pid)["kube-scheduler"], signal.SIGKILL)
    wait_for(lambda: (p := mirror_pods(c).get(f"kube-scheduler-{node}")) and running(p)
             and p["status"]["containerStatuses"][0]["restartCount"] == 1, timeout=60, what="restartCount 1")
    out = c.kubectl("get", "pods", "-n", "kube-system").stdout
    assert all(f"{part}-{node}" in out for part in PARTS)
