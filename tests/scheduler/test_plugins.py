"""Table-driven tests of each scheduler plugin's filter and score."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.scheduler.plugins import (
    balancedallocation,
    interpodaffinity,
    leastallocated,
    nodeaffinity,
    nodename,
    nodeports,
    noderesources,
    nodeunschedulable,
    selectorspread,
    tainttoleration,
    volumebinding,
)

from sched_helpers import cache_with, node, pod, run_filter, run_scores

Obj = dict[str, Any]


def owned(p: Obj, uid: str) -> Obj:
    p["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": uid,
                                         "uid": uid, "controller": True}]
    return p


# ------------------------------------------------------------------ NodeResourcesFit
RESOURCE_CASES = [
    ("fits", pod("p", "1", "1Gi"), [], None),
    ("cpu", pod("p", "5", "1Gi"), [], "Insufficient cpu"),
    ("memory", pod("p", "1", "9Gi"), [], "Insufficient memory"),
    ("both", pod("p", "5", "9Gi"), [], "Insufficient cpu, Insufficient memory"),
    ("existing pods count", pod("p", "2", "1Gi"), [pod("a", "3", "1Gi", node_name="n1")], "Insufficient cpu"),
    ("terminal pods free resources", pod("p", "2", "1Gi"),
     [{**pod("a", "3", "1Gi", node_name="n1"), "status": {"phase": "Succeeded"}}], None),
    ("too many pods", pod("p"), [pod(f"a{i}", node_name="n1") for i in range(3)], "Too many pods"),
    ("limits count as requests",
     pod("p", containers=[{"name": "c", "resources": {"limits": {"memory": "9Gi"}}}]), [], "Insufficient memory"),
    ("init containers as max, not sum",
     pod("p", "3", initContainers=[{"name": "i", "resources": {"requests": {"cpu": "4"}}},
                                   {"name": "j", "resources": {"requests": {"cpu": "4"}}}]), [], None),
    ("big init container", pod("p", "1", initContainers=[{"name": "i", "resources": {"requests": {"cpu": "5"}}}]),
     [], "Insufficient cpu"),
    ("sidecars add to the containers",
     pod("p", "3", initContainers=[{"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "2"}}}]),
     [], "Insufficient cpu"),
    ("an init container after a sidecar counts with it",
     pod("p", "1", initContainers=[{"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "2"}}},
                                   {"name": "i", "resources": {"requests": {"cpu": "3"}}}]), [], "Insufficient cpu"),
    ("an init container before a sidecar does not",
     pod("p", "1", initContainers=[{"name": "i", "resources": {"requests": {"cpu": "3"}}},
                                   {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "2"}}}]),
     [], None),
    ("a bound pod's sidecar is counted",
     pod("p", "1"), [pod("q", "1", node_name="n1", initContainers=[
         {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "2500m"}}}])], "Insufficient cpu"),
    ("overhead counts", pod("p", "3900m", overhead={"cpu": "200m"}), [], "Insufficient cpu"),
    ("ephemeral storage", pod("p", containers=[{"name": "c", "resources": {"requests": {"ephemeral-storage": "2Gi"}}}]),
     [], "Insufficient ephemeral-storage"),
    ("extended resource", pod("p", containers=[{"name": "c", "resources": {"requests": {"example.com/gpu": "1"}}}]),
     [], "Insufficient example.com/gpu"),
]


@pytest.mark.parametrize("name,p,existing,expected", RESOURCE_CASES, ids=[c[0] for c in RESOURCE_CASES])
def test_noderesources_filter(name: str, p: Obj, existing: list[Obj], expected: str | None) -> None:
    c = cache_with([node("n1", pods="3", **{"ephemeral-storage": "1Gi"})], existing)
    assert run_filter(noderesources.new(), p, c, "n1") == expected


@pytest.mark.parametrize("spec, expected", [
    # (cpu milli, memory MiB, non-zero cpu milli, non-zero memory MiB)
    ({"containers": [{"name": "c"}]}, (0, 0, 100, 200)),
    ({"containers": [{"name": "c", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}],
      "initContainers": [{"name": "s", "restartPolicy": "Always"}]}, (1000, 1024, 1100, 1224)),
    ({"containers": [{"name": "c", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}],
      "initContainers": [{"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "500m"}}},
                         {"name": "i", "resources": {"requests": {"cpu": "2", "memory": "2Gi"}}},
                         {"name": "t", "restartPolicy": "Always", "resources": {"requests": {"memory": "1Gi"}}}]},
     # cpu: max(c + s + t = 1500m, i + s = 2500m); memory: max(c + s + t = 2Gi, i + s = 2Gi);
     # non-zero: s counts 200Mi and t 100m, so memory max(2Gi + 200Mi, 2Gi + 200Mi), cpu max(1600m, 2500m)
     (2500, 2048, 2500, 2248)),
])
def test_pod_requests_with_sidecars(spec: Obj, expected: tuple[int, int, int, int]) -> None:
    from k8py.scheduler.types import pod_requests
    r, nz_cpu, nz_mem = pod_requests(spec)
    mi = 1 << 20
    assert (r.milli_cpu, r.memory // mi, nz_cpu, nz_mem // mi) == expected


def test_noderesources_counts_assumed_pods() -> None:
    from k8py.scheduler.types import PodInfo
    c = cache_with([node("n1")])
    c.assume(PodInfo.from_pod(pod("a", "3")), "n1")
    assert run_filter(noderesources.new(), pod("p", "2"), c, "n1") == "Insufficient cpu"
    c.forget("default/a")
    assert run_filter(noderesources.new(), pod("p", "2"), c, "n1") is None


# ------------------------------------------------------------------ simple filters
SIMPLE_CASES = [
    ("nodename match", nodename.new(), pod("p", nodeName="n1"), node("n1"), None),
    ("nodename mismatch", nodename.new(), pod("p", nodeName="n2"), node("n1"),
     "node(s) didn't match the requested node name"),
    ("schedulable", nodeunschedulable.new(), pod("p"), node("n1"), None),
    ("cordoned", nodeunschedulable.new(), pod("p"), node("n1", unschedulable=True), "node(s) were unschedulable"),
    ("cordoned but tolerated", nodeunschedulable.new(),
     pod("p", tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]),
     node("n1", unschedulable=True), None),
    ("selector match", nodeaffinity.new(), pod("p", nodeSelector={"disk": "ssd"}), node("n1", labels={"disk": "ssd"}),
     None),
    ("selector mismatch", nodeaffinity.new(), pod("p", nodeSelector={"disk": "ssd"}), node("n1"),
     "node(s) didn't match Pod's node affinity/selector"),
    ("required affinity In", nodeaffinity.new(),
     pod("p", affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
         {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}}}),
     node("n1", labels={"zone": "b"}), None),
    ("required affinity NotIn", nodeaffinity.new(),
     pod("p", affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
         {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["b"]}]}]}}}),
     node("n1", labels={"zone": "b"}), "node(s) didn't match Pod's node affinity/selector"),
    ("no taints", tainttoleration.new(), pod("p"), node("n1"), None),
    ("untolerated taint", tainttoleration.new(), pod("p"),
     node("n1", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
     "node(s) had untolerated taint {dedicated: gpu}"),
    ("tolerated Equal", tainttoleration.new(),
     pod("p", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]),
     node("n1", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]), None),
    ("toleration wrong value", tainttoleration.new(),
     pod("p", tolerations=[{"key": "dedicated", "value": "cpu"}]),
     node("n1", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
     "node(s) had untolerated taint {dedicated: gpu}"),
    ("tolerate everything", tainttoleration.new(), pod("p", tolerations=[{"operator": "Exists"}]),
     node("n1", taints=[{"key": "x", "effect": "NoExecute"}]), None),
    ("PreferNoSchedule does not filter", tainttoleration.new(), pod("p"),
     node("n1", taints=[{"key": "x", "effect": "PreferNoSchedule"}]), None),
]


@pytest.mark.parametrize("name,plugin,p,n,expected", SIMPLE_CASES, ids=[c[0] for c in SIMPLE_CASES])
def test_simple_filters(name: str, plugin: Any, p: Obj, n: Obj, expected: str | None) -> None:
    assert run_filter(plugin, p, cache_with([n]), "n1") == expected


def hostport_pod(name: str, port: int, ip: str = "", proto: str = "TCP", node_name: str | None = None) -> Obj:
    port_spec: Obj = {"containerPort": 80, "hostPort": port, "protocol": proto}
    if ip:
        port_spec["hostIP"] = ip
    return pod(name, node_name=node_name, containers=[{"name": "c", "ports": [port_spec]}])


PORT_CASES = [
    ("free", hostport_pod("p", 8080), [hostport_pod("a", 9090, node_name="n1")], None),
    ("taken", hostport_pod("p", 8080), [hostport_pod("a", 8080, node_name="n1")],
     "node(s) didn't have free ports for the requested pod ports"),
    ("other protocol", hostport_pod("p", 8080, proto="UDP"), [hostport_pod("a", 8080, node_name="n1")], None),
    ("different host IPs", hostport_pod("p", 8080, ip="10.0.0.1"),
     [hostport_pod("a", 8080, ip="10.0.0.2", node_name="n1")], None),
    ("wildcard conflicts", hostport_pod("p", 8080, ip="10.0.0.1"), [hostport_pod("a", 8080, node_name="n1")],
     "node(s) didn't have free ports for the requested pod ports"),
]


@pytest.mark.parametrize("name,p,existing,expected", PORT_CASES, ids=[c[0] for c in PORT_CASES])
def test_nodeports_filter(name: str, p: Obj, existing: list[Obj], expected: str | None) -> None:
    assert run_filter(nodeports.new(), p, cache_with([node("n1")], existing), "n1") == expected


# ------------------------------------------------------------------ inter-pod affinity
def anti(app: str, key: str = "kubernetes.io/hostname") -> Obj:
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}]}}


def aff(app: str, key: str = "kubernetes.io/hostname") -> Obj:
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}]}}


ZONES = [node("n1", labels={"zone": "a"}), node("n2", labels={"zone": "a"}), node("n3", labels={"zone": "b"})]
AFFINITY_CASES = [
    ("anti: same host taken", pod("p", labels={"app": "web"}, affinity=anti("web")),
     [pod("a", labels={"app": "web"}, node_name="n1")], {"n1": "node(s) didn't match pod anti-affinity rules",
                                                          "n2": None, "n3": None}),
    ("anti over zone", pod("p", labels={"app": "web"}, affinity=anti("web", "zone")),
     [pod("a", labels={"app": "web"}, node_name="n1")],
     {"n1": "node(s) didn't match pod anti-affinity rules", "n2": "node(s) didn't match pod anti-affinity rules",
      "n3": None}),
    ("anti in another namespace ignored", pod("p", labels={"app": "web"}, affinity=anti("web")),
     [pod("a", ns="other", labels={"app": "web"}, node_name="n1")], {"n1": None, "n2": None, "n3": None}),
    ("existing pod's anti-affinity repels", pod("p", labels={"app": "web"}),
     [pod("a", labels={"app": "db"}, node_name="n3", affinity=anti("web"))],
     {"n1": None, "n2": None, "n3": "node(s) didn't satisfy existing pods anti-affinity rules"}),
    ("affinity to zone of db", pod("p", affinity=aff("db", "zone")),
     [pod("a", labels={"app": "db"}, node_name="n3")],
     {"n1": "node(s) didn't match pod affinity rules", "n2": "node(s) didn't match pod affinity rules", "n3": None}),
    ("affinity to host of db", pod("p", affinity=aff("db")), [pod("a", labels={"app": "db"}, node_name="n2")],
     {"n1": "node(s) didn't match pod affinity rules", "n2": None, "n3": "node(s) didn't match pod affinity rules"}),
    ("affinity with no match anywhere", pod("p", affinity=aff("db")), [],
     {"n1": "node(s) didn't match pod affinity rules", "n2": "node(s) didn't match pod affinity rules",
      "n3": "node(s) didn't match pod affinity rules"}),
    ("first pod of a self-affine group", pod("p", labels={"app": "db"}, affinity=aff("db")), [],
     {"n1": None, "n2": None, "n3": None}),
]


@pytest.mark.parametrize("name,p,existing,expected", AFFINITY_CASES, ids=[c[0] for c in AFFINITY_CASES])
def test_interpodaffinity_filter(name: str, p: Obj, existing: list[Obj], expected: dict[str, str | None]) -> None:
    c = cache_with(ZONES, existing)
    got = {n: run_filter(interpodaffinity.new(), p, c, n) for n in expected}
    assert got == expected


def test_interpodaffinity_preferred_score() -> None:
    p = pod("p", affinity={"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}},
                                            "topologyKey": "zone"}}]}})
    c = cache_with(ZONES, [pod("a", labels={"app": "web"}, node_name="n1")])
    assert run_scores(interpodaffinity.new(), p, c) == {"n1": 0, "n2": 0, "n3": 100}


# ------------------------------------------------------------------ volume binding
def pvc(name: str, volume: str = "", sc: str = "") -> Obj:
    spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    if volume:
        spec["volumeName"] = volume
    if sc:
        spec["storageClassName"] = sc
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec}


LOCAL_PV = {"metadata": {"name": "pv1"}, "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [
    {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n2"]}]}]}}}}
CLASSES = {"wait": {"metadata": {"name": "wait"}, "volumeBindingMode": "WaitForFirstConsumer"},
           "now": {"metadata": {"name": "now"}, "volumeBindingMode": "Immediate"}}


def with_claim(claim: str) -> Obj:
    return pod("p", volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": claim}}])


VOLUME_CASES = [
    ("no claims", pod("p"), {}, {"n1": None, "n2": None}),
    ("missing claim", with_claim("x"), {}, {"n1": 'persistentvolumeclaim "x" not found',
                                            "n2": 'persistentvolumeclaim "x" not found'}),
    ("bound to local PV", with_claim("data"), {"default/data": pvc("data", "pv1")},
     {"n1": "node(s) had volume node affinity conflict", "n2": None}),
    ("unbound wait-for-first-consumer", with_claim("data"), {"default/data": pvc("data", sc="wait")},
     {"n1": None, "n2": None}),
    ("unbound immediate", with_claim("data"), {"default/data": pvc("data", sc="now")},
     {"n1": "pod has unbound immediate PersistentVolumeClaims",
      "n2": "pod has unbound immediate PersistentVolumeClaims"}),
]


@pytest.mark.parametrize("name,p,claims,expected", VOLUME_CASES, ids=[c[0] for c in VOLUME_CASES])
def test_volumebinding_filter(name: str, p: Obj, claims: dict[str, Obj], expected: dict[str, str | None]) -> None:
    c = cache_with([node("n1"), node("n2")])
    c.pvc_lookup = claims.get
    c.pv_lookup = {"pv1": LOCAL_PV}.get
    c.sc_lookup = CLASSES.get
    assert {n: run_filter(volumebinding.new(), p, c, n) for n in expected} == expected


# ------------------------------------------------------------------ scores
def test_leastallocated_prefers_emptier_nodes() -> None:
    c = cache_with([node("n1"), node("n2")], [pod("a", "2", "4Gi", node_name="n1")])
    s = run_scores(leastallocated.new(), pod("p", "1", "1Gi"), c)
    assert s == {"n1": (25 + 37) // 2, "n2": (75 + 87) // 2}


def test_leastallocated_counts_nonzero_defaults() -> None:
    c = cache_with([node("n1", cpu="1", memory="1000Mi")])
    # no requests: 100m of 1000m and 200Mi of 1000Mi are assumed
    assert run_scores(leastallocated.new(), pod("p"), c) == {"n1": (90 + 80) // 2}


def test_balancedallocation_prefers_balanced_nodes() -> None:
    c = cache_with([node("n1", cpu="4", memory="4Gi"), node("n2", cpu="4", memory="4Gi")],
                   [pod("a", "2", "256Mi", node_name="n1"), pod("b", "1", "1Gi", node_name="n2")])
    s = run_scores(balancedallocation.new(), pod("p", "1", "1Gi"), c)
    assert s["n2"] == 100 and s["n1"] < s["n2"]


def test_selectorspread_prefers_nodes_without_siblings() -> None:
    c = cache_with([node("n1"), node("n2"), node("n3")],
                   [owned(pod("a", node_name="n1"), "rs1"), owned(pod("b", node_name="n1"), "rs1"),
                    owned(pod("c", node_name="n2"), "rs1"), owned(pod("d", node_name="n3"), "other")])
    s = run_scores(selectorspread.new(), owned(pod("p"), "rs1"), c)
    assert s == {"n1": 0, "n2": 50, "n3": 100}
    assert run_scores(selectorspread.new(), pod("q"), c) == {}


def test_taint_prefer_no_schedule_score() -> None:
    soft = {"key": "x", "effect": "PreferNoSchedule"}
    c = cache_with([node("n1", taints=[soft]), node("n2")])
    assert run_scores(tainttoleration.new(), pod("p"), c) == {"n1": 0, "n2": 100}
    tol = pod("p", tolerations=[{"key": "x", "operator": "Exists"}])
    assert run_scores(tainttoleration.new(), tol, c) == {"n1": 100, "n2": 100}


def test_nodeaffinity_preferred_score() -> None:
    p = pod("p", affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 80, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
        {"weight": 20, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}}]}})
    c = cache_with([node("n1", labels={"disk": "ssd", "zone": "a"}), node("n2", labels={"disk": "ssd"}),
                    node("n3")])
    assert run_scores(nodeaffinity.new(), p, c) == {"n1": 100, "n2": 80, "n3": 0}
