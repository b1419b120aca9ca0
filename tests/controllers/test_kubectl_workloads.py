"""The controllers as a user meets them: a real `k8py server --simulated-nodes 2`
driven by the real kubectl (rollout status/undo/history, scale, cascade, DaemonSet,
StatefulSet, claims). kubectl's own waiting (`rollout status`, `wait`) does the waiting."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from e2e_harness import K8pyServer, default_kubectl, wait_for

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(default_kubectl() is None, reason="no kubectl")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[K8pyServer]:
    s = K8pyServer(tmp_path_factory.mktemp("k8py-workloads") / "data", extra_args=("--simulated-nodes", "2"))
    s.start()
    try:
        wait_for(lambda: len(s.kubectl_json("get", "nodes")["items"]) == 2, what="two simulated nodes")
        s.kubectl("wait", "--for=condition=Ready", "node", "--all", "--timeout=60s")
        yield s
    finally:
        s.stop()


def get(s: K8pyServer, *args: str) -> Any:
    return s.kubectl_json("get", *args)


def test_deployment_rollout_undo_scale_and_orphan_delete(server: K8pyServer) -> None:
    s = server
    s.kubectl("create", "deployment", "web", "--image=nginx:1.25", "--replicas=3")
    s.kubectl("rollout", "status", "deployment/web", "--timeout=60s")
    s.kubectl("set", "image", "deployment/web", "nginx=nginx:1.26")
    s.kubectl("rollout", "status", "deployment/web", "--timeout=60s")
    history = s.kubectl("rollout", "history", "deployment/web").stdout
    assert [ln.split()[0] for ln in history.splitlines()[2:] if ln.strip()] == ["1", "2"]
    s.kubectl("rollout", "undo", "deployment/web")
    s.kubectl("rollout", "status", "deployment/web", "--timeout=60s")
    d = get(s, "deployment", "web")
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert len(get(s, "rs", "-l", "app=web")["items"]) == 2  # the undo reused the first set
    s.kubectl("scale", "deployment/web", "--replicas=5")
    s.kubectl("rollout", "status", "deployment/web", "--timeout=60s")
    events = s.kubectl("get", "events", "--field-selector", "reason=ScalingReplicaSet", "-o",
                       "jsonpath={.items[*].message}").stdout
    assert "Scaled up replica set web-" in events and "from 3 to 5" in events
    conds = {c["type"]: c["reason"] for c in get(s, "deployment", "web")["status"]["conditions"]}
    assert conds == {"Available": "MinimumReplicasAvailable", "Progressing": "NewReplicaSetAvailable"}
    s.kubectl("delete", "deployment", "web", "--cascade=orphan")

    def orphaned() -> bool:
        rss = get(s, "rs", "-l", "app=web")["items"]
        return len(rss) == 2 and all(not r["metadata"].get("ownerReferences") for r in rss)

    wait_for(orphaned, what="replica sets kept and orphaned")
    assert len(get(s, "pods", "-l", "app=web")["items"]) == 5
    s.kubectl("delete", "rs", "-l", "app=web")  # background: the pods go with them
    wait_for(lambda: not get(s, "pods", "-l", "app=web")["items"], timeout=60, what="pods collected")


def test_service_endpoints_follow_the_pods(server: K8pyServer) -> None:
    s = server
    s.kubectl("create", "deployment", "api", "--image=nginx:1.25", "--replicas=2", "--port=80")
    s.kubectl("expose", "deployment", "api", "--port=8080", "--target-port=80")
    s.kubectl("rollout", "status", "deployment/api", "--timeout=60s")

    def addresses() -> list[str]:
        ep = get(s, "endpoints", "api")
        return sorted(a["ip"] for sub in ep.get("subsets") or [] for a in sub.get("addresses") or [])

    ips = wait_for(lambda: addresses() if len(addresses()) == 2 else None, what="two endpoints")
    pod_ips = sorted(p["status"]["podIP"] for p in get(s, "pods", "-l", "app=api")["items"])
    assert ips == pod_ips
    slices = get(s, "endpointslices", "-l", "kubernetes.io/service-name=api")["items"]
    assert sorted(e["addresses"][0] for sl in slices for e in sl["endpoints"]) == pod_ips
    s.kubectl("scale", "deployment/api", "--replicas=1")
    wait_for(lambda: len(addresses()) == 1, what="one endpoint")


def test_daemonset_statefulset_and_claims(server: K8pyServer) -> None:
    s = server
    s.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {
            "metadata": {"labels": {"app": "agent"}},
            "spec": {"containers": [{"name": "a", "image": "busybox", "command": ["sleep", "1d"]}]}}}}))
    s.kubectl("rollout", "status", "daemonset/agent", "--timeout=60s")
    assert sorted(p["spec"]["nodeName"] for p in get(s, "pods", "-l", "app=agent")["items"]) == ["sim-1", "sim-2"]
    s.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"serviceName": "db", "replicas": 2, "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"containers": [{"name": "db", "image": "busybox"}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                     "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}))
    s.kubectl("rollout", "status", "statefulset/db", "--timeout=60s")
    def claims_bound() -> dict[str, Any] | None:  # the phase is written after the binding (a second write)
        claims = {c["metadata"]["name"]: c for c in get(s, "pvc")["items"]}
        return claims if all((c.get("status") or {}).get("phase") == "Bound" for c in claims.values()) else None
    claims = wait_for(claims_bound, what="both claims Bound")
    for i in range(2):
        claim = claims[f"data-db-{i}"]
        assert claim["status"]["phase"] == "Bound" and claim["spec"]["storageClassName"] == "local-path"
        pod = get(s, "pod", f"db-{i}")
        pv = get(s, "pv", claim["spec"]["volumeName"])
        hosts = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"]
        assert hosts == [pod["spec"]["nodeName"]]
