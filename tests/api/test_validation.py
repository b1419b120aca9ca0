"""Tests of k8py.api.validation: the example corpus, new-user mistakes, updates, unknown fields."""

from __future__ import annotations

import copy
import glob
import os
from typing import Any

import pytest
import yaml

from k8py.api import resources
from k8py.api.defaults import apply_defaults
from k8py.api.validation import unknown_fields, validate
from k8py.api.validation.field import (
    DUPLICATE,
    FORBIDDEN,
    INVALID,
    NOT_FOUND,
    NOT_SUPPORTED,
    REQUIRED,
    TOO_LONG,
    TYPE_INVALID,
    FieldError,
    go_label_selector,
)

from helpers.corpus import EXAMPLES

CORPUS = str(EXAMPLES)
NO_API_VERSION = "pods/inject/pod-single-secret-env-variable.yaml"
BAD_AFFINITY = "pods/pod-with-node-affinity.yaml"
QUANTITY_RE_MSG = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


def corpus_docs() -> list[tuple[str, int, dict[str, Any]]]:
    out = []
    for path in sorted(glob.glob(f"{CORPUS}/**/*.yaml", recursive=True)):
        rel = os.path.relpath(path, CORPUS)
        with open(path) as f:
            for i, doc in enumerate(yaml.safe_load_all(f)):
                if doc:
                    out.append((rel, i, doc))
    return out


def prepare(doc: dict[str, Any]) -> tuple[dict[str, Any], resources.Resource]:
    """What the API server does before validating: find the resource, set namespace, default."""
    obj = copy.deepcopy(doc)
    res = resources.by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
    assert res is not None, f"no resource for {obj.get('apiVersion')!r} {obj.get('kind')!r}"
    if res.namespaced:
        obj.setdefault("metadata", {}).setdefault("namespace", "default")
    apply_defaults(obj, res)
    return obj, res


CORPUS_DOCS = corpus_docs()


def test_corpus_is_present() -> None:
    assert len(CORPUS_DOCS) > 50


@pytest.mark.parametrize("rel,idx,doc", [d for d in CORPUS_DOCS if d[0] not in (NO_API_VERSION, BAD_AFFINITY)],
                         ids=lambda x: x if isinstance(x, str) else "")
def test_valid_corpus_documents_have_no_errors(rel: str, idx: int, doc: dict[str, Any]) -> None:
    obj, res = prepare(doc)
    assert [str(e) for e in validate(obj, res)] == []
    assert unknown_fields(obj, res) == []


def test_corpus_without_api_version_has_no_resource() -> None:
    # The API server refuses it before validation ("Object 'apiVersion' is missing").
    docs = [d for r, _, d in CORPUS_DOCS if r == NO_API_VERSION]
    assert docs and "apiVersion" not in docs[0]
    assert resources.by_kind(docs[0].get("apiVersion", ""), docs[0]["kind"]) is None


def test_corpus_node_affinity_is_rejected_naming_the_field() -> None:
    doc = next(d for r, _, d in CORPUS_DOCS if r == BAD_AFFINITY)
    obj, res = prepare(doc)
    errs = validate(obj, res)
    assert [e.field for e in errs] == ["spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"]
    assert errs[0].type == TYPE_INVALID
    assert "must be of type object" in errs[0].message


# ---------------------------------------------------------------------------------------
# Table of invalid objects: (id, resource, object, expected (type, field, message substring))


def pod(**spec: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx:1.25"}]}
    s.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": s}


def container(**c: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": "app", "image": "nginx:1.25"}
    out.update(c)
    return out


def deployment(selector: Any = None, labels: Any = None, **spec: Any) -> dict[str, Any]:
    s: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}} if selector is None else selector,
        "template": {"metadata": {"labels": {"app": "web"} if labels is None else labels},
                     "spec": {"containers": [{"name": "web", "image": "nginx"}]}},
    }
    s.update(spec)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"}, "spec": s}


def service(**spec: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"ports": [{"port": 80}], "selector": {"app": "web"}}
    s.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": "default"}, "spec": s}


def obj(kind: str, api_version: str = "v1", name: str = "x", ns: str | None = "default",
        **fields: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **fields}


LONG = "a" * 64

