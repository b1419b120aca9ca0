"""Tests of k8py.api.defaults: Kubernetes' default values, idempotence, never overwriting."""

from __future__ import annotations

import base64
import copy
import glob
import os
import re
from typing import Any

import pytest
import yaml

from k8py.api import resources
from k8py.api.defaults import apply_defaults, image_pull_policy, qos_class

from helpers.corpus import EXAMPLES

CORPUS = str(EXAMPLES)


def _corpus_docs() -> list[tuple[str, int, dict[str, Any]]]:
    out: list[tuple[str, int, dict[str, Any]]] = []
    for path in sorted(glob.glob(f"{CORPUS}/**/*.yaml", recursive=True)):
        with open(path) as f:
            out.extend((os.path.relpath(path, CORPUS), i, d) for i, d in enumerate(yaml.safe_load_all(f)) if d)
    return out


CORPUS_DOCS = _corpus_docs()

_MISSING = object()


def get(obj: Any, path: str) -> Any:
    """obj at a path like `spec.containers[0].ports[0].protocol` (keys may be quoted: ['a.b'])."""
    for part in re.findall(r"\['([^']*)'\]|\[(\d+)\]|([^.\[\]]+)", path):
        key, idx, name = part
        try:
            if idx:
                obj = obj[int(idx)]
            else:
                obj = obj[key or name]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return obj


