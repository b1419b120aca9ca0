"""A whole cluster on simulated nodes: scheduling, a Deployment becoming available, and
`kubectl drain` evicting (it checks discovery's pods/eviction entry) onto the other node."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e_harness import K8pyServer, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[K8pyServer]:
    s = K8pyServer(tmp_path_factory.mktemp("k8py-sim") / "data",
                   extra_args=("--simulated-nodes", "2", "--node-capacity", "cpu=2,memory=4Gi,pods=20")).start()
    yield s
    s.stop()


def _pods(s: K8pyServer) -> list[dict]:  # type: ignore[type-arg]
    return s.kubectl_json("get", "pods", "-l", "app=web")["items"]  # type: ignore[no-any-return]


def test_rollout_then_drain_evicts_to_the_other_node(sim: K8pyServer, tmp_path: Path) -> None:
    wait_for(lambda: len(sim.kubectl("get", "nodes", "-o", "name").stdout.split()) == 2, 30, "2 nodes")
    sim.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=4")
    out = sim.kubectl("rollout", "status", "deployment/web", "--timeout=60s", timeout=90).stdout
    assert "successfully rolled out" in out
    nodes = {p["spec"].get("nodeName") for p in _pods(sim)}
    assert nodes <= {"sim-1", "sim-2"} and None not in nodes
    drained = sim.kubectl("drain", "sim-1", "--ignore-daemonsets", "--timeout=60s", timeout=90)
    assert "evicting pod" in drained.stdout + drained.stderr and "drained" in drained.stdout
    assert sim.kubectl_json("get", "node", "sim-1")["spec"].get("unschedulable") is True

    def all_on_sim2() -> bool:
        ps = [p for p in _pods(sim) if not p["metadata"].get("deletionTimestamp")]
        return len(ps) == 4 and all(p["spec"].get("nodeName") == "sim-2" and p["status"].get("phase") == "Running"
                                    for p in ps)
    wait_for(all_on_sim2, 60, "4 running pods on sim-2")
    sim.kubectl("uncordon", "sim-1")
    assert not sim.kubectl_json("get", "node", "sim-1")["spec"].get("unschedulable")
