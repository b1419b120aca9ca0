"""Real containers through the embedded node agent, driven by the real kubectl.

One cluster per module (`agent_cluster`); pods are bound straight to the agent's node
(spec.nodeName) so these tests do not depend on the scheduler. Teardown asserts
that nothing (runc containers, netns, cgroups, mounts, pod addresses) is left.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from typing import Any

import pytest
import yaml
from e2e_harness import wait_for

pytestmark = pytest.mark.root


def pod(c: Any, name: str, containers: list[dict], **spec: Any) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"test": name}},
            "spec": {"nodeName": c.node_name, "terminationGracePeriodSeconds": 2, "containers": containers, **spec}}


def apply(c: Any, *objs: dict) -> None:
    c.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objs))


def get_pod(c: Any, name: str) -> dict:
    return c.kubectl_json("get", "pod", name)


def cstatus(p: dict, name: str | None = None) -> dict:
    for s in (p.get("status") or {}).get("containerStatuses") or []:
        if name is None or s["name"] == name:
            return s
    return {}


def wait_phase(c: Any, name: str, phase: str, timeout: float = 90) -> dict:
    return wait_for(lambda: (p := get_pod(c, name))["status"].get("phase") == phase and p, timeout,
                    f"pod {name} {phase}")


def wait_running_ready(c: Any, name: str, timeout: float = 90) -> dict:
    def ok() -> Any:
        p = get_pod(c, name)
        conds = {x["type"]: x["status"] for x in p["status"].get("conditions") or []}
        return p["status"].get("phase") == "Running" and conds.get("Ready") == "True" and p
    return wait_for(ok, timeout, f"pod {name} running and ready")


def http_get(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - a pod IP on our bridge
        return r.read().decode()


def test_node_registered_with_real_capacity(agent_cluster: Any) -> None:
    node = wait_for(lambda: agent_cluster.kubectl("get", "node", agent_cluster.node_name, "-o", "json",
                                                  check=False).stdout, 30, "node registered")
    node = json.loads(node)
    cap = node["status"]["capacity"]
    assert int(cap["cpu"]) >= 1 and cap["memory"].endswith("Ki") and cap["pods"] == "110"
    conds = {x["type"]: x["status"] for x in node["status"]["conditions"]}
    assert conds == {"Ready": "True", "MemoryPressure": "False", "DiskPressure": "False", "PIDPressure": "False"}
    assert node["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.32")
    lease = agent_cluster.kubectl_json("get", "lease", "-n", "kube-node-lease", agent_cluster.node_name)
    assert lease["spec"]["holderIdentity"] == agent_cluster.node_name


def test_pod_runs_to_completion_and_logs(agent_cluster: Any) -> None:
    c = agent_cluster
    apply(c, pod(c, "hello", [{"name": "hello", "image": "busybox", "command": ["sh", "-c", "echo err >&2; echo one; echo two"]}],
                 restartPolicy="Never"))
    p = wait_phase(c, "hello", "Succeeded")
    st = cstatus(p)
    assert st["state"]["terminated"]["exitCode"] == 0 and st["state"]["terminated"]["reason"] == "Completed"
    assert p["status"]["qosClass"] == "BestEffort"
    out = c.kubectl("logs", "hello").stdout
    assert sorted(out.splitlines()) == ["err", "one", "two"] and out.index("one") < out.index("two")
    ts = c.kubectl("logs", "hello", "--timestamps").stdout.splitlines()
    assert len(ts) == 3 and all(t[:4].isdigit() and t[4] == "-" for t in ts)
    assert sorted(t.split(" ", 1)[1] for t in ts) == ["err", "one", "two"]
    assert c.kubectl("logs", "hello", "--tail=2").stdout.splitlines() == out.splitlines()[-2:]
    events = c.kubectl("get", "events", "--field-selector", "involvedObject.name=hello", "-o", "json")
    reasons = {e["reason"] for e in json.loads(events.stdout)["items"]}
    assert {"Pulled", "Created", "Started"} <= reasons


def test_exec_returns_exit_code_and_output(agent_cluster: Any) -> None:
    c = agent_cluster
    apply(c, pod(c, "sleeper", [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]))
    wait_running_ready(c, "sleeper")
    r = c.kubectl("exec", "sleeper", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert r.returncode == 3, r
    assert r.stdout == "out\n" and "err" in r.stderr
    r = c.kubectl("exec", "-i", "sleeper", "--", "cat", input="piped stdin\n")
    assert r.stdout == "piped stdin\n"
    assert c.kubectl("exec", "sleeper", "-c", "main", "--", "hostname").stdout.strip() == "sleeper"