def pod(**spec: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx:1.25"}]}
    s.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": s}


def template_holder(kind: str, api_version: str, **spec: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"selector": {"matchLabels": {"app": "a"}}, "template": {
        "metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    s.update(spec)
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": "w", "namespace": "default"}, "spec": s}


def obj(kind: str, api_version: str = "v1", **fields: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}, **fields}


NOT_READY = {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300}
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
               "tolerationSeconds": 300}

# (id, object, path, expected value)
CASES: list[tuple[str, dict[str, Any], str, Any]] = [
    ("pod-restartPolicy", pod(), "spec.restartPolicy", "Always"),
    ("pod-dnsPolicy", pod(), "spec.dnsPolicy", "ClusterFirst"),
    ("pod-schedulerName", pod(), "spec.schedulerName", "default-scheduler"),
    ("pod-grace", pod(), "spec.terminationGracePeriodSeconds", 30),
    ("pod-securityContext", pod(), "spec.securityContext", {}),
    ("pod-enableServiceLinks", pod(), "spec.enableServiceLinks", True),
    ("pod-serviceAccountName", pod(), "spec.serviceAccountName", "default"),
    ("pod-serviceAccount", pod(), "spec.serviceAccount", "default"),
    ("pod-serviceAccount-mirrors", pod(serviceAccountName="robot"), "spec.serviceAccount", "robot"),
    ("pod-priority", pod(), "spec.priority", 0),
    ("pod-preemptionPolicy", pod(), "spec.preemptionPolicy", "PreemptLowerPriority"),
    ("pod-tolerations", pod(), "spec.tolerations", [NOT_READY, UNREACHABLE]),
    ("pod-tolerations-kept", pod(tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                               "effect": "NoExecute", "tolerationSeconds": 10}]),
     "spec.tolerations", [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                           "tolerationSeconds": 10}, UNREACHABLE]),
    ("pod-tolerate-all", pod(tolerations=[{"operator": "Exists"}]), "spec.tolerations", [{"operator": "Exists"}]),
    ("pod-status-phase", pod(), "status.phase", "Pending"),
    ("pod-qos-besteffort", pod(), "status.qosClass", "BestEffort"),
    ("container-terminationMessagePath", pod(), "spec.containers[0].terminationMessagePath", "/dev/termination-log"),
    ("container-terminationMessagePolicy", pod(), "spec.containers[0].terminationMessagePolicy", "File"),
    ("container-imagePullPolicy-tag", pod(), "spec.containers[0].imagePullPolicy", "IfNotPresent"),
    ("container-imagePullPolicy-latest", pod(containers=[{"name": "a", "image": "nginx:latest"}]),
     "spec.containers[0].imagePullPolicy", "Always"),
    ("container-imagePullPolicy-user", pod(containers=[{"name": "a", "image": "nginx", "imagePullPolicy": "Never"}]),
     "spec.containers[0].imagePullPolicy", "Never"),
    ("container-resources", pod(), "spec.containers[0].resources", {}),
    ("container-port-protocol", pod(containers=[{"name": "a", "image": "i", "ports": [{"containerPort": 80}]}]),
     "spec.containers[0].ports[0].protocol", "TCP"),
    ("requests-from-limits", pod(containers=[{"name": "a", "image": "i", "resources": {
        "limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}}]),
     "spec.containers[0].resources.requests", {"cpu": "500m", "memory": "1Gi"}),
    ("qos-guaranteed", pod(containers=[{"name": "a", "image": "i", "resources": {
        "limits": {"cpu": "1", "memory": "1Gi"}}}]), "status.qosClass", "Guaranteed"),
    ("qos-burstable", pod(containers=[{"name": "a", "image": "i", "resources": {
        "requests": {"cpu": "1"}}}]), "status.qosClass", "Burstable"),
    ("init-container-defaults", pod(initContainers=[{"name": "i", "image": "busybox"}]),
     "spec.initContainers[0].imagePullPolicy", "Always"),
    ("probe-defaults", pod(containers=[{"name": "a", "image": "i", "livenessProbe": {"httpGet": {"port": 80}}}]),
     "spec.containers[0].livenessProbe",
     {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10,
      "successThreshold": 1, "failureThreshold": 3}),
    ("sidecar-probe-defaults", pod(initContainers=[{"name": "s", "image": "i", "restartPolicy": "Always",
                                                    "startupProbe": {"exec": {"command": ["true"]}}}]),
     "spec.initContainers[0].startupProbe",
     {"exec": {"command": ["true"]}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
      "failureThreshold": 3}),
    ("sidecar-restart-policy-kept", pod(initContainers=[{"name": "s", "image": "i", "restartPolicy": "Always"}]),
     "spec.initContainers[0].restartPolicy", "Always"),
    ("probe-user-values", pod(containers=[{"name": "a", "image": "i", "readinessProbe": {
        "tcpSocket": {"port": 80}, "periodSeconds": 3}}]), "spec.containers[0].readinessProbe.periodSeconds", 3),
    ("env-fieldRef-apiVersion", pod(containers=[{"name": "a", "image": "i", "env": [
        {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]),
     "spec.containers[0].env[0].valueFrom.fieldRef.apiVersion", "v1"),
    ("volume-secret-mode", pod(volumes=[{"name": "v", "secret": {"secretName": "s"}}]),
     "spec.volumes[0].secret.defaultMode", 420),
    ("volume-configMap-mode", pod(volumes=[{"name": "v", "configMap": {"name": "c"}}]),
     "spec.volumes[0].configMap.defaultMode", 420),
    ("volume-emptyDir", pod(volumes=[{"name": "v"}]), "spec.volumes[0].emptyDir", {}),
    ("volume-hostPath-type", pod(volumes=[{"name": "v", "hostPath": {"path": "/d"}}]),
     "spec.volumes[0].hostPath.type", ""),
    ("hostNetwork-hostPort", pod(hostNetwork=True, containers=[{"name": "a", "image": "i", "ports": [
        {"containerPort": 8080}]}]), "spec.containers[0].ports[0].hostPort", 8080),
    ("deployment-replicas", template_holder("Deployment", "apps/v1"), "spec.replicas", 1),
    ("deployment-strategy", template_holder("Deployment", "apps/v1"), "spec.strategy",
     {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
    ("deployment-recreate", template_holder("Deployment", "apps/v1", strategy={"type": "Recreate"}),
     "spec.strategy", {"type": "Recreate"}),
    ("deployment-revisionHistoryLimit", template_holder("Deployment", "apps/v1"), "spec.revisionHistoryLimit", 10),
    ("deployment-progressDeadline", template_holder("Deployment", "apps/v1"), "spec.progressDeadlineSeconds", 600),
    ("deployment-template-pod-defaults", template_holder("Deployment", "apps/v1"),
     "spec.template.spec.containers[0].imagePullPolicy", "Always"),
    ("deployment-template-restart", template_holder("Deployment", "apps/v1"),
     "spec.template.spec.restartPolicy", "Always"),
    ("deployment-template-no-admission", template_holder("Deployment", "apps/v1"),
     "spec.template.spec.tolerations", _MISSING),
    ("replicaset-replicas", template_holder("ReplicaSet", "apps/v1"), "spec.replicas", 1),
    ("daemonset-updateStrategy", template_holder("DaemonSet", "apps/v1"), "spec.updateStrategy",
     {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
    ("daemonset-revisionHistoryLimit", template_holder("DaemonSet", "apps/v1"), "spec.revisionHistoryLimit", 10),
    ("statefulset-policy", template_holder("StatefulSet", "apps/v1"), "spec.podManagementPolicy", "OrderedReady"),
    ("rc-selector-from-template", {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "r"},
                                   "spec": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": {
                                       "containers": [{"name": "c", "image": "i"}]}}}},
     "spec.selector", {"app": "x"}),
    ("job-completions", template_holder("Job", "batch/v1"), "spec.completions", 1),
    ("job-parallelism", template_holder("Job", "batch/v1"), "spec.parallelism", 1),
    ("job-backoffLimit", template_holder("Job", "batch/v1"), "spec.backoffLimit", 6),
    # Changes between 1.32 and 1.37:
    ("job-backoffLimit-per-index", template_holder("Job", "batch/v1", completionMode="Indexed", completions=2,
                                                   backoffLimitPerIndex=1), "spec.backoffLimit", 2147483647),
    ("job-podReplacementPolicy", template_holder("Job", "batch/v1"), "spec.podReplacementPolicy",
     "TerminatingOrFailed"),
    ("job-podReplacementPolicy-with-failure-policy", template_holder("Job", "batch/v1", podFailurePolicy={
        "rules": []}), "spec.podReplacementPolicy", "Failed"),
    ("statefulset-maxUnavailable", template_holder("StatefulSet", "apps/v1"), "spec.updateStrategy.rollingUpdate",
     {"partition": 0, "maxUnavailable": 1}),
    ("job-completionMode", template_holder("Job", "batch/v1"), "spec.completionMode", "NonIndexed"),
    ("job-selector-from-uid", {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "uid": "u1"},
                               "spec": {"template": {"spec": {"restartPolicy": "Never",
                                                              "containers": [{"name": "c", "image": "perl"}]}}}},
     "spec.selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}),
    ("job-template-labels", {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "uid": "u1"},
                             "spec": {"template": {"spec": {"restartPolicy": "Never",
                                                            "containers": [{"name": "c", "image": "perl"}]}}}},
     "spec.template.metadata.labels['batch.kubernetes.io/job-name']", "pi"),
    ("cronjob-concurrency", obj("CronJob", "batch/v1", spec={"schedule": "@daily", "jobTemplate": {"spec": {
        "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}}), "spec.concurrencyPolicy", "Allow"),
    ("cronjob-history", obj("CronJob", "batch/v1", spec={"schedule": "@daily", "jobTemplate": {"spec": {
        "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}}), "spec.successfulJobsHistoryLimit", 3),
    ("hpa-minReplicas", obj("HorizontalPodAutoscaler", "autoscaling/v2", spec={"maxReplicas": 3}),
     "spec.minReplicas", 1),
    ("hpa-default-metric", obj("HorizontalPodAutoscaler", "autoscaling/v2", spec={"maxReplicas": 3}),
     "spec.metrics[0].resource.target.averageUtilization", 80),
    ("hpa-no-behavior", obj("HorizontalPodAutoscaler", "autoscaling/v2", spec={"maxReplicas": 3}),
     "spec.behavior", _MISSING),
    ("hpa-behavior-completed", obj("HorizontalPodAutoscaler", "autoscaling/v2", spec={
        "maxReplicas": 3, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}),
     "spec.behavior", {"scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [
         {"type": "Percent", "value": 100, "periodSeconds": 15}]},
         "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
             {"type": "Pods", "value": 4, "periodSeconds": 15},
             {"type": "Percent", "value": 100, "periodSeconds": 15}]}}),
    ("service-type", obj("Service", spec={"ports": [{"port": 80}]}), "spec.type", "ClusterIP"),
    ("service-sessionAffinity", obj("Service", spec={"ports": [{"port": 80}]}), "spec.sessionAffinity", "None"),
    ("service-port-protocol", obj("Service", spec={"ports": [{"port": 80}]}), "spec.ports[0].protocol", "TCP"),
    ("service-targetPort", obj("Service", spec={"ports": [{"port": 80}]}), "spec.ports[0].targetPort", 80),
    ("service-targetPort-kept", obj("Service", spec={"ports": [{"port": 80, "targetPort": "http"}]}),
     "spec.ports[0].targetPort", "http"),
    ("service-ipFamilies", obj("Service", spec={"ports": [{"port": 80}]}), "spec.ipFamilies", ["IPv4"]),
    ("service-ipFamilyPolicy", obj("Service", spec={"ports": [{"port": 80}]}), "spec.ipFamilyPolicy", "SingleStack"),
    ("service-internalTrafficPolicy", obj("Service", spec={"ports": [{"port": 80}]}),
     "spec.internalTrafficPolicy", "Cluster"),
    ("service-clusterip-no-external-policy", obj("Service", spec={"ports": [{"port": 80}]}),
     "spec.externalTrafficPolicy", _MISSING),
    ("service-nodeport-external-policy", obj("Service", spec={"type": "NodePort", "ports": [{"port": 80}]}),
     "spec.externalTrafficPolicy", "Cluster"),
    ("service-lb-external-policy", obj("Service", spec={"type": "LoadBalancer", "ports": [{"port": 80}]}),
     "spec.externalTrafficPolicy", "Cluster"),
    ("service-no-clusterIP", obj("Service", spec={"ports": [{"port": 80}]}), "spec.clusterIP", _MISSING),
    ("secret-type", obj("Secret"), "type", "Opaque"),
    ("secret-stringData-merged", obj("Secret", data={"a": "eA=="}, stringData={"b": "hello"}), "data",
     {"a": "eA==", "b": base64.b64encode(b"hello").decode()}),
    ("secret-stringData-removed", obj("Secret", stringData={"b": "hello"}), "stringData", _MISSING),
    ("secret-stringData-wins", obj("Secret", data={"b": "eA=="}, stringData={"b": "y"}), "data.b", "eQ=="),
    ("pvc-volumeMode", obj("PersistentVolumeClaim", spec={}), "spec.volumeMode", "Filesystem"),
    ("pvc-phase", obj("PersistentVolumeClaim", spec={}), "status.phase", "Pending"),
    ("pv-reclaim", obj("PersistentVolume", spec={"hostPath": {"path": "/d"}}),
     "spec.persistentVolumeReclaimPolicy", "Retain"),
    ("pv-reclaim-kept", obj("PersistentVolume", spec={"persistentVolumeReclaimPolicy": "Delete"}),
     "spec.persistentVolumeReclaimPolicy", "Delete"),
    ("namespace-finalizers", obj("Namespace"), "spec.finalizers", ["kubernetes"]),
    ("namespace-phase", obj("Namespace"), "status.phase", "Active"),
    ("namespace-name-label", obj("Namespace"), "metadata.labels['kubernetes.io/metadata.name']", "x"),
    ("node-allocatable", obj("Node", status={"capacity": {"cpu": "2"}}), "status.allocatable", {"cpu": "2"}),
    ("storageclass-reclaim", obj("StorageClass", "storage.k8s.io/v1", provisioner="p"), "reclaimPolicy", "Delete"),
    ("storageclass-binding", obj("StorageClass", "storage.k8s.io/v1", provisioner="p"),
     "volumeBindingMode", "Immediate"),
    ("endpoints-protocol", obj("Endpoints", subsets=[{"ports": [{"port": 80}]}]), "subsets[0].ports[0].protocol",
     "TCP"),
    ("endpointslice-protocol", obj("EndpointSlice", "discovery.k8s.io/v1", addressType="IPv4", ports=[{"port": 80}]),
     "ports[0].protocol", "TCP"),
    ("limitrange-default-from-max", obj("LimitRange", spec={"limits": [{"type": "Container", "max": {"cpu": "1"}}]}),
     "spec.limits[0].defaultRequest", {"cpu": "1"}),
]


@pytest.mark.parametrize("case_id,o,path,expected", CASES, ids=[c[0] for c in CASES])
def test_defaults(case_id: str, o: dict[str, Any], path: str, expected: Any) -> None:
    res = resources.by_kind(o["apiVersion"], o["kind"])
    assert res is not None
    o = copy.deepcopy(o)
    apply_defaults(o, res)
    assert get(o, path) == expected


@pytest.mark.parametrize("image,policy", [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"),
    ("localhost:5000/nginx", "Always"), ("localhost:5000/nginx:1.0", "IfNotPresent"),
    ("registry.k8s.io/redis@sha256:cb111d1bd870a6a471385a4a69ad17469d326e9dd91e0e455350cacf36e1b3ee", "IfNotPresent"),
])
def test_image_pull_policy(image: str, policy: str) -> None:
    assert image_pull_policy(image) == policy


@pytest.mark.parametrize("rel,idx,doc", CORPUS_DOCS, ids=lambda x: x if isinstance(x, str) else "")
def test_defaulting_is_idempotent_and_keeps_user_values(rel: str, idx: int, doc: dict[str, Any]) -> None:
    res = resources.by_kind(doc.get("apiVersion", ""), doc.get("kind", ""))
    if res is None:
        pytest.skip("no apiVersion: refused by the API server before defaulting")
    once = copy.deepcopy(doc)
    apply_defaults(once, res)
    twice = copy.deepcopy(once)
    apply_defaults(twice, res)
    assert twice == once
    if "stringData" not in doc:
        assert_subset(doc, once, "")


def assert_subset(user: Any, defaulted: Any, path: str) -> None:
    """Every value the user wrote survives defaulting unchanged (tolerations may grow)."""
    if isinstance(user, dict):
        assert isinstance(defaulted, dict), path
        for k, v in user.items():
            assert k in defaulted, f"{path}.{k} removed"
            assert_subset(v, defaulted[k], f"{path}.{k}")
    elif isinstance(user, list):
        assert isinstance(defaulted, list) and len(defaulted) >= len(user), path
        for i, v in enumerate(user):
            assert_subset(v, defaulted[i], f"{path}[{i}]")
    else:
        assert user == defaulted, path


def test_qos_class_ignores_unparseable_quantities() -> None:
    spec = {"containers": [{"name": "a", "resources": {"limits": {"cpu": "lots"}}}]}
    assert qos_class(spec) == "BestEffort"


@pytest.mark.parametrize("junk", [{"spec": []}, {"spec": {"containers": "x"}}, {"spec": {"containers": [1]}},
                                  {"spec": {"template": 3}}, {"stringData": [1]}, {"status": "x"}])
@pytest.mark.parametrize("plural", ["pods", "deployments", "services", "secrets", "jobs", "namespaces"])
def test_never_raises_on_junk(junk: dict[str, Any], plural: str) -> None:
    apply_defaults(copy.deepcopy(junk), resources.get(plural))
