"""Tests of k8py.api.tables: the columns and cells `kubectl get` shows, as Kubernetes prints them."""

from __future__ import annotations

import datetime as dt
import glob
from typing import Any

import pytest
import yaml

from k8py.api import resources
from k8py.api.defaults import apply_defaults
from k8py.api.tables import columns, human_duration, pod_status, to_table

from helpers.corpus import EXAMPLES

NOW = 1_700_000_000.0


def ts(seconds_ago: float) -> str:
    return dt.datetime.fromtimestamp(NOW - seconds_ago, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str = "x", age: float = 60, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "creationTimestamp": ts(age), **extra}


def names_of(plural: str) -> list[str]:
    return [c["name"] for c in columns(resources.get(plural))]


def cells(plural: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The row of `obj` as {column name: cell}."""
    table = to_table(resources.get(plural), [obj], NOW)
    return dict(zip(names_of(plural), table["rows"][0]["cells"]))


@pytest.mark.parametrize("seconds,expected", [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (5, "5s"), (119, "119s"), (120, "2m"), (125, "2m5s"),
    (599, "9m59s"), (600, "10m"), (179 * 60, "179m"), (3 * 3600, "3h"), (3 * 3600 + 120, "3h2m"),
    (8 * 3600, "8h"), (47 * 3600, "47h"), (48 * 3600, "2d"), (3 * 86400 + 4 * 3600, "3d4h"), (8 * 86400, "8d"),
    (400 * 86400, "400d"), (2 * 365 * 86400, "2y"), (3 * 365 * 86400 + 10 * 86400, "3y10d"),
    (9 * 365 * 86400, "9y"),
])
def test_human_duration(seconds: float, expected: str) -> None:
    assert human_duration(seconds) == expected


@pytest.mark.parametrize("plural,expected", [
    ("pods", ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"]),
    ("deployments", ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"]),
    ("replicasets", ["Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector"]),
    ("replicationcontrollers", ["Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector"]),
    ("daemonsets", ["Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age",
                    "Containers", "Images", "Selector"]),
    ("statefulsets", ["Name", "Ready", "Age", "Containers", "Images"]),
    ("jobs", ["Name", "Status", "Completions", "Duration", "Age", "Containers", "Images", "Selector"]),
    ("cronjobs", ["Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age", "Containers",
                  "Images", "Selector"]),
    ("services", ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]),
    ("nodes", ["Name", "Status", "Roles", "Age", "Version", "Internal-IP", "External-IP", "OS-Image",
               "Kernel-Version", "Container-Runtime"]),
    ("namespaces", ["Name", "Status", "Age"]),
    ("configmaps", ["Name", "Data", "Age"]),
    ("secrets", ["Name", "Type", "Data", "Age"]),
    ("serviceaccounts", ["Name", "Secrets", "Age"]),
    ("endpoints", ["Name", "Endpoints", "Age"]),
    ("endpointslices", ["Name", "AddressType", "Ports", "Endpoints", "Age"]),
    ("events", ["Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message", "First Seen", "Count",
                "Name"]),
    ("persistentvolumes", ["Name", "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim", "StorageClass",
                           "VolumeAttributesClass", "Reason", "Age", "VolumeMode"]),
    ("persistentvolumeclaims", ["Name", "Status", "Volume", "Capacity", "Access Modes", "StorageClass",
                                "VolumeAttributesClass", "Age", "VolumeMode"]),
    ("storageclasses", ["Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode", "AllowVolumeExpansion", "Age"]),
    ("leases", ["Name", "Holder", "Age"]),
    ("horizontalpodautoscalers", ["Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"]),
    ("resourcequotas", ["Name", "Age", "Request", "Limit"]),
    ("limitranges", ["Name", "Created At"]),
    ("controllerrevisions", ["Name", "Controller", "Revision", "Age"]),
])
def test_column_names(plural: str, expected: list[str]) -> None:
    assert names_of(plural) == expected


def test_wide_columns_have_priority_one() -> None:
    cols = columns(resources.get("pods"))
    assert [c["priority"] for c in cols] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert cols[0]["format"] == "name" and cols[0]["description"].startswith("Name must be unique")


@pytest.mark.parametrize("plural", sorted({r.plural for r in resources.RESOURCES}))
def test_every_row_has_a_cell_per_column_even_for_empty_objects(plural: str) -> None:
    res = resources.get(plural)
    table = to_table(res, [{"metadata": {"name": "a"}}, {}], NOW)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert len(table["rows"]) == 2
    for row in table["rows"]:
        assert len(row["cells"]) == len(table["columnDefinitions"])


def test_corpus_objects_print_one_cell_per_column() -> None:
    n = 0
    for path in glob.glob(f"{EXAMPLES}/**/*.yaml", recursive=True):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                res = resources.by_kind(doc.get("apiVersion", ""), doc.get("kind", "")) if doc else None
                if res is None:
                    continue
                apply_defaults(doc, res)
                table = to_table(res, [doc], NOW)
                assert len(table["rows"][0]["cells"]) == len(table["columnDefinitions"]), path
                n += 1
    assert n > 50


@pytest.mark.parametrize("mode,expected", [
    ("Metadata", {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta("a")}),
    ("Object", {"metadata": meta("a"), "data": {"k": "v"}}),
    ("None", None),
])
def test_include_object(mode: str, expected: Any) -> None:
    table = to_table(resources.get("configmaps"), [{"metadata": meta("a"), "data": {"k": "v"}}], NOW, mode)
    assert table["rows"][0].get("object") == expected


# ---------------------------------------------------------------------------------------
# Pods


def container_status(name: str = "app", ready: bool = False, restarts: int = 0, state: Any = None,
                     last_finished: float | None = None) -> dict[str, Any]:
    cs: dict[str, Any] = {"name": name, "ready": ready, "restartCount": restarts,
                          "state": state if state is not None else {"running": {"startedAt": ts(100)}}}
    if last_finished is not None:
        cs["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": ts(last_finished)}}
    return cs


def a_pod(phase: str = "Running", statuses: list[Any] | None = None, init: list[Any] | None = None,
          init_statuses: list[Any] | None = None, n: int = 1, **meta_extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}", "image": "i"} for i in range(n)]}
    if init is not None:
        spec["initContainers"] = init
    status: dict[str, Any] = {"phase": phase}
    if statuses is not None:
        status["containerStatuses"] = statuses
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    return {"metadata": meta("p", **meta_extra), "spec": spec, "status": status}


WAITING = lambda reason: {"waiting": {"reason": reason}}  # noqa: E731
TERMINATED = lambda reason, code=0: {"terminated": {"reason": reason, "exitCode": code}}  # noqa: E731

POD_CASES: list[tuple[str, dict[str, Any], tuple[str, str, str]]] = [
    ("pending-unscheduled", a_pod("Pending"), ("0/1", "Pending", "0")),
    ("container-creating", a_pod("Pending", [container_status(state=WAITING("ContainerCreating"))]),
     ("0/1", "ContainerCreating", "0")),
    ("running-ready", a_pod("Running", [container_status(ready=True)]), ("1/1", "Running", "0")),
    ("running-not-ready", a_pod("Running", [container_status(ready=False)]), ("0/1", "Running", "0")),
    ("two-of-two", a_pod("Running", [container_status("c0", True), container_status("c1", True)], n=2),
     ("2/2", "Running", "0")),
    ("completed", a_pod("Succeeded", [container_status(state=TERMINATED("Completed"))]), ("0/1", "Completed", "0")),
    ("error", a_pod("Failed", [container_status(state=TERMINATED("Error", 1))]), ("0/1", "Error", "0")),
    ("exit-code-without-reason", a_pod("Failed", [container_status(state={"terminated": {"exitCode": 3}})]),
     ("0/1", "ExitCode:3", "0")),
    ("signal-without-reason", a_pod("Failed", [container_status(state={"terminated": {"exitCode": 137, "signal": 9}})]),
     ("0/1", "Signal:9", "0")),
    ("oom-killed", a_pod("Running", [container_status(state=TERMINATED("OOMKilled", 137))]),
     ("0/1", "OOMKilled", "0")),
    ("crash-loop", a_pod("Running", [container_status(restarts=3, state=WAITING("CrashLoopBackOff"),
                                                      last_finished=120)]),
     ("0/1", "CrashLoopBackOff", "3 (2m ago)")),
    ("err-image-pull", a_pod("Pending", [container_status(state=WAITING("ErrImagePull"))]),
     ("0/1", "ErrImagePull", "0")),
    ("image-pull-backoff", a_pod("Pending", [container_status(state=WAITING("ImagePullBackOff"))]),
     ("0/1", "ImagePullBackOff", "0")),
    ("terminating", a_pod("Running", [container_status(ready=True)], deletionTimestamp=ts(1)),
     ("1/1", "Terminating", "0")),
    ("terminal-not-terminating", a_pod("Succeeded", [container_status(state=TERMINATED("Completed"))],
                                       deletionTimestamp=ts(1)), ("0/1", "Completed", "0")),
    ("node-lost", {**a_pod("Running"), "metadata": meta("p", deletionTimestamp=ts(1)),
                   "status": {"phase": "Running", "reason": "NodeLost"}}, ("0/1", "Unknown", "0")),
    ("evicted", {**a_pod("Failed"), "status": {"phase": "Failed", "reason": "Evicted"}}, ("0/1", "Evicted", "0")),
    ("init-0-of-1", a_pod("Pending", [container_status(state=WAITING("PodInitializing"))], init=[{"name": "i"}],
                          init_statuses=[container_status("i", state={"running": {}})]),
     ("0/1", "Init:0/1", "0")),
    ("init-1-of-2", a_pod("Pending", init=[{"name": "i1"}, {"name": "i2"}], init_statuses=[
        container_status("i1", state=TERMINATED("Completed")), container_status("i2", state={"running": {}})]),
     ("0/1", "Init:1/2", "0")),
    ("init-error", a_pod("Pending", init=[{"name": "i"}], init_statuses=[
        container_status("i", state=TERMINATED("Error", 1))]), ("0/1", "Init:Error", "0")),
    ("init-crash-loop", a_pod("Pending", init=[{"name": "i"}], init_statuses=[
        container_status("i", restarts=2, state=WAITING("CrashLoopBackOff"), last_finished=30)]),
     ("0/1", "Init:CrashLoopBackOff", "2 (30s ago)")),
    ("init-exit-code", a_pod("Pending", init=[{"name": "i"}], init_statuses=[
        container_status("i", state={"terminated": {"exitCode": 2}})]), ("0/1", "Init:ExitCode:2", "0")),
    ("sidecar-counts", a_pod("Running", [container_status("c0", True)],
                             init=[{"name": "side", "restartPolicy": "Always"}],
                             init_statuses=[container_status("side", True) | {"started": True}]),
     ("2/2", "Running", "0")),
    ("scheduling-gated", {**a_pod("Pending"), "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}}, ("0/1", "SchedulingGated", "0")),
    ("completed-but-one-running", {**a_pod("Running", [container_status("c0", True),
                                                      container_status("c1", state=TERMINATED("Completed"))], n=2),
                                   }, ("1/2", "NotReady", "0")),
]


@pytest.mark.parametrize("case_id,p,expected", POD_CASES, ids=[c[0] for c in POD_CASES])
def test_pod_ready_status_restarts(case_id: str, p: dict[str, Any], expected: tuple[str, str, str]) -> None:
    assert pod_status(p, NOW) == expected
    row = cells("pods", p)
    assert (row["Ready"], row["Status"], row["Restarts"]) == expected


def test_pod_wide_cells_and_conditions() -> None:
    p = a_pod("Succeeded", [container_status(state=TERMINATED("Completed"))])
    p["spec"].update(nodeName="node-1", readinessGates=[{"conditionType": "x/ready"}, {"conditionType": "y/ready"}])
    p["status"].update(podIP="10.42.0.5", podIPs=[{"ip": "10.42.0.5"}],
                       conditions=[{"type": "x/ready", "status": "True"}, {"type": "y/ready", "status": "False"}])
    row = cells("pods", p)
    assert (row["Name"], row["Age"], row["IP"], row["Node"], row["Nominated Node"], row["Readiness Gates"]) == \
        ("p", "60s", "10.42.0.5", "node-1", "<none>", "1/2")
    table = to_table(resources.get("pods"), [p], NOW)
    assert table["rows"][0]["conditions"][0]["type"] == "Completed"
    assert cells("pods", a_pod("Pending"))["IP"] == "<none>"


def test_pod_without_creation_timestamp_has_unknown_age() -> None:
    assert cells("pods", {"metadata": {"name": "p"}})["Age"] == "<unknown>"


# ---------------------------------------------------------------------------------------
# Other kinds: (plural, object, {column: expected cell})

TABLE_CASES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("deployment", "deployments", {"metadata": meta("web", 300), "spec": {
        "replicas": 3, "selector": {"matchLabels": {"app": "web"}},
        "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"},
                                             {"name": "side", "image": "busybox"}]}}},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}},
     {"Name": "web", "Ready": "2/3", "Up-to-date": 3, "Available": 2, "Age": "5m", "Containers": "nginx,side",
      "Images": "nginx:1.25,busybox", "Selector": "app=web"}),
    ("deployment-no-status", "deployments", {"metadata": meta("web"), "spec": {"replicas": 1}},
     {"Ready": "0/1", "Up-to-date": 0, "Available": 0, "Selector": "<none>"}),
    ("deployment-expression-selector", "deployments", {"metadata": meta("web"), "spec": {"selector": {
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]}}},
     {"Selector": "tier in (be,fe)"}),
    ("replicaset", "replicasets", {"metadata": meta("web-abc"), "spec": {"replicas": 3},
                                   "status": {"replicas": 3, "readyReplicas": 1}},
     {"Desired": 3, "Current": 3, "Ready": 1}),
    ("rc", "replicationcontrollers", {"metadata": meta("rc"), "spec": {"replicas": 2, "selector": {"app": "n"}}},
     {"Desired": 2, "Selector": "app=n"}),
    ("daemonset", "daemonsets", {"metadata": meta("ds"), "spec": {"template": {"spec": {
        "nodeSelector": {"kubernetes.io/os": "linux"}, "containers": []}}},
        "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1,
                   "updatedNumberScheduled": 2, "numberAvailable": 1}},
     {"Desired": 2, "Current": 2, "Ready": 1, "Up-to-date": 2, "Available": 1,
      "Node Selector": "kubernetes.io/os=linux"}),
    ("daemonset-no-selector", "daemonsets", {"metadata": meta("ds")}, {"Node Selector": "<none>"}),
    ("statefulset", "statefulsets", {"metadata": meta("db"), "spec": {"replicas": 3}, "status": {"readyReplicas": 3}},
     {"Ready": "3/3"}),
    ("job-running", "jobs", {"metadata": meta("pi"), "spec": {"completions": 1},
                             "status": {"startTime": ts(30), "active": 1}},
     {"Status": "Running", "Completions": "0/1", "Duration": "30s"}),
    ("job-complete", "jobs", {"metadata": meta("pi", 600), "spec": {"completions": 1}, "status": {
        "startTime": ts(600), "completionTime": ts(480), "succeeded": 1,
        "conditions": [{"type": "Complete", "status": "True"}]}},
     {"Status": "Complete", "Completions": "1/1", "Duration": "2m", "Age": "10m"}),
    ("job-parallel", "jobs", {"metadata": meta("pi"), "spec": {"parallelism": 3},
                              "status": {"conditions": [{"type": "Failed", "status": "True"}]}},
     {"Status": "Failed", "Completions": "0/1 of 3", "Duration": ""}),
    ("cronjob", "cronjobs", {"metadata": meta("cj"), "spec": {"schedule": "*/1 * * * *", "suspend": False},
                             "status": {"active": [{"name": "j"}], "lastScheduleTime": ts(42)}},
     {"Schedule": "*/1 * * * *", "Timezone": "<none>", "Suspend": "False", "Active": 1, "Last Schedule": "42s"}),
    ("service-clusterip", "services", {"metadata": meta("web"), "spec": {
        "type": "ClusterIP", "clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"],
        "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}], "selector": {"b": "2", "a": "1"}}},
     {"Type": "ClusterIP", "Cluster-IP": "10.43.0.10", "External-IP": "<none>", "Port(s)": "80/TCP,53/UDP",
      "Selector": "a=1,b=2"}),
    ("service-nodeport", "services", {"metadata": meta("web"), "spec": {
        "type": "NodePort", "clusterIP": "10.43.0.11", "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}},
     {"Port(s)": "80:30080/TCP", "External-IP": "<none>", "Selector": "<none>"}),
    ("service-lb-pending", "services", {"metadata": meta("lb"), "spec": {"type": "LoadBalancer", "ports": []}},
     {"External-IP": "<pending>", "Port(s)": "<none>"}),
    ("service-lb-ingress", "services", {"metadata": meta("lb"), "spec": {"type": "LoadBalancer"},
                                        "status": {"loadBalancer": {"ingress": [{"ip": "127.0.100.1"}]}}},
     {"External-IP": "127.0.100.1"}),
    ("service-external-ips", "services", {"metadata": meta("s"), "spec": {"type": "ClusterIP",
                                                                         "externalIPs": ["1.2.3.4", "5.6.7.8"]}},
     {"External-IP": "1.2.3.4,5.6.7.8"}),
    ("service-externalname", "services", {"metadata": meta("db"), "spec": {"type": "ExternalName",
                                                                          "externalName": "db.example.com"}},
     {"External-IP": "db.example.com", "Cluster-IP": "<none>"}),
    ("service-headless", "services", {"metadata": meta("h"), "spec": {"clusterIP": "None", "clusterIPs": ["None"]}},
     {"Cluster-IP": "None"}),
    ("node-ready", "nodes", {"metadata": meta("n1", 3 * 86400, labels={
        "node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": "true"}),
        "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {
            "kubeletVersion": "v1.32.0", "osImage": "Debian GNU/Linux 12", "kernelVersion": "6.1.0",
            "containerRuntimeVersion": "runc://1.1.5"},
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "n1"}]}},
     {"Status": "Ready", "Roles": "control-plane,worker", "Age": "3d", "Version": "v1.32.0",
      "Internal-IP": "10.0.0.1", "External-IP": "<none>", "OS-Image": "Debian GNU/Linux 12",
      "Container-Runtime": "runc://1.1.5"}),
    ("node-not-ready-cordoned", "nodes", {"metadata": meta("n2"), "spec": {"unschedulable": True},
                                          "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}},
     {"Status": "NotReady,SchedulingDisabled", "Roles": "<none>", "OS-Image": "<unknown>"}),
    ("node-unknown", "nodes", {"metadata": meta("n3")}, {"Status": "Unknown"}),
    ("namespace", "namespaces", {"metadata": meta("default"), "status": {"phase": "Active"}}, {"Status": "Active"}),
    ("configmap", "configmaps", {"metadata": meta("c"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "eA=="}},
     {"Data": 3}),
    ("secret", "secrets", {"metadata": meta("s"), "type": "Opaque", "data": {"u": "eA==", "p": "eA=="}},
     {"Type": "Opaque", "Data": 2}),
    ("serviceaccount", "serviceaccounts", {"metadata": meta("default")}, {"Secrets": 0}),
    ("endpoints", "endpoints", {"metadata": meta("web"), "subsets": [{
        "addresses": [{"ip": "10.42.0.1"}, {"ip": "10.42.0.2"}, {"ip": "10.42.0.3"}, {"ip": "10.42.0.4"}],
        "ports": [{"port": 80}]}]},
     {"Endpoints": "10.42.0.1:80,10.42.0.2:80,10.42.0.3:80 + 1 more..."}),
    ("endpoints-none", "endpoints", {"metadata": meta("web")}, {"Endpoints": "<none>"}),
    ("endpointslice", "endpointslices", {"metadata": meta("web-x"), "addressType": "IPv4",
                                         "ports": [{"port": 80}, {"name": "x"}],
                                         "endpoints": [{"addresses": ["10.42.0.1"]}, {"addresses": ["10.42.0.2"]}]},
     {"AddressType": "IPv4", "Ports": "80,x", "Endpoints": "10.42.0.1,10.42.0.2"}),
    ("endpointslice-empty", "endpointslices", {"metadata": meta("e"), "addressType": "IPv4"},
     {"Ports": "<unset>", "Endpoints": "<unset>"}),
    ("event", "events", {"metadata": meta("p.1"), "type": "Warning", "reason": "FailedScheduling",
                         "message": " 0/1 nodes are available \n", "involvedObject": {"kind": "Pod", "name": "p"},
                         "source": {"component": "default-scheduler"}, "firstTimestamp": ts(300),
                         "lastTimestamp": ts(10), "count": 4},
     {"Last Seen": "10s", "Type": "Warning", "Reason": "FailedScheduling", "Object": "pod/p",
      "Message": "0/1 nodes are available", "First Seen": "5m", "Count": 4, "Source": "default-scheduler"}),
    ("event-new-api", "events", {"metadata": meta("e"), "eventTime": "2023-11-14T22:12:50.000000Z",
                                 "reportingController": "k8py/kubelet", "reportingInstance": "n1",
                                 "involvedObject": {"kind": "Node", "name": "n1"}},
     {"Last Seen": "30s", "First Seen": "30s", "Count": 1, "Source": "k8py/kubelet, n1", "Object": "node/n1"}),
    ("pv", "persistentvolumes", {"metadata": meta("pv1"), "spec": {
        "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "manual",
        "claimRef": {"namespace": "default", "name": "claim"}, "volumeMode": "Filesystem"},
        "status": {"phase": "Bound"}},
     {"Capacity": "10Gi", "Access Modes": "RWO,RWX", "Reclaim Policy": "Retain", "Status": "Bound",
      "Claim": "default/claim", "StorageClass": "manual", "VolumeAttributesClass": "<unset>", "Reason": "",
      "VolumeMode": "Filesystem"}),
    ("pvc-bound", "persistentvolumeclaims", {"metadata": meta("claim"), "spec": {
        "volumeName": "pv1", "storageClassName": "manual", "resources": {"requests": {"storage": "3Gi"}}},
        "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"}}},
     {"Status": "Bound", "Volume": "pv1", "Capacity": "10Gi", "Access Modes": "RWO", "StorageClass": "manual"}),
    ("pvc-pending", "persistentvolumeclaims", {"metadata": meta("claim"), "spec": {}, "status": {"phase": "Pending"}},
     {"Status": "Pending", "Volume": "", "Capacity": "", "Access Modes": "", "VolumeMode": "<unset>"}),
    ("storageclass-default", "storageclasses", {"metadata": meta("local", annotations={
        "storageclass.kubernetes.io/is-default-class": "true"}), "provisioner": "k8py.io/hostpath"},
     {"Name": "local (default)", "Provisioner": "k8py.io/hostpath", "ReclaimPolicy": "Delete",
      "VolumeBindingMode": "Immediate", "AllowVolumeExpansion": False}),
    ("lease", "leases", {"metadata": meta("n1"), "spec": {"holderIdentity": "n1"}}, {"Holder": "n1"}),
    ("hpa", "horizontalpodautoscalers", {"metadata": meta("php"), "spec": {
        "scaleTargetRef": {"kind": "Deployment", "name": "php-apache"}, "minReplicas": 1, "maxReplicas": 10,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": 50}}}]},
        "status": {"currentReplicas": 1, "currentMetrics": [{"type": "Resource", "resource": {
            "name": "cpu", "current": {"averageUtilization": 12}}}]}},
     {"Reference": "Deployment/php-apache", "Targets": "cpu: 12%/50%", "MinPods": "1", "MaxPods": 10,
      "Replicas": 1}),
    ("hpa-unknown", "horizontalpodautoscalers", {"metadata": meta("php"), "spec": {
        "scaleTargetRef": {"kind": "Deployment", "name": "d"}, "maxReplicas": 3, "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"averageUtilization": 80}}}]}},
     {"Targets": "cpu: <unknown>/80%", "MinPods": "<unset>"}),
    ("quota", "resourcequotas", {"metadata": meta("q"), "status": {
        "hard": {"requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2", "pods": "10"},
        "used": {"requests.cpu": "500m", "pods": "3"}}},
     {"Request": "pods: 3/10, requests.cpu: 500m/1, requests.memory: 0/1Gi", "Limit": "limits.cpu: 0/2"}),
    ("limitrange", "limitranges", {"metadata": meta("lr", 0)}, {"Created At": "2023-11-14T22:13:20Z"}),
    ("controllerrevision", "controllerrevisions", {"metadata": meta("ds-1", ownerReferences=[
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "controller": True, "uid": "u"}]),
        "revision": 2}, {"Controller": "daemonset.apps/ds", "Revision": 2}),
]


@pytest.mark.parametrize("case_id,plural,o,expected", TABLE_CASES, ids=[c[0] for c in TABLE_CASES])
def test_cells(case_id: str, plural: str, o: dict[str, Any], expected: dict[str, Any]) -> None:
    row = cells(plural, o)
    assert {k: row[k] for k in expected} == expected


def test_generic_fallback_prints_name_and_age() -> None:
    from k8py.api.resources import Resource

    res = Resource("example.com", "v1", "Widget", "widgets", True)
    table = to_table(res, [{"metadata": meta("w", 7200)}], NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]
    assert table["rows"][0]["cells"] == ["w", "120m"]


@pytest.mark.parametrize("service,conds,want", [
    (None, [{"type": "Available", "status": "True", "reason": "Local"}], ["Local", "True"]),
    ({"namespace": "kube-system", "name": "metrics-server"},
     [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}],
     ["kube-system/metrics-server", "False (MissingEndpoints)"]),
])
def test_apiservice_columns(service: Any, conds: list[Any], want: list[str]) -> None:
    res = resources.get("apiservices")
    assert names_of("apiservices") == ["Name", "Service", "Available", "Age"]
    obj = {"metadata": {"name": "v1beta1.metrics.k8s.io"}, "spec": {"service": service},
           "status": {"conditions": conds}}
    assert to_table(res, [obj], NOW)["rows"][0]["cells"][1:3] == want
