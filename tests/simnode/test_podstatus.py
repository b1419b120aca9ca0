"""The status of a pod a simulated node runs: Running, ready, stable container IDs."""

from __future__ import annotations

from k8py.simnode.podstatus import running_status

NOW = "2024-01-02T03:04:05Z"


def _pod(**status: object) -> dict:
    return {"metadata": {"name": "p", "uid": "u1"},
            "spec": {"containers": [{"name": "app", "image": "nginx"}],
                     "initContainers": [{"name": "init", "image": "busybox"}]},
            "status": status}


def test_a_running_pod() -> None:
    scheduled = {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}
    st = running_status(_pod(conditions=[scheduled]), NOW, "10.42.0.2", "192.0.2.1")
    assert (st["phase"], st["podIP"], st["podIPs"], st["hostIPs"]) == ("Running", "10.42.0.2", [{"ip": "10.42.0.2"}],
                                                                       [{"ip": "192.0.2.1"}])
    conds = {c["type"]: c for c in st["conditions"]}
    assert all(c["status"] == "True" for c in conds.values())
    assert conds["PodScheduled"]["lastTransitionTime"] == "2024-01-01T00:00:00Z"
    assert conds["Ready"]["lastTransitionTime"] == NOW
    (app,) = st["containerStatuses"]
    assert app["ready"] and app["state"] == {"running": {"startedAt": NOW}}
    assert app["containerID"] == running_status(_pod(), NOW, "10.42.0.3", None)["containerStatuses"][0]["containerID"]
    assert st["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert st["startTime"] == NOW


def test_without_an_internal_ip_there_is_no_host_ip() -> None:
    st = running_status(_pod(startTime="2024-01-01T00:00:00Z"), NOW, "10.42.0.2", None)
    assert "hostIP" not in st and st["startTime"] == "2024-01-01T00:00:00Z"


def test_a_sidecar_runs_beside_the_containers() -> None:
    p = _pod()
    p["spec"]["initContainers"].append({"name": "side", "image": "busybox", "restartPolicy": "Always"})
    init, side = running_status(p, NOW, "10.42.0.2", None)["initContainerStatuses"]
    assert "terminated" in init["state"]
    assert side["state"] == {"running": {"startedAt": NOW}} and side["started"] and side["ready"]
