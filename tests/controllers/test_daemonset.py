"""DaemonSet controller: one pod per eligible node, taints, rolling update, status."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.controllers.controllerutil import CONTROLLER_REVISION_HASH_LABEL
from k8py.controllers.daemonset import DaemonSetController, node_should_run, target_node

from ctrl_helpers import Cluster, FakeKubelet, node, pod_template

Obj = dict[str, Any]


def daemonset(name: str = "agent", **spec: Any) -> Obj:
    template = pod_template({"app": name})
    template["spec"].update(spec.pop("pod_spec", {}))
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": template, **spec}}


async def start(c: Cluster) -> tuple[DaemonSetController, FakeKubelet]:
    ctrl = DaemonSetController(c.client, c.factory, c.clock, c.recorder("daemonset-controller"))
    kubelet = FakeKubelet(c)
    kubelet.start()
    await c.start(ctrl)
    return ctrl, kubelet


async def nodes_with_pods(c: Cluster) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in await c.list("pods"):
        if p["metadata"].get("deletionTimestamp"):
            continue
        n = target_node(p) or "?"
        out[n] = out.get(n, 0) + 1
    return out


async def placed(c: Cluster, want: dict[str, int]) -> bool:
    return await nodes_with_pods(c) == want


NOT_READY = {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}


@pytest.mark.parametrize("labels,taints,pod_spec,run,keep", [
    ({}, [], {}, True, True),
    ({"disk": "ssd"}, [], {"nodeSelector": {"disk": "ssd"}}, True, True),
    ({"disk": "hdd"}, [], {"nodeSelector": {"disk": "ssd"}}, False, False),
    ({"zone": "a"}, [], {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]}}}},
     False, False),
    ({}, [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}], {}, False, True),
    ({}, [{"key": "dedicated", "value": "db", "effect": "NoExecute"}], {}, False, False),
    ({}, [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}],
     {"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]}, True, True),
    # the automatic tolerations of daemon pods
    ({}, [NOT_READY], {}, True, True),
    ({}, [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}], {}, True, True),
    ({}, [{"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"}], {}, True, True),
    ({}, [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}], {}, False, True),
])
def test_node_eligibility(labels: dict[str, str], taints: list[Obj], pod_spec: Obj, run: bool, keep: bool) -> None:
    assert node_should_run(daemonset(pod_spec=pod_spec), node("n", labels, taints)) == (run, keep)


async def test_one_pod_per_node_follows_nodes_and_taints(cluster: Cluster) -> None:
    c = cluster
    ctrl, _ = await start(c)
    for n in ("n1", "n2"):
        await c.client.create("nodes", node(n))
    ds = await c.client.create("daemonsets", daemonset())
    await c.until(lambda: placed(c, {"n1": 1, "n2": 1}), "a pod on each node")
    pod = next(p for p in await c.list("pods") if target_node(p) == "n1")
    assert pod["metadata"]["name"].startswith("agent-")
    assert pod["metadata"]["ownerReferences"][0]["uid"] == ds["metadata"]["uid"]
    assert pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}
    tol_keys = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
    assert ("node.kubernetes.io/not-ready", "NoExecute") in tol_keys
    assert ("node.kubernetes.io/unschedulable", "NoSchedule") in tol_keys
    assert pod["metadata"]["labels"][CONTROLLER_REVISION_HASH_LABEL]
    # a node added later gets its pod
    await c.client.create("nodes", node("n3"))
    await c.until(lambda: placed(c, {"n1": 1, "n2": 1, "n3": 1}), "pod on the new node")
    # a NoExecute taint evicts; a NoSchedule taint keeps the running pod
    await c.client.patch("nodes", "n2", {"spec": {"taints": [{"key": "x", "value": "y", "effect": "NoExecute"}]}})
    await c.client.patch("nodes", "n3", {"spec": {"taints": [{"key": "x", "value": "y", "effect": "NoSchedule"}]}})
    await c.until(lambda: placed(c, {"n1": 1, "n3": 1}), "pod gone from the NoExecute node")
    # a removed node loses its pod
    await c.client.delete("nodes", "n1")
    await c.until(lambda: placed(c, {"n3": 1}), "pod gone with its node")
    st = (await c.until(lambda: c.with_status("daemonsets", "agent", desiredNumberScheduled=0,
                                              numberMisscheduled=1, currentNumberScheduled=0),
                        "status"))["status"]
    assert st["observedGeneration"] == 1
    assert ctrl.recorder.for_reason("SuccessfulDelete")


async def test_status_and_rolling_update_with_max_unavailable(cluster: Cluster) -> None:
    c = cluster
    await start(c)
    for n in ("n1", "n2", "n3"):
        await c.client.create("nodes", node(n))
    await c.client.create("daemonsets", daemonset(updateStrategy={"type": "RollingUpdate",
                                                                  "rollingUpdate": {"maxUnavailable": 1}}))
    await c.until(lambda: c.with_status("daemonsets", "agent", desiredNumberScheduled=3, currentNumberScheduled=3,
                                        numberReady=3, numberAvailable=3, updatedNumberScheduled=3), "all ready")
    first_pods = {p["metadata"]["name"] for p in await c.list("pods")}
    worst = {"missing": 0}

    async def watch_availability() -> bool:
        pods = [p for p in await c.list("pods") if not p["metadata"].get("deletionTimestamp")]
        worst["missing"] = max(worst["missing"], 3 - len(pods))
        return False

    await c.client.patch("daemonsets", "agent", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "nginx:1.26"}]}}}}, "default", patch_type="strategic")

    async def done() -> bool:
        await watch_availability()
        st = await c.with_status("daemonsets", "agent", desiredNumberScheduled=3, updatedNumberScheduled=3,
                                 numberAvailable=3, observedGeneration=2)
        return st is not None

    await c.until(done, "rolled out")
    pods = await c.list("pods")
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:1.26"}
    assert not first_pods & {p["metadata"]["name"] for p in pods}
    assert worst["missing"] <= 1
    revs = await c.list("controllerrevisions")
    assert len(revs) == 2 and sorted(r["revision"] for r in revs) == [1, 2]
