"""The eviction manager: thresholds, pressure conditions with their transition period,
the pod Kubernetes would evict first, and the status and message it gets."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.clock import FakeClock
from k8py.kubelet.eviction import (
    DEFAULT_EVICTION_HARD,
    MEMORY,
    NODEFS,
    PIDS,
    EvictionManager,
    NodeStats,
    Observed,
    PodUsage,
    evicted_status,
    parse_thresholds,
)

Mi, Gi = 1 << 20, 1 << 30


def pod(name: str, *, mem: str | None = None, disk: str | None = None, priority: int = 0,
        annotations: dict[str, str] | None = None, containers: int = 1) -> dict[str, Any]:
    requests = {k: v for k, v in (("memory", mem), ("ephemeral-storage", disk)) if v}
    cs = [{"name": f"c{i}", "resources": {"requests": requests} if requests and i == 0 else {}}
          for i in range(containers)]
    return {"metadata": {"name": name, "uid": name, "annotations": annotations or {}},
            "spec": {"containers": cs, "priority": priority}, "status": {"phase": "Running"}}


def stats(mem: int = 4 * Gi, disk: int = 50 * Gi, pids: int = 30000, **usage: PodUsage) -> NodeStats:
    return NodeStats({MEMORY: Observed(mem, 8 * Gi), NODEFS: Observed(disk, 100 * Gi), PIDS: Observed(pids, 32768)},
                     dict(usage))


def test_default_and_parsed_thresholds() -> None:
    t = {x.signal: x for x in parse_thresholds(DEFAULT_EVICTION_HARD)}
    assert t[MEMORY].value(8 * Gi) == 100 * Mi and t[NODEFS].value(100 * Gi) == 10 * Gi
    assert t[PIDS].value(32768) == 1638
    assert parse_thresholds("memory.available<1Gi")[0].quantity == Gi


@pytest.mark.parametrize("bad", ["memory.available>1Gi", "cpu.available<1", "memory.available<", "nodefs.available<0%",
                                 "nodefs.available<150%", "memory.available<lots"])
def test_bad_thresholds_are_refused_by_name(bad: str) -> None:
    with pytest.raises(ValueError, match="eviction threshold"):
        parse_thresholds(bad)


@pytest.mark.parametrize("observed, condition", [
    (dict(mem=50 * Mi), "MemoryPressure"),
    (dict(disk=5 * Gi), "DiskPressure"),
    (dict(pids=100), "PIDPressure"),
])
def test_a_met_threshold_sets_its_condition_until_the_transition_period_passed(
        observed: dict[str, int], condition: str) -> None:
    clock = FakeClock()
    m = EvictionManager(parse_thresholds(DEFAULT_EVICTION_HARD), clock)
    assert not any(m.synchronize(stats(), []).conditions.values())
    d = m.synchronize(stats(**observed), [])
    assert d.conditions == {c: c == condition for c in ("MemoryPressure", "DiskPressure", "PIDPressure")}
    clock._t += 299  # relieved, but within the transition period: still under pressure
    assert m.synchronize(stats(), []).conditions[condition]
    clock._t += 2
    assert not m.synchronize(stats(), []).conditions[condition]


def test_memory_ranking_over_requests_then_priority_then_usage() -> None:
    m = EvictionManager(parse_thresholds(DEFAULT_EVICTION_HARD), FakeClock())
    pods = [pod("guaranteed-big", mem="2Gi"), pod("burstable-over", mem="100Mi"),
            pod("besteffort-small"), pod("besteffort-big"), pod("high-priority-besteffort", priority=1000),
            pod("critical", priority=2_000_000_000), pod("static", annotations={"kubernetes.io/config.source": "file"})]
    use = dict(**{"guaranteed-big": PodUsage(memory=1 * Gi), "burstable-over": PodUsage(memory=300 * Mi),
                  "besteffort-small": PodUsage(memory=10 * Mi), "besteffort-big": PodUsage(memory=500 * Mi),
                  "high-priority-besteffort": PodUsage(memory=3 * Gi), "critical": PodUsage(memory=6 * Gi),
                  "static": PodUsage(memory=6 * Gi)})
    order = []
    left = list(pods)
    while True:
        d = m.synchronize(stats(mem=50 * Mi, **use), left)
        if d.pod is None:
            break
        order.append(d.pod["metadata"]["name"])
        left.remove(d.pod)
    assert order == ["besteffort-big", "burstable-over", "besteffort-small", "high-priority-besteffort",
                     "guaranteed-big"]


def test_pid_ranking_priority_then_processes() -> None:
    m = EvictionManager(parse_thresholds(DEFAULT_EVICTION_HARD), FakeClock())
    pods = [pod("few"), pod("many"), pod("important", priority=10)]
    use = {"few": PodUsage(pids=3), "many": PodUsage(pids=900), "important": PodUsage(pids=5000)}
    d = m.synchronize(stats(pids=10, **use), pods)
    assert d.pod is not None and d.pod["metadata"]["name"] == "many"
    assert d.message == "The node was low on resource: pids. Threshold quantity: 5%, available: 10. "


def test_disk_eviction_message_and_status_as_kubernetes_words_them() -> None:
    m = EvictionManager(parse_thresholds(DEFAULT_EVICTION_HARD), FakeClock())
    p = pod("writer", disk="1Gi")
    d = m.synchronize(stats(disk=5 * Gi, writer=PodUsage(disk=3 * Gi)), [p])
    assert d.pod is p
    assert d.message == ("The node was low on resource: ephemeral-storage. Threshold quantity: 10%, available: 5Gi. "
                         "Container c0 was using 3Gi, request is 1Gi, has larger consumption of ephemeral-storage. ")
    st = evicted_status(p, d.message)
    assert (st["phase"], st["reason"], st["message"]) == ("Failed", "Evicted", d.message)
    assert p["status"]["phase"] == "Running"  # the pod itself is not changed


def test_no_pressure_no_eviction_and_inactive_pods_are_skipped() -> None:
    m = EvictionManager(parse_thresholds(DEFAULT_EVICTION_HARD), FakeClock())
    assert m.synchronize(stats(), [pod("a")]).pod is None
    d = m.synchronize(stats(mem=1 * Mi), [pod("done")], active=lambda p: False)
    assert d.pod is None and d.conditions["MemoryPressure"]


def test_node_conditions_follow_the_agents_thresholds(tmp_path: Any) -> None:
    """The node's pressure conditions come from its eviction manager: a threshold above
    anything available makes the condition True (a real machine's signals)."""
    from k8py.kubelet.node import NodeFacts, node_signals

    assert {MEMORY, NODEFS, PIDS} <= set(node_signals(str(tmp_path)))
    facts = NodeFacts("n", str(tmp_path), eviction=EvictionManager(parse_thresholds("memory.available<100%"),
                                                                   FakeClock()))
    got = {c["type"]: (c["status"], c["reason"]) for c in facts.conditions("2026-01-01T00:00:00Z", [])}
    assert got["MemoryPressure"] == ("True", "KubeletHasInsufficientMemory")
    assert got["DiskPressure"] == ("False", "KubeletHasNoDiskPressure")
    assert NodeFacts("n", str(tmp_path)).conditions("2026-01-01T00:00:00Z", [])[0]["type"] == "MemoryPressure"