INVALID_CASES: list[tuple[str, dict[str, Any], tuple[str, str, str]]] = [
    ("pod-without-containers", pod(containers=[]), (REQUIRED, "spec.containers", "Required value")),
    ("pod-without-spec", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}},
     (REQUIRED, "spec.containers", "Required value")),
    ("memory-12XB", pod(containers=[container(resources={"limits": {"memory": "12XB"}})]),
     (INVALID, "spec.containers[0].resources.limits.memory", f'Invalid value: "12XB": {QUANTITY_RE_MSG}')),
    ("label-value-64", {**pod(), "metadata": {"name": "p", "labels": {"app": LONG}}},
     (INVALID, "metadata.labels", f'Invalid value: "{LONG}": must be no more than 63 characters')),
    ("label-key-bad", {**pod(), "metadata": {"name": "p", "labels": {"-bad": "x"}}},
     (INVALID, "metadata.labels", "name part must consist of alphanumeric characters")),
    ("label-key-prefix-bad", {**pod(), "metadata": {"name": "p", "labels": {"Foo_/bar": "x"}}},
     (INVALID, "metadata.labels", "prefix part a lowercase RFC 1123 subdomain")),
    ("selector-not-matching", deployment(labels={"app": "api"}),
     (INVALID, "spec.template.metadata.labels",
      'Invalid value: map[string]string{"app":"api"}: `selector` does not match template `labels`')),
    ("replicas-string", deployment(replicas="three"),
     (TYPE_INVALID, "spec.replicas",
      'Invalid value: "string": spec.replicas in body must be of type integer: "string"')),
    ("replicas-negative", deployment(replicas=-1),
     (INVALID, "spec.replicas", "Invalid value: -1: must be greater than or equal to 0")),
    ("deployment-no-selector", {**deployment(), "spec": {"template": deployment()["spec"]["template"]}},
     (REQUIRED, "spec.selector", "Required value")),
    ("deployment-empty-selector", deployment(selector={}),
     (INVALID, "spec.selector", "empty selector is invalid for deployment")),
    ("deployment-selector-bad-operator",
     deployment(selector={"matchExpressions": [{"key": "app", "operator": "Is", "values": ["web"]}]}),
     (INVALID, "spec.selector.matchExpressions[0].operator", "not a valid selector operator")),
    ("deployment-recreate-with-rolling",
     deployment(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
     (FORBIDDEN, "spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")),
    ("deployment-zero-unavailable-and-surge",
     deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}),
     (INVALID, "spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when `maxSurge` is 0")),
    ("deployment-template-never", {**deployment(), "spec": {**deployment()["spec"], "template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "w", "image": "nginx"}]}}}},
     (NOT_SUPPORTED, "spec.template.spec.restartPolicy", 'Unsupported value: "Never": supported values: "Always"')),
    ("deployment-template-container-no-image", {**deployment(), "spec": {**deployment()["spec"], "template": {
        "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "w"}]}}}},
     (REQUIRED, "spec.template.spec.containers[0].image", "Required value")),
    ("requests-over-limits", pod(containers=[container(resources={"limits": {"cpu": "500m"},
                                                                  "requests": {"cpu": "1"}})]),
     (INVALID, "spec.containers[0].resources.requests",
      'Invalid value: "1": must be less than or equal to cpu limit of 500m')),
    ("negative-quantity", pod(containers=[container(resources={"requests": {"memory": "-1Mi"}})]),
     (INVALID, "spec.containers[0].resources.requests[memory]", "must be greater than or equal to 0")),
    ("unknown-resource-name", pod(containers=[container(resources={"requests": {"gpu": "1"}})]),
     (INVALID, "spec.containers[0].resources.requests[gpu]", "must be a standard resource type or fully qualified")),
    ("duplicate-container", pod(containers=[container(), container()]),
     (DUPLICATE, "spec.containers[1].name", 'Duplicate value: "app"')),
    ("container-name-upper", pod(containers=[container(name="App")]),
     (INVALID, "spec.containers[0].name", "a lowercase RFC 1123 label must consist of")),
    ("no-image", pod(containers=[{"name": "app"}]), (REQUIRED, "spec.containers[0].image", "Required value")),
    ("port-too-big", pod(containers=[container(ports=[{"containerPort": 70000}])]),
     (INVALID, "spec.containers[0].ports[0].containerPort",
      "Invalid value: 70000: must be between 1 and 65535, inclusive")),
    ("port-protocol", pod(containers=[container(ports=[{"containerPort": 80, "protocol": "HTTP"}])]),
     (NOT_SUPPORTED, "spec.containers[0].ports[0].protocol",
      'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"')),
    ("restart-policy", pod(restartPolicy="Sometimes"),
     (NOT_SUPPORTED, "spec.restartPolicy", 'supported values: "Always", "OnFailure", "Never"')),
    ("dns-policy", pod(dnsPolicy="Google"), (NOT_SUPPORTED, "spec.dnsPolicy", 'Unsupported value: "Google"')),
    ("env-name", pod(containers=[container(env=[{"name": "1X", "value": "y"}])]),
     (INVALID, "spec.containers[0].env[0].name", "a valid environment variable name must consist of")),
    ("mount-missing-volume", pod(containers=[container(volumeMounts=[{"name": "data", "mountPath": "/d"}])]),
     (NOT_FOUND, "spec.containers[0].volumeMounts[0].name", 'Not found: "data"')),
    ("volume-two-sources", pod(volumes=[{"name": "v", "emptyDir": {}, "hostPath": {"path": "/tmp"}}]),
     (FORBIDDEN, "spec.volumes[0].hostPath", "may not specify more than 1 volume type")),
    ("volume-duplicate", pod(volumes=[{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]),
     (DUPLICATE, "spec.volumes[1].name", 'Duplicate value: "v"')),
    ("secret-volume-mode", pod(volumes=[{"name": "v", "secret": {"secretName": "s", "defaultMode": 1000}}]),
     (INVALID, "spec.volumes[0].secret.defaultMode", "must be a number between 0 and 0777 (octal)")),
    ("probe-no-handler", pod(containers=[container(livenessProbe={"periodSeconds": 5})]),
     (REQUIRED, "spec.containers[0].livenessProbe", "Required value: must specify a handler type")),
    ("probe-two-handlers", pod(containers=[container(readinessProbe={
        "exec": {"command": ["true"]}, "tcpSocket": {"port": 80}})]),
     (FORBIDDEN, "spec.containers[0].readinessProbe.tcpSocket", "may not specify more than 1 handler type")),
    ("liveness-success-threshold", pod(containers=[container(livenessProbe={
        "exec": {"command": ["true"]}, "successThreshold": 2})]),
     (INVALID, "spec.containers[0].livenessProbe.successThreshold", "Invalid value: 2: must be 1")),
    ("probe-port-name", pod(containers=[container(livenessProbe={"httpGet": {"port": "Web_Port"}})]),
     (INVALID, "spec.containers[0].livenessProbe.httpGet.port",
      "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")),
    ("node-selector-key", pod(nodeSelector={"bad key": "x"}),
     (INVALID, "spec.nodeSelector", 'Invalid value: "bad key"')),
    ("affinity-empty-terms", pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": []}}}),
     (REQUIRED, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
      "must have at least one node selector term")),
    ("affinity-in-without-values", pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In"}]}]}}}),
     (REQUIRED, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
                ".matchExpressions[0].values", "must be specified when `operator` is 'In' or 'NotIn'")),
    ("affinity-bad-value", pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a b"]}]}]}}}),
     (INVALID, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
               ".matchExpressions[0].values[0]", 'Invalid value: "a b": a valid label must be')),
    ("affinity-weight", pod(affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 0, "preference": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}}]}}),
     (INVALID, "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
      "must be in the range 1-100")),
    ("pod-affinity-topology", pod(affinity={"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"a": "b"}}}]}}),
     (REQUIRED, "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
      "can not be empty")),
    ("toleration-exists-value", pod(tolerations=[{"key": "k", "operator": "Exists", "value": "v"}]),
     (INVALID, "spec.tolerations[0].operator", "value must be empty when `operator` is 'Exists'")),
    ("toleration-operator", pod(tolerations=[{"key": "k", "operator": "Is"}]),
     (NOT_SUPPORTED, "spec.tolerations[0].operator", 'supported values: "Equal", "Exists"')),
    ("toleration-effect", pod(tolerations=[{"key": "k", "operator": "Exists", "effect": "Never"}]),
     (NOT_SUPPORTED, "spec.tolerations[0].effect", 'Unsupported value: "Never"')),
    ("toleration-seconds-without-noexecute", pod(tolerations=[
        {"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}]),
     (INVALID, "spec.tolerations[0].effect", "effect must be 'NoExecute' when `tolerationSeconds` is set")),
    ("pod-name-upper", {**pod(), "metadata": {"name": "MyPod"}},
     (INVALID, "metadata.name", 'Invalid value: "MyPod": a lowercase RFC 1123 subdomain must consist of')),
    ("no-name", {**pod(), "metadata": {}},
     (REQUIRED, "metadata.name", "Required value: name or generateName is required")),
    ("annotations-too-big", {**pod(), "metadata": {"name": "p", "annotations": {"a": "x" * 262144}}},
     (TOO_LONG, "metadata.annotations", "Too long: may not be more than 262144 bytes")),
    ("service-no-ports", service(ports=[]), (REQUIRED, "spec.ports", "Required value")),
    ("service-type", service(type="Public"),
     (NOT_SUPPORTED, "spec.type",
      'Unsupported value: "Public": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"')),
    ("service-port-zero", service(ports=[{"port": 0}]),
     (INVALID, "spec.ports[0].port", "must be between 1 and 65535, inclusive")),
    ("service-ports-unnamed", service(ports=[{"port": 80}, {"port": 443}]),
     (REQUIRED, "spec.ports[0].name", "Required value")),
    ("service-ports-dup-name", service(ports=[{"port": 80, "name": "a"}, {"port": 443, "name": "a"}]),
     (DUPLICATE, "spec.ports[1].name", 'Duplicate value: "a"')),
    ("service-nodeport-range", service(type="NodePort", ports=[{"port": 80, "nodePort": 8080}]),
     (INVALID, "spec.ports[0].nodePort", "The range of valid ports is 30000-32767")),
    ("service-nodeport-on-clusterip", service(ports=[{"port": 80, "nodePort": 30080}]),
     (FORBIDDEN, "spec.ports[0].nodePort", "may not be used when `type` is 'ClusterIP'")),
    ("service-externalname-missing", service(type="ExternalName", ports=[]),
     (REQUIRED, "spec.externalName", "Required value")),
    ("service-name-digit", {**service(), "metadata": {"name": "1svc", "namespace": "default"}},
     (INVALID, "metadata.name", "a DNS-1035 label must consist of")),
    ("service-bad-cluster-ip", service(clusterIP="10.0.0.300"),
     (INVALID, "spec.clusterIPs[0]", "must be empty, 'None', or a valid IP address")),
    ("secret-bad-base64", obj("Secret", data={"password": "not base64!"}),
     (INVALID, "data[password]", "illegal base64 data at input byte 3")),
    ("secret-bad-key", obj("Secret", data={"a b": "eA=="}),
     (INVALID, "data[a b]", "a valid config key must consist of alphanumeric characters")),
    ("secret-tls-missing", obj("Secret", type="kubernetes.io/tls", data={"tls.crt": "eA=="}),
     (REQUIRED, "data[tls.key]", "Required value")),
    ("configmap-bad-key", obj("ConfigMap", data={"bad/key": "v"}),
     (INVALID, "data[bad/key]", "a valid config key must consist of")),
    ("namespace-dotted", obj("Namespace", name="my.ns", ns=None),
     (INVALID, "metadata.name", "a lowercase RFC 1123 label must consist of")),
    ("namespace-on-cluster-scoped", obj("Namespace", name="ns1", ns="default"),
     (FORBIDDEN, "metadata.namespace", "Forbidden: not allowed on this type")),
    ("node-taint-effect", obj("Node", name="n1", ns=None, spec={"taints": [{"key": "k", "effect": "Sometimes"}]}),
     (NOT_SUPPORTED, "spec.taints[0].effect", 'Unsupported value: "Sometimes"')),
    ("pv-no-capacity", obj("PersistentVolume", name="pv1", ns=None,
                           spec={"accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/d"}}),
     (REQUIRED, "spec.capacity", "Required value")),
    ("pv-no-source", obj("PersistentVolume", name="pv1", ns=None,
                         spec={"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}}),
     (REQUIRED, "spec", "must specify a volume type")),
    ("pv-bad-access-mode", obj("PersistentVolume", name="pv1", ns=None, spec={
        "accessModes": ["ReadWriteSometimes"], "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/d"}}),
     (NOT_SUPPORTED, "spec.accessModes", 'Unsupported value: "ReadWriteSometimes"')),
    ("pvc-no-storage", obj("PersistentVolumeClaim", spec={"accessModes": ["ReadWriteOnce"]}),
     (REQUIRED, "spec.resources[storage]", "Required value")),
    ("pvc-no-access-modes", obj("PersistentVolumeClaim", spec={"resources": {"requests": {"storage": "1Gi"}}}),
     (REQUIRED, "spec.accessModes", "at least 1 access mode is required")),
    ("lease-zero-duration", obj("Lease", "coordination.k8s.io/v1", spec={"leaseDurationSeconds": 0}),
     (INVALID, "spec.leaseDurationSeconds", "must be greater than 0")),
    ("storageclass-no-provisioner", obj("StorageClass", "storage.k8s.io/v1", ns=None),
     (REQUIRED, "provisioner", "Required value")),
    ("storageclass-binding-mode", obj("StorageClass", "storage.k8s.io/v1", ns=None, provisioner="k8py.io/host",
                                      volumeBindingMode="Later"),
     (NOT_SUPPORTED, "volumeBindingMode", 'Unsupported value: "Later"')),
    ("event-no-involved-object", obj("Event", reason="X"), (REQUIRED, "involvedObject", "Required value")),
    ("event-namespace-mismatch", obj("Event", reason="X", involvedObject={"kind": "Pod", "name": "p",
                                                                         "namespace": "other"}),
     (INVALID, "involvedObject.namespace", 'Invalid value: "other": does not match event.namespace')),
    ("event-new-style-needs-reporter", obj("Event", reason="X", eventTime="2024-01-01T00:00:00.000000Z",
                                           involvedObject={"kind": "Pod", "name": "p", "namespace": "default"}),
     (REQUIRED, "reportingComponent", "Required value")),
    ("endpoints-bad-ip", obj("Endpoints", subsets=[{"addresses": [{"ip": "nope"}], "ports": [{"port": 80}]}]),
     (INVALID, "subsets[0].addresses[0].ip", "must be a valid IP address")),
    ("endpointslice-address-type", obj("EndpointSlice", "discovery.k8s.io/v1", addressType="IPv5", endpoints=[]),
     (NOT_SUPPORTED, "addressType", 'Unsupported value: "IPv5"')),
    ("job-restart-always", obj("Job", "batch/v1", spec={"template": {"spec": {
        "restartPolicy": "Always", "containers": [{"name": "j", "image": "busybox"}]}}}),
     (NOT_SUPPORTED, "spec.template.spec.restartPolicy", 'supported values: "OnFailure", "Never"')),
    ("cronjob-schedule", obj("CronJob", "batch/v1", spec={"schedule": "every minute", "jobTemplate": {"spec": {
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "j", "image": "busybox"}]}}}}}),
     (INVALID, "spec.schedule", 'Invalid value: "every minute"')),
    ("daemonset-selector-mismatch", obj("DaemonSet", "apps/v1", spec={
        "selector": {"matchLabels": {"app": "a"}},
        "template": {"metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}),
     (INVALID, "spec.template.metadata.labels", "`selector` does not match template `labels`")),
    ("rc-selector-mismatch", obj("ReplicationController", spec={
        "selector": {"app": "a"},
        "template": {"metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}),
     (INVALID, "spec.template.metadata.labels", "`selector` does not match template `labels`")),
    ("hpa-max-below-min", obj("HorizontalPodAutoscaler", "autoscaling/v2", spec={
        "scaleTargetRef": {"kind": "Deployment", "name": "d", "apiVersion": "apps/v1"},
        "minReplicas": 5, "maxReplicas": 2}),
     (INVALID, "spec.maxReplicas", "must be greater than or equal to `minReplicas`")),
    ("env-value-and-valueFrom", pod(containers=[container(env=[{"name": "A", "value": "x", "valueFrom": {
        "fieldRef": {"fieldPath": "metadata.name"}}}])]),
     (INVALID, "spec.containers[0].env[0].valueFrom", "may not be specified when `value` is not empty")),
    ("envFrom-without-source", pod(containers=[container(envFrom=[{"prefix": "P_"}])]),
     (INVALID, "spec.containers[0].envFrom[0]", "must specify one of: `configMapRef` or `secretRef`")),
    ("hostNetwork-port-mismatch", pod(hostNetwork=True, containers=[container(ports=[
        {"containerPort": 80, "hostPort": 8080}])]),
     (INVALID, "spec.containers[0].ports[0].containerPort", "must match `hostPort` when `hostNetwork` is true")),
    ("init-container-probe", pod(initContainers=[container(name="init", livenessProbe={
        "exec": {"command": ["true"]}})]),
     (FORBIDDEN, "spec.initContainers[0].livenessProbe", "may not be set for init containers")),
    ("init-container-restart-policy-on-failure",
     pod(initContainers=[container(name="init", restartPolicy="OnFailure")]),
     (NOT_SUPPORTED, "spec.initContainers[0].restartPolicy",
      'Unsupported value: "OnFailure": supported values: "Always"')),
    ("init-container-restart-policy-never", pod(initContainers=[container(name="init", restartPolicy="Never")]),
     (NOT_SUPPORTED, "spec.initContainers[0].restartPolicy", 'Unsupported value: "Never"')),
    ("container-restart-policy", pod(containers=[container(restartPolicy="Always")]),
     (FORBIDDEN, "spec.containers[0].restartPolicy", "Forbidden: may not be set for non-init containers")),
    ("init-container-lifecycle", pod(initContainers=[container(name="init", lifecycle={
        "preStop": {"exec": {"command": ["true"]}}})]),
     (FORBIDDEN, "spec.initContainers[0].lifecycle",
      "Forbidden: may not be set for init containers without restartPolicy=Always")),
    ("init-container-startup-probe", pod(initContainers=[container(name="init", startupProbe={
        "exec": {"command": ["true"]}})]),
     (FORBIDDEN, "spec.initContainers[0].startupProbe",
      "Forbidden: may not be set for init containers without restartPolicy=Always")),
    ("sidecar-probe-checked", pod(initContainers=[container(name="side", restartPolicy="Always", livenessProbe={
        "exec": {"command": ["true"]}, "successThreshold": 2})]),
     (INVALID, "spec.initContainers[0].livenessProbe.successThreshold", "Invalid value: 2: must be 1")),
    ("sidecar-lifecycle-checked", pod(initContainers=[container(name="side", restartPolicy="Always", lifecycle={
        "preStop": {"periodSeconds": 1}})]),
     (REQUIRED, "spec.initContainers[0].lifecycle.preStop", "must specify a handler type")),
    ("job-sidecar-restart-policy", obj("Job", "batch/v1", spec={"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "j", "image": "busybox"}],
        "initContainers": [{"name": "s", "image": "busybox", "restartPolicy": "OnFailure"}]}}}),
     (NOT_SUPPORTED, "spec.template.spec.initContainers[0].restartPolicy", 'supported values: "Always"')),
    ("init-and-app-same-name", pod(initContainers=[container()]),
     (DUPLICATE, "spec.containers[0].name", 'Duplicate value: "app"')),
    ("subpath-absolute", pod(volumes=[{"name": "v", "emptyDir": {}}], containers=[container(volumeMounts=[
        {"name": "v", "mountPath": "/d", "subPath": "/etc"}])]),
     (INVALID, "spec.containers[0].volumeMounts.subPath", "must be a relative path")),
    ("mountpath-duplicate", pod(volumes=[{"name": "v", "emptyDir": {}}], containers=[container(volumeMounts=[
        {"name": "v", "mountPath": "/d"}, {"name": "v", "mountPath": "/d"}])]),
     (INVALID, "spec.containers[0].volumeMounts[1].mountPath", "must be unique")),
    ("emptydir-negative-size", pod(volumes=[{"name": "v", "emptyDir": {"sizeLimit": "-1Gi"}}]),
     (INVALID, "spec.volumes[0].emptyDir.sizeLimit", "must be greater than or equal to 0")),
    ("active-deadline-zero", pod(activeDeadlineSeconds=0),
     (INVALID, "spec.activeDeadlineSeconds", "must be between 1 and 2147483647, inclusive")),
    ("two-controllers", {**pod(), "metadata": {"name": "p", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1", "controller": True},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "2", "controller": True}]}},
     (INVALID, "metadata.ownerReferences", "Only one reference can have Controller set to true")),
    ("owner-ref-missing-uid", {**pod(), "metadata": {"name": "p", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": ""}]}},
     (INVALID, "metadata.ownerReferences[0].uid", "uid must not be empty")),
    ("configmap-key-in-both", obj("ConfigMap", data={"k": "v"}, binaryData={"k": "eA=="}),
     (INVALID, "data[k]", "duplicate of key present in binaryData")),
    ("secret-dockerconfigjson-not-json", obj("Secret", type="kubernetes.io/dockerconfigjson",
                                             data={".dockerconfigjson": "bm90IGpzb24="}),
     (INVALID, "data[.dockerconfigjson]", "<secret contents redacted>")),
    ("endpointslice-ipv6-in-ipv4", obj("EndpointSlice", "discovery.k8s.io/v1", addressType="IPv4",
                                       endpoints=[{"addresses": ["fd00::1"]}]),
     (INVALID, "endpoints[0].addresses[0]", "must be a valid IPv4 address")),
    ("limitrange-min-over-max", obj("LimitRange", spec={"limits": [{"type": "Container", "min": {"cpu": "2"},
                                                                    "max": {"cpu": "1"}}]}),
     (INVALID, "spec.limits[0].min[cpu]", "min value 2 is greater than max value 1")),
    ("quota-negative", obj("ResourceQuota", spec={"hard": {"pods": "-1"}}),
     (INVALID, "spec.hard[pods]", "must be greater than or equal to 0")),
    ("events-api-missing-fields", obj("Event", "events.k8s.io/v1", eventTime="2024-01-01T00:00:00.000000Z",
                                      type="Normal", reason="X", action="Y", reportingInstance="n1"),
     (REQUIRED, "reportingController", "Required value")),
    ("statefulset-pod-management", obj("StatefulSet", "apps/v1", spec={
        "podManagementPolicy": "Random", "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}),
     (NOT_SUPPORTED, "spec.podManagementPolicy", 'Unsupported value: "Random"')),
    # Validation of what changed between 1.32 and 1.37:
    ("statefulset-maxUnavailable-0", obj("StatefulSet", "apps/v1", spec={
        "updateStrategy": {"rollingUpdate": {"maxUnavailable": "0%"}}, "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}),
     (INVALID, "spec.updateStrategy.rollingUpdate.maxUnavailable", "cannot be 0")),
    ("statefulset-partition-negative", obj("StatefulSet", "apps/v1", spec={
        "updateStrategy": {"rollingUpdate": {"partition": -1}}, "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}),
     (INVALID, "spec.updateStrategy.rollingUpdate.partition", "must be greater than or equal to 0")),
    ("job-podReplacementPolicy-with-failure-policy", obj("Job", "batch/v1", spec={
        "podFailurePolicy": {"rules": []}, "podReplacementPolicy": "TerminatingOrFailed",
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}),
     (NOT_SUPPORTED, "spec.podReplacementPolicy", 'supported values: "Failed"')),
    ("service-trafficDistribution", service(trafficDistribution="Nearest"),
     (NOT_SUPPORTED, "spec.trafficDistribution",
      'Unsupported value: "Nearest": supported values: "PreferClose", "PreferSameZone", "PreferSameNode"')),
    ("deployment-without-spec", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}},
     (REQUIRED, "spec.selector", "Required value")),
    ("node-dup-taint", obj("Node", name="n1", ns=None, spec={"taints": [{"key": "k", "effect": "NoSchedule"},
                                                                        {"key": "k", "effect": "NoSchedule"}]}),
     (DUPLICATE, "spec.taints[1]", "Duplicate value")),
    ("node-bad-pod-cidr", obj("Node", name="n1", ns=None, spec={"podCIDR": "10.42.0.0/33"}),
     (INVALID, "spec.podCIDR", "must be a valid CIDR value")),
    ("label-wrong-type", {**pod(), "metadata": {"name": "p", "labels": {"version": 1}}},
     (TYPE_INVALID, "metadata.labels.version", "must be of type string")),
    ("nested-type-error", pod(containers=[container(ports="80")]),
     (TYPE_INVALID, "spec.containers[0].ports", "must be of type array")),
    ("quantity-type-error", pod(containers=[container(resources={"limits": {"cpu": True}})]),
     (TYPE_INVALID, "spec.containers[0].resources.limits.cpu", "must be of type string")),
    ("spread-skew-0", pod(topologySpreadConstraints=[{"maxSkew": 0, "topologyKey": "zone",
                                                      "whenUnsatisfiable": "DoNotSchedule"}]),
     (INVALID, "spec.topologySpreadConstraints[0].maxSkew", "must be greater than zero")),
    ("spread-no-key", pod(topologySpreadConstraints=[{"maxSkew": 1, "topologyKey": "",
                                                      "whenUnsatisfiable": "DoNotSchedule"}]),
     (REQUIRED, "spec.topologySpreadConstraints[0].topologyKey", "can not be empty")),
    ("spread-when", pod(topologySpreadConstraints=[{"maxSkew": 1, "topologyKey": "zone",
                                                    "whenUnsatisfiable": "Maybe"}]),
     (NOT_SUPPORTED, "spec.topologySpreadConstraints[0].whenUnsatisfiable", "Unsupported value")),
    ("spread-min-domains-anyway", pod(topologySpreadConstraints=[{"maxSkew": 1, "topologyKey": "zone",
                                                                  "whenUnsatisfiable": "ScheduleAnyway",
                                                                  "minDomains": 2}]),
     (INVALID, "spec.topologySpreadConstraints[0].minDomains",
      "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ScheduleAnyway")),
    ("spread-duplicate", pod(topologySpreadConstraints=[
        {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"},
        {"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]),
     (DUPLICATE, "spec.topologySpreadConstraints[1]", "{zone, DoNotSchedule}")),
]


@pytest.mark.parametrize("case_id,o,expected", INVALID_CASES, ids=[c[0] for c in INVALID_CASES])
def test_invalid_objects_are_reported(case_id: str, o: dict[str, Any], expected: tuple[str, str, str]) -> None:
    res = resources.by_kind(o["apiVersion"], o["kind"])
    assert res is not None
    apply_defaults(o, res)
    errs = validate(o, res)
    type_, fld, msg = expected
    matching = [e for e in errs if e.field == fld and e.type == type_ and msg in e.message]
    assert matching, f"expected {type_} {fld}: ...{msg}...; got {[str(e) for e in errs]}"


def test_volume_without_source_before_defaulting() -> None:
    # Defaulting turns a source-less volume into emptyDir; undefaulted it is an error.
    errs = validate(pod(volumes=[{"name": "v"}]), resources.get("pods"))
    assert [str(e) for e in errs] == ["spec.volumes[0]: Required value: must specify a volume type"]


def test_quantity_error_is_kubernetes_wording_in_full() -> None:
    o = pod(containers=[container(resources={"limits": {"memory": "12XB"}})])
    errs = validate(o, resources.get("pods"))
    assert str(errs[0]) == ("spec.containers[0].resources.limits.memory: Invalid value: \"12XB\": "
                            + QUANTITY_RE_MSG)
    assert errs[0] == FieldError(INVALID, "spec.containers[0].resources.limits.memory",
                                 'Invalid value: "12XB": ' + QUANTITY_RE_MSG)


VALID_CASES: list[tuple[str, dict[str, Any]]] = [
    # Optional since 1.33 (serviceName, a slice's endpoints); values new in 1.35 (trafficDistribution).
    ("statefulset-without-serviceName", obj("StatefulSet", "apps/v1", spec={
        "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}})),
    ("endpointslice-without-endpoints", obj("EndpointSlice", "discovery.k8s.io/v1", addressType="IPv4")),
    ("service-prefer-same-node", service(trafficDistribution="PreferSameNode")),
    ("generate-name-only", {**pod(), "metadata": {"generateName": "web-"}}),
    ("label-value-63", {**pod(), "metadata": {"name": "p", "labels": {"app": "a" * 63, "example.com/x": ""}}}),
    ("headless-service-without-ports", service(clusterIP="None", ports=[])),
    ("externalname-service", service(type="ExternalName", externalName="db.example.com", ports=[])),
    ("nodeport-in-range", service(type="NodePort", ports=[{"port": 80, "nodePort": 30080}])),
    ("named-target-port", service(ports=[{"port": 80, "targetPort": "http"}])),
    ("selector-expressions-match", deployment(selector={"matchExpressions": [
        {"key": "app", "operator": "In", "values": ["web", "api"]}]})),
    ("requests-equal-limits", pod(containers=[container(resources={"limits": {"cpu": "1", "memory": "1Gi"},
                                                                   "requests": {"cpu": "1000m", "memory": "1Gi"}})])),
    ("sidecar-init-container-with-probe", pod(initContainers=[container(
        name="side", restartPolicy="Always", readinessProbe={"exec": {"command": ["true"]}})])),
    ("sidecar-with-probes-and-lifecycle", pod(initContainers=[container(
        name="side", restartPolicy="Always", startupProbe={"exec": {"command": ["true"]}},
        livenessProbe={"tcpSocket": {"port": 80}}, lifecycle={"preStop": {"sleep": {"seconds": 1}},
                                                              "postStart": {"exec": {"command": ["true"]}}})])),
    ("job-with-sidecar", obj("Job", "batch/v1", spec={"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "j", "image": "busybox"}],
        "initContainers": [{"name": "s", "image": "busybox", "restartPolicy": "Always"}]}}})),
    ("secret-string-data", obj("Secret", stringData={"password": "s3cr3t"})),
    ("cronjob-macro", obj("CronJob", "batch/v1", spec={"schedule": "@hourly", "jobTemplate": {"spec": {
        "template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "j", "image": "busybox"}]}}}}})),
    ("cronjob-five-fields", obj("CronJob", "batch/v1", spec={"schedule": "*/5 1-3 * jan,feb mon-fri", "jobTemplate": {
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "j", "image": "b"}]}}}}})),
    ("endpointslice-null-endpoints", obj("EndpointSlice", "discovery.k8s.io/v1", addressType="IPv4", endpoints=None)),
    ("endpointslice-no-endpoints", obj("EndpointSlice", "discovery.k8s.io/v1", addressType="IPv4")),
    ("node-status-partial-node-info", obj("Node", name="node-1", ns=None, status={
        "nodeInfo": {"kubeletVersion": "v1.32.0"}, "conditions": [{"type": "Ready", "status": "True"}]})),
    ("pod-status-partial-container-status", {**pod(), "status": {"phase": "Running", "containerStatuses": [
        {"name": "app", "ready": True}]}}),
    ("node-event-in-default", obj("Event", reason="NodeReady", type="Normal",
                                  involvedObject={"kind": "Node", "name": "n1"})),
    ("pod-event", obj("Event", reason="Scheduled", type="Normal", count=1,
                      involvedObject={"kind": "Pod", "name": "p", "namespace": "default"})),
    ("storageclass", obj("StorageClass", "storage.k8s.io/v1", ns=None, provisioner="k8py.io/hostpath")),
    ("namespace", obj("Namespace", name="team-a", ns=None)),
    ("lease", obj("Lease", "coordination.k8s.io/v1", spec={"holderIdentity": "n1", "leaseDurationSeconds": 40})),
    ("node", obj("Node", name="node-1", ns=None, spec={"podCIDR": "10.42.1.0/24"},
                 status={"capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"}})),
]


@pytest.mark.parametrize("case_id,o", VALID_CASES, ids=[c[0] for c in VALID_CASES])
def test_valid_objects_pass(case_id: str, o: dict[str, Any]) -> None:
    res = resources.by_kind(o["apiVersion"], o["kind"])
    assert res is not None
    apply_defaults(o, res)
    assert [str(e) for e in validate(o, res)] == []


# ---------------------------------------------------------------------------------------
# Updates


def _update(old: dict[str, Any], change: Any) -> list[FieldError]:
    res = resources.by_kind(old["apiVersion"], old["kind"])
    assert res is not None
    apply_defaults(old, res)
    new = copy.deepcopy(old)
    change(new)
    return validate(new, res, old)


def _set_image(o: dict[str, Any]) -> None:
    o["spec"]["containers"][0]["image"] = "nginx:1.26"


def _set_command(o: dict[str, Any]) -> None:
    o["spec"]["containers"][0]["command"] = ["sleep", "1"]


def _add_toleration(o: dict[str, Any]) -> None:
    o["spec"]["tolerations"].append({"key": "x", "operator": "Exists", "effect": "NoSchedule"})


def _remove_toleration(o: dict[str, Any]) -> None:
    o["spec"]["tolerations"].pop()


def _set_deadline(o: dict[str, Any]) -> None:
    o["spec"]["activeDeadlineSeconds"] = 60


def _bind(o: dict[str, Any]) -> None:
    o["spec"]["nodeName"] = "node-1"


def _change_selector(o: dict[str, Any]) -> None:
    o["spec"]["selector"] = {"matchLabels": {"app": "web2"}}
    o["spec"]["template"]["metadata"]["labels"] = {"app": "web2"}


def _scale(o: dict[str, Any]) -> None:
    o["spec"]["replicas"] = 5


def _rename(o: dict[str, Any]) -> None:
    o["metadata"]["name"] = "other"


UPDATE_CASES: list[tuple[str, dict[str, Any], Any, tuple[str, str, str] | None]] = [
    ("pod-image", pod(), _set_image, None),
    ("pod-deadline", pod(), _set_deadline, None),
    ("pod-add-toleration", pod(), _add_toleration, None),
    ("pod-bind-node-name", pod(), _bind, None),
    ("pod-command", pod(), _set_command,
     (FORBIDDEN, "spec", "pod updates may not change fields other than `spec.containers[*].image`")),
    ("pod-remove-toleration", pod(), _remove_toleration, (FORBIDDEN, "spec", "pod updates may not change")),
    ("deployment-scale", deployment(), _scale, None),
    ("deployment-selector", deployment(), _change_selector,
     (INVALID, "spec.selector", 'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web2"}, '
                                'MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable')),
    ("rename", pod(), _rename, (INVALID, "metadata.name", "field is immutable")),
    ("service-cluster-ip", {**service(clusterIP="10.43.0.10")},
     lambda o: o["spec"].update(clusterIP="10.43.0.11", clusterIPs=["10.43.0.11"]),
     (INVALID, "spec.clusterIPs[0]", "may not change once set")),
    ("service-ports", service(clusterIP="10.43.0.10"), lambda o: o["spec"]["ports"].append(
        {"port": 443, "name": "https"}) or o["spec"]["ports"][0].update(name="http"), None),
    ("secret-type", obj("Secret", data={"a": "eA=="}), lambda o: o.update(type="kubernetes.io/basic-auth"),
     (INVALID, "type", "field is immutable")),
    ("immutable-configmap", obj("ConfigMap", data={"a": "1"}, immutable=True),
     lambda o: o["data"].update(a="2"), (FORBIDDEN, "data", "field is immutable when `immutable` is set")),
    ("storageclass-params", obj("StorageClass", "storage.k8s.io/v1", ns=None, provisioner="p.io/x",
                                parameters={"a": "1"}),
     lambda o: o["parameters"].update(a="2"), (FORBIDDEN, "parameters", "updates to parameters are forbidden.")),
    ("statefulset-service-name", obj("StatefulSet", "apps/v1", spec={
        "serviceName": "a", "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}),
     lambda o: o["spec"].update(serviceName="b"), (FORBIDDEN, "spec", "updates to statefulset spec")),
    ("statefulset-scale", obj("StatefulSet", "apps/v1", spec={
        "serviceName": "db", "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}),
     lambda o: o["spec"].update(replicas=4), None),
    ("job-template", obj("Job", "batch/v1", spec={"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "j", "image": "busybox"}]}}}),
     lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image="perl"),
     (INVALID, "spec.template", "field is immutable")),
    ("pv-source", obj("PersistentVolume", name="pv1", ns=None, spec={
        "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/a"}}),
     lambda o: o["spec"]["hostPath"].update(path="/b"),
     (FORBIDDEN, "spec.persistentvolumesource", "is immutable after creation")),
    ("pv-claim-ref", obj("PersistentVolume", name="pv1", ns=None, spec={
        "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/a"}}),
     lambda o: o["spec"].update(claimRef={"namespace": "default", "name": "c"}), None),
    ("node-pod-cidr", obj("Node", name="n1", ns=None, spec={"podCIDR": "10.42.1.0/24"}),
     lambda o: o["spec"].update(podCIDR="10.42.2.0/24"), (FORBIDDEN, "spec.podCIDR", "may not change podCIDR")),
    ("endpointslice-address-type", obj("EndpointSlice", "discovery.k8s.io/v1", addressType="IPv4"),
     lambda o: o.update(addressType="IPv6"), (INVALID, "addressType", "field is immutable")),
    ("pod-status-only", pod(), lambda o: o.update(status={"phase": "Running", "podIP": "10.42.0.9"}), None),
    ("pvc-bind", obj("PersistentVolumeClaim", spec={"accessModes": ["ReadWriteOnce"],
                                                    "resources": {"requests": {"storage": "1Gi"}}}),
     lambda o: o["spec"].update(volumeName="pv1"), None),
    ("pvc-access-modes", obj("PersistentVolumeClaim", spec={"accessModes": ["ReadWriteOnce"],
                                                            "resources": {"requests": {"storage": "1Gi"}}}),
     lambda o: o["spec"].update(accessModes=["ReadWriteMany"]), (FORBIDDEN, "spec", "spec is immutable")),
]


@pytest.mark.parametrize("case_id,old,change,expected", UPDATE_CASES, ids=[c[0] for c in UPDATE_CASES])
def test_updates(case_id: str, old: dict[str, Any], change: Any, expected: tuple[str, str, str] | None) -> None:
    errs = _update(old, change)
    if expected is None:
        assert [str(e) for e in errs] == []
    else:
        type_, fld, msg = expected
        assert any(e.type == type_ and e.field == fld and msg in e.message for e in errs), [str(e) for e in errs]


# ---------------------------------------------------------------------------------------
# Unknown fields and robustness


UNKNOWN_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("spec-foo", {**pod(), "spec": {**pod()["spec"], "foo": 1}}, [".spec.foo"]),
    ("container-bar", pod(containers=[container(bar=2)]), [".spec.containers[0].bar"]),
    ("top-level", {**pod(), "extra": True}, [".extra"]),
    ("labels-are-maps", {**pod(), "metadata": {"name": "p", "labels": {"anything": "x"}}}, []),
    ("configmap-data", obj("ConfigMap", data={"k": "v"}), []),
]


@pytest.mark.parametrize("case_id,o,expected", UNKNOWN_CASES, ids=[c[0] for c in UNKNOWN_CASES])
def test_unknown_fields(case_id: str, o: dict[str, Any], expected: list[str]) -> None:
    res = resources.by_kind(o["apiVersion"], o["kind"])
    assert res is not None
    assert unknown_fields(o, res) == expected


@pytest.mark.parametrize("junk", [None, 1, "x", [], {"spec": []}, {"metadata": "x"}, {"spec": {"containers": {}}},
                                  {"spec": {"containers": [1, None]}}, {"metadata": {"labels": {"a": 1}}}])
@pytest.mark.parametrize("plural", ["pods", "deployments", "services", "secrets", "nodes", "persistentvolumeclaims"])
def test_never_raises_on_junk(junk: Any, plural: str) -> None:
    res = resources.get(plural)
    errs = validate(junk, res)  # type: ignore[arg-type]
    assert isinstance(errs, list) and errs
    assert isinstance(unknown_fields(junk, res), list)  # type: ignore[arg-type]


def test_go_label_selector_with_expressions() -> None:
    s = go_label_selector({"matchExpressions": [{"key": "a", "operator": "In", "values": ["x"]}]})
    assert s == ('v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:'
                 '[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"a", Operator:"In", '
                 'Values:[]string{"x"}}}}')


# ---------------------------------------------------------------------------------------
# k8py.api.names (shared name rules)

from k8py.api import names  # noqa: E402


@pytest.mark.parametrize("fn,value,expected", [
    (names.dns1123_label_errors, "my-name", []),
    (names.dns1123_label_errors, "My-name", [names.DNS1123_LABEL_MSG]),
    (names.dns1123_label_errors, "a" * 64, ["must be no more than 63 characters"]),
    (names.dns1123_subdomain_errors, "a.b-c.d", []),
    (names.dns1123_subdomain_errors, "a..b", [names.DNS1123_SUBDOMAIN_MSG]),
    (names.dns1035_label_errors, "1abc", [names.DNS1035_LABEL_MSG]),
    (names.qualified_name_errors, "example.com/My_Name.1", []),
    (names.qualified_name_errors, "/x", ["prefix part must be non-empty"]),
    (names.qualified_name_errors, "x/", ["name part must be non-empty", names.QUALIFIED_NAME_PART_MSG]),
    (names.qualified_name_errors, "a" * 64, ["name part must be no more than 63 characters"]),
    (names.label_value_errors, "", []),
    (names.label_value_errors, "-x", [names.LABEL_VALUE_MSG]),
    (names.config_key_errors, "..data", ["must not start with '..'"]),
    (names.env_var_name_errors, "MY_VAR.x-1", []),
    (names.port_name_errors, "http", []),
    (names.port_name_errors, "80", ["must contain at least one letter (a-z)"]),
    (names.port_name_errors, "-a--b", ["must not contain consecutive hyphens", "must not begin or end with a hyphen"]),
    (names.port_number_errors, 0, ["must be between 1 and 65535, inclusive"]),
])
def test_names(fn: Any, value: Any, expected: list[str]) -> None:
    assert fn(value) == expected


def test_regex_messages_use_kubernetes_example_layout() -> None:
    assert names.DNS1123_LABEL_MSG.endswith(
        "(e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
