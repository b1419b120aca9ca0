"""`k8py server --components processes`: the API server, the scheduler and the controller
manager run as supervised processes; kill -9 of any of them is survived (issue 12's Faults).

One cluster for the module, with three simulated nodes (pods run without containers).
"""

from __future__ import annotations

import collections
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from e2e_harness import K8pyServer, wait_for
from helpers.procs import component_pids


@pytest.fixture(scope="module")
def sup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[K8pyServer]:
    s = K8pyServer(tmp_path_factory.mktemp("k8py-sup") / "data",
                   extra_args=("--components", "processes", "--simulated-nodes", "3"),
                   env={"K8PY_LOG": "INFO"})
    s.start()
    try:
        yield s
    finally:
        s.stop()


def children(server: K8pyServer) -> dict[str, int]:
    assert server.proc is not None
    return component_pids(server.proc.pid)


def kill9(server: K8pyServer, name: str) -> int:
    """kill -9 the component's process; returns its replacement's pid, once started."""
    old = wait_for(lambda: children(server).get(name), what=f"{name} running")
    os.kill(old, signal.SIGKILL)
    return int(wait_for(lambda: (pid := children(server).get(name)) != old and pid, timeout=60,
                        what=f"{name} restarted"))


def converged(server: K8pyServer, deploy: str, replicas: int) -> bool:
    """Exactly `replicas` live pods of `deploy`, each bound to a node, and the Deployment says so."""
    pods = [p for p in server.kubectl_json("get", "pods", "-l", f"app={deploy}")["items"]
            if not p["metadata"].get("deletionTimestamp")]
    d = server.kubectl_json("get", "deployment", deploy)
    return (len(pods) == replicas and all(p["spec"].get("nodeName") for p in pods)
            and d["status"].get("readyReplicas") == replicas == d["status"].get("replicas"))


def scheduled_twice(server: K8pyServer) -> list[str]:
    """Pods with more than one Scheduled event: a pod bound twice."""
    events = server.kubectl_json("get", "events", "--field-selector", "reason=Scheduled")["items"]
    count: collections.Counter[str] = collections.Counter()
    for e in events:
        count[e["involvedObject"]["name"]] += e.get("count") or 1
    return [name for name, n in count.items() if n > 1]


def test_each_component_is_a_process_of_its_own(sup: K8pyServer) -> None:
    pids = wait_for(lambda: len(children(sup)) == 3 and children(sup), what="three components")
    assert len(set(pids.values())) == 3 and sup.proc is not None and sup.proc.pid not in pids.values()

    def held() -> bool:
        leases = {item["metadata"]["name"]: item["spec"].get("holderIdentity")
                  for item in sup.kubectl_json("get", "leases", "-n", "kube-system")["items"]}
        return bool(leases.get("kube-scheduler") and leases.get("kube-controller-manager"))
    wait_for(held, timeout=60, what="both components elected")
    log = sup.log_path.read_text()
    assert "[kube-apiserver] " in log and "[kube-scheduler] " in log and "[kube-controller-manager] " in log


def test_scheduler_killed_during_a_rollout(sup: K8pyServer) -> None:
    sup.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=40")
    kill9(sup, "kube-scheduler")
    wait_for(lambda: converged(sup, "web", 40), timeout=120, what="40 pods bound and ready")
    assert scheduled_twice(sup) == []
    assert "kube-scheduler exited with code -9; restarting" in sup.log_path.read_text()


def test_controller_manager_killed_during_a_scale(sup: K8pyServer) -> None:
    sup.kubectl("create", "deployment", "api", "--image=nginx", "--replicas=5")
    wait_for(lambda: converged(sup, "api", 5), timeout=120, what="5 pods")
    sup.kubectl("scale", "deployment", "api", "--replicas=45")
    kill9(sup, "kube-controller-manager")
    wait_for(lambda: converged(sup, "api", 45), timeout=120, what="45 pods")
    sup.kubectl("scale", "deployment", "api", "--replicas=20")
    kill9(sup, "kube-controller-manager")
    wait_for(lambda: converged(sup, "api", 20), timeout=120, what="20 pods")
    assert scheduled_twice(sup) == []


def _writer(sup: K8pyServer, acked: list[str], stop: threading.Event) -> None:
    """Create ConfigMaps one after another until `stop`, retrying each until acknowledged."""
    from kubernetes import client, config  # type: ignore[import-untyped]

    api = client.CoreV1Api(config.new_client_from_config(str(sup.kubeconfig)))
    i = 0
    while not stop.is_set():
        name = f"w-{i}"
        try:
            api.create_namespaced_config_map("default", {"metadata": {"name": name}, "data": {"i": str(i)}},
                                             _request_timeout=10)
        except client.ApiException as e:
            if e.status != 409:  # 409: an earlier try got through before the connection broke
                continue
        except Exception:  # noqa: BLE001 - the API server is down: try again
            stop.wait(0.1)
            continue
        acked.append(name)
        i += 1


def test_apiserver_killed_under_writes(sup: K8pyServer) -> None:
    acked: list[str] = []
    stop = threading.Event()
    t = threading.Thread(target=_writer, args=(sup, acked, stop), daemon=True)
    t.start()
    try:
        wait_for(lambda: len(acked) >= 20, timeout=60, what="20 writes")
        kill9(sup, "kube-apiserver")
        n = len(acked)
        wait_for(lambda: len(acked) >= n + 20, timeout=120, what="writes after the restart")
    finally:
        stop.set()
        t.join(30)
    names: set[Any] = {c["metadata"]["name"] for c in sup.kubectl_json("get", "configmaps")["items"]}
    assert [a for a in acked if a not in names] == []
    # The scheduler and the controller manager reconnected: a new Deployment converges.
    sup.kubectl("create", "deployment", "after", "--image=nginx", "--replicas=6")
    wait_for(lambda: converged(sup, "after", 6), timeout=120, what="6 pods after the restart")
    assert "kube-apiserver exited with code -9; restarting" in sup.log_path.read_text()
