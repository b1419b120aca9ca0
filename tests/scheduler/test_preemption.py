"""DefaultPreemption: the victims chosen on a node and the node chosen among candidates
(table-driven over the framework with its default plugins), and a high-priority pod
preempting a low-priority one on a full node through the real scheduler and API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from k8py.clock import FakeClock
from k8py.scheduler.framework import CycleState, FitError, Framework
from k8py.scheduler.plugins import default_plugins
from k8py.scheduler.plugins.defaultpreemption import split_by_pdb
from k8py.scheduler.scheduler import Scheduler
from k8py.scheduler.types import PodInfo

from helpers.api import eventually, start_api
from sched_helpers import cache_with, node, pod

Obj = dict[str, Any]


def running(name: str, node_name: str, cpu: str, prio: int, start: str = "2026-01-01T00:00:00Z",
            labels: dict[str, str] | None = None) -> Obj:
    p = pod(name, cpu, node_name=node_name, priority=prio, labels=labels)
    p["status"] = {"phase": "Running", "startTime": start}
    return p


def budget(allowed: int, app: str = "db") -> Obj:
    return {"metadata": {"name": f"pdb-{app}", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": app}}}, "status": {"disruptionsAllowed": allowed}}


def preempt(nodes: list[Obj], pods: list[Obj], preemptor: Obj,
            pdbs: list[Obj]) -> tuple[str, list[str]] | None:
    c = cache_with(nodes, pods)
    c.pdb_list = lambda: pdbs
    fw = Framework(default_plugins())
    state = CycleState(c)
    pi = PodInfo.from_pod(preemptor)
    with pytest.raises(FitError) as e:
        fw.select_host(state, pi, c.node_infos())
    res = fw.run_post_filter(state, pi, e.value)
    if res is None:
        never = preemptor["spec"].get("preemptionPolicy") == "Never"
        assert ("preemption: not eligible due to preemptionPolicy=Never." if never else "preemption: 0/") \
            in e.value.message()
        return None
    assert "preemption" not in e.value.message()  # nominated: the event says only why it did not fit
    return res.node, sorted(v.name for v in res.victims)


N1 = [node("n1", cpu="4")]
N2 = [node("n1", cpu="4"), node("n2", cpu="4")]


@pytest.mark.parametrize("case,nodes,pods,preemptor,pdbs,want", [
    ("one low pod goes", N1, [running("low", "n1", "3", 0)], pod("hi", "2", priority=100), [], ("n1", ["low"])),
    ("only as many as needed, least important first", N1,
     [running("a", "n1", "1", 5), running("b", "n1", "1", 1), running("c", "n1", "1", 3), running("d", "n1", "1", 9)],
     pod("hi", "2", priority=100), [], ("n1", ["b", "c"])),
    ("equal priority: the newer one goes", N1,
     [running("old", "n1", "2", 1, "2026-01-01T00:00:00Z"), running("new", "n1", "2", 1, "2026-01-02T00:00:00Z")],
     pod("hi", "2", priority=100), [], ("n1", ["new"])),
    ("never a pod of equal or higher priority", N1, [running("peer", "n1", "4", 100)], pod("hi", "2", priority=100),
     [], None),
    ("preemptionPolicy Never", N1, [running("low", "n1", "4", 0)],
     pod("hi", "2", priority=100, preemptionPolicy="Never"), [], None),
    ("removing everything would not help", N1, [running("low", "n1", "1", 0)], pod("huge", "8", priority=100),
     [], None),
    ("the node with the lower-priority victim", N2, [running("p5", "n1", "4", 5), running("p1", "n2", "4", 1)],
     pod("hi", "2", priority=100), [], ("n2", ["p1"])),
    ("the node with fewer victims", N2,
     [running("a", "n1", "2", 1), running("b", "n1", "2", 1), running("c", "n2", "2", 1), running("d", "n2", "1", 1)],
     pod("hi", "3", priority=100), [], ("n2", ["c"])),
    ("a node without budget violations first", N2,
     [running("db", "n1", "4", 1, labels={"app": "db"}), running("web", "n2", "4", 1, labels={"app": "web"})],
     pod("hi", "2", priority=100), [budget(0)], ("n2", ["web"])),
    ("a budget that allows it is no violation", N2,
     [running("db", "n1", "4", 0, labels={"app": "db"}), running("web", "n2", "4", 1, labels={"app": "web"})],
     pod("hi", "2", priority=100), [budget(1)], ("n1", ["db"])),
    ("violating pods are spared first", N1,
     [running("db", "n1", "2", 1, labels={"app": "db"}), running("web", "n1", "2", 1, labels={"app": "web"})],
     pod("hi", "2", priority=100), [budget(0)], ("n1", ["web"])),
])
def test_victims_and_node(case: str, nodes: list[Obj], pods: list[Obj], preemptor: Obj, pdbs: list[Obj],
                          want: tuple[str, list[str]] | None) -> None:
    assert preempt(nodes, pods, preemptor, pdbs) == want, case


def test_split_by_pdb_spends_the_budget_in_order() -> None:
    pods = [PodInfo.from_pod(running(n, "n1", "1", 0, labels={"app": "db"})) for n in ("a", "b", "c")]
    violating, fine = split_by_pdb(pods, [budget(2)])
    assert [p.name for p in fine] == ["a", "b"] and [p.name for p in violating] == ["c"]
    disrupted = budget(0)
    disrupted["status"]["disruptedPods"] = {"a": "2026-01-01T00:00:00Z"}
    violating, fine = split_by_pdb(pods[:1], [disrupted])
    assert [p.name for p in fine] == ["a"]


@pytest.fixture
async def api_cluster() -> AsyncIterator[tuple[Any, FakeClock, Scheduler]]:
    clock = FakeClock()
    api, client = await start_api(clock)
    await client.create("nodes", node("n1", cpu="2", memory="4Gi"))
    sched = Scheduler(client, clock)
    task = asyncio.create_task(sched.run())
    yield client, clock, sched
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await api.close()


async def test_high_priority_pod_preempts_low_priority_on_full_node(api_cluster: Any) -> None:
    client, clock, sched = api_cluster
    for name, value in (("low", 10), ("high", 1000)):
        await client.create("priorityclasses", {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                                "metadata": {"name": name}, "value": value})
    await client.create("pods", pod("victim", "1500m", priorityClassName="low"), "default")
    await eventually(lambda: _node_of(client, "victim"))
    await client.create("pods", pod("vip", "1500m", priorityClassName="high"), "default")

    async def nominated() -> Obj | None:
        p = await client.get("pods", "vip", "default")
        return p if p.get("status", {}).get("nominatedNodeName") == "n1" else None
    await eventually(nominated)
    victim = await client.get("pods", "victim", "default")
    assert victim["metadata"].get("deletionTimestamp")
    assert any(c["type"] == "DisruptionTarget" and c["reason"] == "PreemptionByScheduler"
               for c in victim["status"]["conditions"])
    await sched.wait_idle()
    evs = [e for e in (await client.list("events", "default"))["items"] if e["reason"] == "Preempted"]
    assert evs and evs[0]["involvedObject"]["name"] == "victim" and evs[0]["message"].endswith("on node n1")
    # the kubelet confirms the victim's termination: the room is free and vip is bound there
    await client.delete("pods", "victim", "default", grace_period_seconds=0)

    async def bound() -> str | None:
        await clock.advance(1)  # past the pod's back-off
        return await _node_of(client, "vip")
    assert await eventually(bound) == "n1"


async def _node_of(client: Any, name: str) -> str | None:
    p = await client.get("pods", name, "default")
    return p["spec"].get("nodeName")


def test_waits_for_its_victims_instead_of_preempting_again() -> None:
    victim = running("low", "n1", "3", 0)
    victim["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    victim["status"]["conditions"] = [{"type": "DisruptionTarget", "status": "True",
                                       "reason": "PreemptionByScheduler"}]
    other = running("other", "n1", "1", 0)
    hi = pod("hi", "2", priority=100)
    hi["status"]["nominatedNodeName"] = "n1"
    c = cache_with(N1, [victim, other])
    fw = Framework(default_plugins())
    state = CycleState(c)
    pi = PodInfo.from_pod(hi)
    with pytest.raises(FitError) as e:
        fw.select_host(state, pi, c.node_infos())
    assert fw.run_post_filter(state, pi, e.value) is None
    assert e.value.message() == ("0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to a "
                                 "terminating pod on the nominated node.")
    # a terminating pod that was not preempted does not hold it back
    del victim["status"]["conditions"]
    assert preempt(N1, [victim, other], hi, []) is not None
