"""The disruption controller: PDB math (table-driven, pure) and the status it writes
from pods and their controllers' scale, through the API."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.clock import rfc3339
from k8py.controllers.disruption import (
    DELETION_TIMEOUT,
    DisruptionController,
    NoController,
    count_healthy,
    disrupted_map,
    expected_and_desired,
    new_status,
)

from ctrl_helpers import Cluster, FakeKubelet, pod_template

Obj = dict[str, Any]
NOW = 1_000_000.0


def pod(name: str, ready: bool = True, owner: str | None = "rs1", deleting: bool = False) -> Obj:
    md: Obj = {"name": name, "namespace": "default", "labels": {"app": "web"}}
    if owner:
        md["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "uid": owner,
                                  "controller": True}]
    if deleting:
        md["deletionTimestamp"] = rfc3339(NOW)
    return {"metadata": md, "status": {"phase": "Running",
                                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


SCALES = {"rs1": 4, "rs2": 6}


def scale_of(p: Obj) -> tuple[str, int]:
    uid = p["metadata"]["ownerReferences"][0]["uid"]
    if uid not in SCALES:
        raise NoController("found no controllers")
    return uid, SCALES[uid]


THREE = [pod("a"), pod("b"), pod("c", ready=False)]


@pytest.mark.parametrize("spec,pods,expected,desired,unmanaged", [
    ({"minAvailable": 2}, THREE, 3, 2, []),                  # int: expected = the pods
    ({"minAvailable": "50%"}, THREE, 4, 2, []),              # percent of the controller's scale (4)
    ({"minAvailable": "30%"}, THREE, 4, 2, []),              # 1.2 rounds up to 2
    ({"maxUnavailable": 1}, THREE, 4, 3, []),                # scale 4 - 1
    ({"maxUnavailable": "25%"}, THREE, 4, 3, []),            # 25% of 4 = 1
    ({"maxUnavailable": "10%"}, THREE, 4, 3, []),            # 0.4 rounds up to 1
    ({"maxUnavailable": 9}, THREE, 4, 0, []),                # never below 0
    ({"maxUnavailable": 1}, [pod("a"), pod("x", owner="rs2")], 10, 9, []),  # two controllers: 4 + 6
    ({"maxUnavailable": 1}, [pod("a"), pod("b"), pod("n", owner=None)], 4, 3, ["n"]),
    ({"minAvailable": 0}, [], 0, 0, []),
])
def test_expected_and_desired(spec: Obj, pods: list[Obj], expected: int, desired: int, unmanaged: list[str]) -> None:
    assert expected_and_desired(spec, pods, scale_of) == (expected, desired, unmanaged)


def test_unknown_controller_fails_the_sync() -> None:
    with pytest.raises(NoController):
        expected_and_desired({"maxUnavailable": 1}, [pod("a", owner="ghost")], scale_of)
    # an integer minAvailable never asks for the scale
    assert expected_and_desired({"minAvailable": 1}, [pod("a", owner="ghost")], scale_of)[:2] == (1, 1)


@pytest.mark.parametrize("pods,disrupted,healthy,kept", [
    (THREE, {}, 2, []),
    (THREE, {"a": rfc3339(NOW - 10)}, 1, ["a"]),                       # granted eviction, not yet deleted
    (THREE, {"a": rfc3339(NOW - DELETION_TIMEOUT - 1)}, 2, []),         # expired: counts again
    ([pod("a", deleting=True), pod("b")], {"a": rfc3339(NOW)}, 1, []),  # being deleted: entry dropped
    ([pod("b")], {"gone": rfc3339(NOW)}, 1, []),                       # pod gone: entry dropped
])
def test_healthy_and_disrupted(pods: list[Obj], disrupted: Obj, healthy: int, kept: list[str]) -> None:
    m, recheck = disrupted_map(pods, disrupted, NOW)
    assert sorted(m) == kept
    assert (recheck is not None) == bool(kept)
    assert count_healthy(pods, m, NOW) == healthy


@pytest.mark.parametrize("current,desired,expected,allowed,cond", [
    (3, 2, 3, 1, ("True", "SufficientPods")),
    (2, 2, 3, 0, ("False", "InsufficientPods")),
    (1, 2, 3, 0, ("False", "InsufficientPods")),
    (2, 0, 0, 0, ("False", "InsufficientPods")),  # nothing expected: no disruption allowed
])
def test_status(current: int, desired: int, expected: int, allowed: int, cond: tuple[str, str]) -> None:
    st = new_status({"metadata": {"generation": 3}}, current, desired, expected, {}, rfc3339(NOW))
    assert st["disruptionsAllowed"] == allowed and st["observedGeneration"] == 3
    assert (st["currentHealthy"], st["desiredHealthy"], st["expectedPods"]) == (current, desired, expected)
    c = st["conditions"][0]
    assert (c["type"], c["status"], c["reason"]) == ("DisruptionAllowed", *cond)


async def test_controller_writes_status_from_pods_and_scale(cluster: Cluster) -> None:
    c = cluster
    from k8py.controllers.deployment import DeploymentController
    from k8py.controllers.replicaset import ReplicaSetController
    ctrl = DisruptionController(c.client, c.factory, c.clock, c.recorder("disruption"))
    kubelet = FakeKubelet(c)
    kubelet.start()
    await c.start(ctrl, DeploymentController(c.client, c.factory, c.clock, c.recorder("d")),
                  ReplicaSetController(c.client, c.factory, c.clock, c.recorder("rs")))
    await c.client.create("deployments", {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": pod_template({"app": "web"})}})
    await c.client.create("poddisruptionbudgets", {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "b", "namespace": "default"},
        "spec": {"maxUnavailable": "34%", "selector": {"matchLabels": {"app": "web"}}}})
    o = await c.until(lambda: c.with_status("poddisruptionbudgets", "b", currentHealthy=3, desiredHealthy=1,
                                            expectedPods=3, disruptionsAllowed=2), "PDB status")
    assert o["status"]["observedGeneration"] == 1
    # the eviction API charges the budget; the controller keeps the evicted pod out of the count
    victim = (await c.list("pods"))[0]["metadata"]["name"]
    kubelet.hold = True
    await c.client.evict("default", victim)
    o = await c.client.get("poddisruptionbudgets", "b", "default")
    assert o["status"]["disruptionsAllowed"] == 1 and victim in o["status"]["disruptedPods"]
    await c.client.patch("deployments", "web", {"spec": {"replicas": 1}}, "default")
    await c.until(lambda: c.with_status("poddisruptionbudgets", "b", expectedPods=1, desiredHealthy=0), "scaled")
