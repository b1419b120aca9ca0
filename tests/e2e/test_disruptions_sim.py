"""Disruptions and priorities with the real kubectl on two simulated nodes: `kubectl
drain` stops at a PodDisruptionBudget until a replacement is Ready, `cordon`/`uncordon`,
and a high-priority pod preempting a low-priority one on a full node.

Simulated nodes run no containers (their pods are Running and Ready at once): nothing
here depends on container behaviour, only on the API, the controllers and the scheduler."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e_harness import K8pyServer, wait_for

pytestmark = pytest.mark.e2e

VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."

WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: nginx:1.14.2, resources: {requests: {cpu: 100m}}}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
"""

PRIORITIES = """
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: low}
value: 10
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
value: 1000
description: preempts low
"""


def hog(name: str, klass: str) -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  priorityClassName: {klass}
  nodeSelector: {{kubernetes.io/hostname: sim-2}}
  containers: [{{name: c, image: busybox:1.28, resources: {{requests: {{cpu: "3"}}}}}}]
"""


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[K8pyServer]:
    s = K8pyServer(tmp_path_factory.mktemp("k8py-pdb") / "data",
                   extra_args=("--simulated-nodes", "2", "--node-capacity", "cpu=4,memory=8Gi,pods=110")).start()
    try:
        wait_for(lambda: len(s.kubectl_json("get", "nodes")["items"]) == 2, 60, "2 simulated nodes")
        s.kubectl("wait", "--for=condition=Ready", "node", "--all", "--timeout=60s", timeout=70)
        yield s
    finally:
        s.stop()


def web_pods(s: K8pyServer) -> list[dict[str, Any]]:
    return [p for p in s.kubectl_json("get", "pods", "-l", "app=web")["items"]
            if not p["metadata"].get("deletionTimestamp")]


def test_drain_waits_for_the_budget_until_a_replacement_is_ready(sim: K8pyServer, tmp_path: Path) -> None:
    s = sim
    assert "node/sim-2 cordoned" in s.kubectl("cordon", "sim-2").stdout
    s.kubectl("apply", "-f", "-", input=WEB)
    wait_for(lambda: len(web_pods(s)) == 2 and all(p["status"].get("phase") == "Running" for p in web_pods(s)),
             60, "2 running replicas")
    assert {p["spec"]["nodeName"] for p in web_pods(s)} == {"sim-1"}
    wait_for(lambda: s.kubectl_json("get", "pdb", "web").get("status", {}).get("disruptionsAllowed") == 1,
             60, "the budget allows one disruption")
    table = s.kubectl("get", "pdb", "web").stdout.split()
    assert table[:10] == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE",
                          "web", "1"] and table[10:12] == ["N/A", "1"]
    out = open(tmp_path / "drain.out", "w+")
    drain = subprocess.Popen([s.kubectl_bin, "drain", "sim-1", "--timeout=180s"], stdout=out,
                             stderr=subprocess.STDOUT, text=True, env=s.env())
    try:
        # one pod goes; its replacement cannot run anywhere (sim-1 draining, sim-2 cordoned),
        # so the other pod's eviction is refused and retried: drain waits
        wait_for(lambda: (tmp_path / "drain.out").read_text().count(VIOLATION) >= 2, 90,
                 "an eviction refused by the budget, and refused again when retried")
        assert drain.poll() is None
        assert len([p for p in web_pods(s) if p["spec"].get("nodeName") == "sim-1"]) == 1
        assert s.kubectl_json("get", "pdb", "web")["status"]["disruptionsAllowed"] == 0
        assert "node/sim-2 uncordoned" in s.kubectl("uncordon", "sim-2").stdout
        assert drain.wait(120) == 0, (tmp_path / "drain.out").read_text()
    finally:
        if drain.poll() is None:
            drain.kill()
            drain.wait()
        out.close()
    text = (tmp_path / "drain.out").read_text()
    assert "node/sim-1 cordoned" in text and "node/sim-1 drained" in text
    assert 'error when evicting pods/"web-' in text
    wait_for(lambda: len(web_pods(s)) == 2 and all(p["spec"].get("nodeName") == "sim-2" for p in web_pods(s)),
             60, "both replicas on sim-2")
    assert s.kubectl_json("get", "node", "sim-1")["spec"].get("unschedulable") is True
    s.kubectl("uncordon", "sim-1")
    s.kubectl("delete", "-f", "-", input=WEB)


def test_high_priority_pod_preempts_low_priority_pod_on_a_full_node(sim: K8pyServer) -> None:
    s = sim
    classes = s.kubectl("get", "priorityclasses").stdout
    assert "system-node-critical" in classes and "2000001000" in classes
    s.kubectl("apply", "-f", "-", input=PRIORITIES)
    s.kubectl("apply", "-f", "-", input=hog("lowly", "low"))
    wait_for(lambda: s.kubectl_json("get", "pod", "lowly")["status"].get("phase") == "Running", 60, "lowly running")
    assert s.kubectl_json("get", "pod", "lowly")["spec"]["priority"] == 10
    s.kubectl("apply", "-f", "-", input=hog("vip", "high"))
    vip = wait_for(lambda: (lambda p: p if p["spec"].get("nodeName") else None)(s.kubectl_json("get", "pod", "vip")),
                   60, "vip bound")
    assert vip["spec"]["nodeName"] == "sim-2" and vip["spec"]["priority"] == 1000
    assert vip["status"].get("nominatedNodeName") == "sim-2"
    wait_for(lambda: s.kubectl("get", "pod", "lowly", check=False).returncode != 0, 60, "lowly gone")
    events = s.kubectl_json("get", "events", "--field-selector", "reason=Preempted")["items"]
    assert any(e["involvedObject"]["name"] == "lowly" and e["message"].endswith("on node sim-2") for e in events)
    bad = s.kubectl("run", "stray", "--image=busybox:1.28", "--overrides",
                    '{"spec": {"priorityClassName": "nope"}}', check=False)
    assert bad.returncode != 0
    assert 'pods "stray" is forbidden: no PriorityClass with name nope was found' in bad.stderr
