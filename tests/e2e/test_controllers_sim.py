"""The control loops of the course on three simulated nodes, driven by the real kubectl:
a Deployment spread over the nodes, scaling up and down, a deleted replica replaced, a
rolling update watched from the API's watch stream, `rollout undo`, a pod that does
not fit (and fits once room is freed), a node whose heartbeat stops, cascading delete.
Simulated nodes run no containers (they say so); their pods are Running at once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from e2e_harness import K8pyServer, wait_for
from helpers.corpus import EXAMPLES

pytestmark = pytest.mark.e2e

EXAMPLE = EXAMPLES / "controllers" / "nginx-deployment.yaml"
SEL = "app.kubernetes.io/name=nginx"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[K8pyServer]:
    s = K8pyServer(tmp_path_factory.mktemp("k8py-ctl") / "data",
                   extra_args=("--simulated-nodes", "3", "--node-capacity", "cpu=4,memory=8Gi,pods=110",
                               "--pod-eviction-timeout", "5")).start()
    try:
        wait_for(lambda: len(s.kubectl_json("get", "nodes")["items"]) == 3, 60, "3 simulated nodes")
        s.kubectl("wait", "--for=condition=Ready", "node", "--all", "--timeout=60s", timeout=70)
        yield s
    finally:
        s.stop()


def live_pods(s: K8pyServer, sel: str = SEL) -> list[dict[str, Any]]:
    return [p for p in s.kubectl_json("get", "pods", "-l", sel)["items"] if not p["metadata"].get("deletionTimestamp")]


def running(s: K8pyServer, n: int, sel: str = SEL) -> list[dict[str, Any]] | None:
    ps = live_pods(s, sel)
    return ps if len(ps) == n and all(p["status"].get("phase") == "Running" for p in ps) else None


def test_deployment_spreads_scales_and_heals(sim: K8pyServer) -> None:
    s = sim
    s.kubectl("apply", "-f", str(EXAMPLE))
    pods = wait_for(lambda: running(s, 3), 60, "3 running replicas")
    assert len({p["spec"]["nodeName"] for p in pods}) == 3  # one per node
    s.kubectl("scale", "deployment/nginx-deployment", "--replicas=10")
    ten = wait_for(lambda: running(s, 10), 60, "10 running replicas")
    s.kubectl("scale", "deployment/nginx-deployment", "--replicas=2")
    kept = {p["metadata"]["name"] for p in wait_for(lambda: running(s, 2), 60, "2 replicas left")}
    # The right ones went, by Kubernetes' order for equally ready pods: replicas sharing a
    # node with more of their kind first, then those ready for less time, then the newest.
    per_node: dict[str, int] = {}
    for p in ten:
        per_node[p["spec"]["nodeName"]] = per_node.get(p["spec"]["nodeName"], 0) + 1

    def goes_first(p: dict[str, Any]) -> tuple[int, str, str]:
        ready_at = next(c["lastTransitionTime"] for c in p["status"]["conditions"] if c["type"] == "Ready")
        return (per_node[p["spec"]["nodeName"]], ready_at, p["metadata"]["creationTimestamp"])
    gone = [goes_first(p) for p in ten if p["metadata"]["name"] not in kept]
    stay = [goes_first(p) for p in ten if p["metadata"]["name"] in kept]
    assert min(gone) >= max(stay), (gone, stay)
    victim = sorted(kept)[0]
    s.kubectl("delete", "pod", victim)
    healed = wait_for(lambda: running(s, 2), 60, "a replacement replica")
    names = {p["metadata"]["name"] for p in healed}
    assert victim not in names and len(names - kept) == 1


def test_rolling_update_keeps_enough_ready_pods_then_undo(sim: K8pyServer) -> None:
    from kubernetes import client as kc
    from kubernetes import config as kconf
    from kubernetes import watch as kw
    s = sim
    s.kubectl("scale", "deployment/nginx-deployment", "--replicas=4")  # maxUnavailable 25% -> 1
    wait_for(lambda: running(s, 4), 60, "4 running replicas")
    api = kc.CoreV1Api(kconf.new_client_from_config(str(s.kubeconfig)))
    rv = api.list_namespaced_pod("default", label_selector=SEL).metadata.resource_version
    ready: dict[str, bool] = {p["metadata"]["name"]: True for p in live_pods(s)}
    lowest = [len(ready)]
    stop = threading.Event()
    w = kw.Watch()

    broke: list[str] = []  # the watch ended before the rollout did: `lowest` would miss events

    def follow() -> None:
        try:
            for ev in w.stream(api.list_namespaced_pod, "default", label_selector=SEL, resource_version=rv,
                               timeout_seconds=120):
                p = ev["object"]
                name = p.metadata.name
                conds = {c.type: c.status for c in (p.status.conditions or [])}
                ok = ev["type"] != "DELETED" and not p.metadata.deletion_timestamp and conds.get("Ready") == "True"
                ready[name] = ok
                lowest[0] = min(lowest[0], sum(ready.values()))
                if stop.is_set():
                    return
        except Exception as e:  # noqa: BLE001 - reported below unless the test had stopped watching
            if not stop.is_set():
                broke.append(repr(e))
            return
        if not stop.is_set():
            broke.append("the watch ended")

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    try:
        s.kubectl("set", "image", "deployment/nginx-deployment", "nginx=nginx:1.16.1")
        s.kubectl("rollout", "status", "deployment/nginx-deployment", "--timeout=90s", timeout=100)
        images = {p["spec"]["containers"][0]["image"] for p in wait_for(lambda: running(s, 4), 60, "4 new")}
        assert images == {"nginx:1.16.1"}
    finally:
        stop.set()
        w.stop()
    assert not broke, broke
    assert sum(ready.values()) >= 3
    assert lowest[0] >= 4 - 1, f"ready pods dropped to {lowest[0]} during the rollout"
    s.kubectl("rollout", "undo", "deployment/nginx-deployment")
    s.kubectl("rollout", "status", "deployment/nginx-deployment", "--timeout=90s", timeout=100)
    d = s.kubectl_json("get", "deployment", "nginx-deployment")
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.14.2"


def pod(name: str, memory: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "big"}},
            "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"memory": memory}}}],
                     **spec}}


def test_a_pod_that_does_not_fit_waits_with_the_reason_then_runs(sim: K8pyServer) -> None:
    s = sim
    # fill each 8Gi node with a 6Gi pod, then ask for 4Gi: no node has room
    fillers = [pod(f"filler-{n}", "6Gi", nodeSelector={"kubernetes.io/hostname": n})
               for n in ("sim-1", "sim-2", "sim-3")]
    s.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(fillers))
    wait_for(lambda: running(s, 3, "app=big"), 60, "fillers running")
    s.kubectl("apply", "-f", "-", input=json.dumps(pod("too-big", "4Gi")))

    def reason() -> str | None:
        evs = s.kubectl_json("get", "events", "--field-selector", "involvedObject.name=too-big,reason=FailedScheduling")
        return evs["items"][0]["message"] if evs["items"] else None
    msg = wait_for(reason, 60, "a FailedScheduling event")
    assert msg.startswith("0/3 nodes are available: 3 Insufficient memory."), msg
    assert s.kubectl_json("get", "pod", "too-big")["status"]["phase"] == "Pending"
    s.kubectl("delete", "pod", "filler-sim-2")
    placed = wait_for(lambda: s.kubectl_json("get", "pod", "too-big")["spec"].get("nodeName"), 60, "too-big placed")
    assert placed == "sim-2"
    s.kubectl("delete", "pods", "-l", "app=big")


def test_a_dead_nodes_pods_come_back_elsewhere_but_not_its_daemonset_pod(sim: K8pyServer) -> None:
    s = sim
    s.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "logs"},
        "spec": {"selector": {"matchLabels": {"app": "logs"}}, "template": {
            "metadata": {"labels": {"app": "logs"}},
            "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1d"]}]}}}}))
    ds = wait_for(lambda: running(s, 3, "app=logs"), 60, "one DaemonSet pod per node")
    assert sorted(p["spec"]["nodeName"] for p in ds) == ["sim-1", "sim-2", "sim-3"]
    s.kubectl("scale", "deployment/nginx-deployment", "--replicas=6")
    pods = wait_for(lambda: running(s, 6), 60, "6 replicas")
    dead = "sim-3"
    on_dead = {p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == dead}
    assert on_dead, "the spread left no replica on sim-3"
    s.kubectl("annotate", "node", dead, "k8py.io/simulated-heartbeat=paused", "--overwrite")

    def not_ready() -> bool:
        conds = {c["type"]: c["status"] for c in s.kubectl_json("get", "node", dead)["status"]["conditions"]}
        return conds.get("Ready") == "Unknown"
    wait_for(not_ready, 90, "the node NotReady (Unknown)")

    def moved() -> list[dict[str, Any]] | None:
        ps = running(s, 6)
        return ps if ps and all(p["spec"]["nodeName"] != dead for p in ps) else None
    after = wait_for(moved, 90, "the replicas running on the other nodes")
    assert not on_dead & {p["metadata"]["name"] for p in after}
    ds_pods = s.kubectl_json("get", "pods", "-l", "app=logs")["items"]
    assert sorted(p["spec"]["nodeName"] for p in ds_pods) == ["sim-1", "sim-2", "sim-3"]  # not recreated elsewhere
    s.kubectl("annotate", "node", dead, "k8py.io/simulated-heartbeat=running", "--overwrite")
    s.kubectl("delete", "daemonset", "logs")


def test_deleting_a_deployment_removes_its_replica_sets_and_pods(sim: K8pyServer) -> None:
    s = sim
    s.kubectl("delete", "deployment", "nginx-deployment")  # background cascade
    wait_for(lambda: not s.kubectl_json("get", "rs", "-l", SEL)["items"], 60, "replica sets gone")
    wait_for(lambda: not s.kubectl_json("get", "pods", "-l", SEL)["items"], 60, "pods gone")


def test_a_node_added_later_gets_its_daemonset_pod(sim: K8pyServer) -> None:
    """A node joins (registered with kubectl, its Ready status posted as a kubelet would):
    the DaemonSet puts exactly one pod on it too."""
    s = sim
    s.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "capture"},
        "spec": {"selector": {"matchLabels": {"app": "capture"}}, "template": {
            "metadata": {"labels": {"app": "capture"}},
            "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1d"]}]}}}}))

    def per_node() -> dict[str, int]:
        out: dict[str, int] = {}
        for p in s.kubectl_json("get", "pods", "-l", "app=capture")["items"]:
            n = p["spec"].get("nodeName") or ""
            out[n] = out.get(n, 0) + 1
        return out
    wait_for(lambda: per_node() == {"sim-1": 1, "sim-2": 1, "sim-3": 1}, 60, "one pod per node")
    s.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "late", "labels": {"kubernetes.io/hostname": "late"}}}))
    s.kubectl("patch", "node", "late", "--subresource=status", "--type=merge", "-p", json.dumps({"status": {
        "capacity": {"cpu": "2", "memory": "4Gi", "pods": "20"},
        "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "20"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "posted by the test"}]}}))
    wait_for(lambda: per_node() == {"sim-1": 1, "sim-2": 1, "sim-3": 1, "late": 1}, 60, "a pod on the new node")
    s.kubectl("delete", "daemonset", "capture")
    s.kubectl("delete", "node", "late")
