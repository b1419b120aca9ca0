"""Defaulting of API objects, as Kubernetes' defaulters and default admission plugins do.

`apply_defaults(obj, resource)` fills unset fields in place: the values of
`pkg/apis/*/v1/defaults.go`, plus what create-time admission adds to pods
(ServiceAccount "default", Priority 0, DefaultTolerationSeconds) and what registries
set (Namespace finalizers, Secret stringData folded into data). Invariants: only unset
fields are filled (never overwrites a value the user set, except `stringData` which is
merged into `data` and removed, as Kubernetes does); idempotent; never raises on
structurally odd input (leaves it for validation to report). Allocation (clusterIP,
nodePort) is the API server's, not done here.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from typing import Any

from k8py.api.errors import QuantityError
from k8py.api.quantity import parse_quantity
from k8py.api.resources import Resource
from k8py.api.taints import (
    DEFAULT_TOLERATION_SECONDS,
    TAINT_EFFECT_NO_EXECUTE,
    TAINT_NODE_NOT_READY,
    TAINT_NODE_UNREACHABLE,
)
from k8py.api.wellknown import DEFAULT_SCHEDULER_NAME, LABEL_METADATA_NAME


def apply_defaults(obj: dict[str, Any], resource: Resource) -> None:
    """Fill the unset fields of `obj` (a `resource` object) with Kubernetes' defaults."""
    if not isinstance(obj, dict):
        return
    fn = _VERSIONED_DEFAULTERS.get((resource.group, resource.version, resource.kind)) \
        or _DEFAULTERS.get((resource.group, resource.kind))
    if fn is not None:
        fn(obj)


def _dict(parent: dict[str, Any], key: str) -> dict[str, Any] | None:
    """parent[key] as a dict, created when unset; None when set to a non-dict."""
    v = parent.get(key)
    if v is None:
        v = parent[key] = {}
    return v if isinstance(v, dict) else None


def _set(d: dict[str, Any], key: str, value: Any) -> None:
    if d.get(key) is None:
        d[key] = value


def _set_in(parent: dict[str, Any], key: str, **values: Any) -> None:
    """Set the unset ones of `values` in parent[key] (created when unset; left alone when not a dict)."""
    d = _dict(parent, key)
    if d is not None:
        for k, v in values.items():
            _set(d, k, v)


Defaulter = Callable[[dict[str, Any]], None]


def _spec_defaulter(fn: Defaulter) -> Defaulter:
    """The defaulter of a kind whose defaults all live in its spec: `fn` gets the spec
    (created when unset; an object whose spec is not an object is left alone)."""

    @functools.wraps(fn)
    def defaulter(obj: dict[str, Any]) -> None:
        spec = _dict(obj, "spec")
        if spec is not None:
            fn(spec)

    return defaulter


def _as_dict(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _items(x: Any) -> list[dict[str, Any]]:
    return [i for i in x if isinstance(i, dict)] if isinstance(x, list) else []


# --- pods ------------------------------------------------------------------------------


def image_pull_policy(image: str) -> str:
    """Always for `:latest` or an untagged image, else IfNotPresent (digests count as tags)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "Always"
    return "Always" if last.rsplit(":", 1)[1] == "latest" else "IfNotPresent"


def _handler_defaults(h: dict[str, Any]) -> None:
    hg = h.get("httpGet")
    if isinstance(hg, dict):
        _set(hg, "path", "/")
        _set(hg, "scheme", "HTTP")
    g = h.get("grpc")
    if isinstance(g, dict):
        _set(g, "service", "")


def _probe_defaults(p: dict[str, Any]) -> None:
    _set(p, "timeoutSeconds", 1)
    _set(p, "periodSeconds", 10)
    _set(p, "successThreshold", 1)
    _set(p, "failureThreshold", 3)
    _handler_defaults(p)


def _container_defaults(c: dict[str, Any]) -> None:
    _set(c, "terminationMessagePath", "/dev/termination-log")
    _set(c, "terminationMessagePolicy", "File")
    if isinstance(c.get("image"), str):
        _set(c, "imagePullPolicy", image_pull_policy(c["image"]))
    for p in _items(c.get("ports")):
        _set(p, "protocol", "TCP")
    res = _dict(c, "resources")
    if res is not None:
        limits = res.get("limits")
        if isinstance(limits, dict) and limits:
            requests = _dict(res, "requests")
            if requests is not None:
                for name, q in limits.items():
                    requests.setdefault(name, q)
    for e in _items(c.get("env")):
        vf = e.get("valueFrom")
        if isinstance(vf, dict) and isinstance(vf.get("fieldRef"), dict):
            _set(vf["fieldRef"], "apiVersion", "v1")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if isinstance(c.get(probe), dict):
            _probe_defaults(c[probe])
    lc = c.get("lifecycle")
    if isinstance(lc, dict):
        for hook in ("postStart", "preStop"):
            if isinstance(lc.get(hook), dict):
                _handler_defaults(lc[hook])


_VOLUME_SOURCES_WITH_MODE = ("secret", "configMap", "downwardAPI", "projected")


def _volume_defaults(vol: dict[str, Any]) -> None:
    sources = [k for k, v in vol.items() if k != "name" and v is not None]
    if not sources:
        vol["emptyDir"] = {}
    for k in _VOLUME_SOURCES_WITH_MODE:
        if isinstance(vol.get(k), dict):
            _set(vol[k], "defaultMode", 420)
    for item in _items((vol.get("downwardAPI") or {}).get("items") if isinstance(vol.get("downwardAPI"), dict) else []):
        if isinstance(item.get("fieldRef"), dict):
            _set(item["fieldRef"], "apiVersion", "v1")
    hp = vol.get("hostPath")
    if isinstance(hp, dict):
        _set(hp, "type", "")


def pod_spec_defaults(spec: dict[str, Any]) -> None:
    """Defaults of a PodSpec (pods and pod templates alike)."""
    _set(spec, "dnsPolicy", "ClusterFirst")
    _set(spec, "restartPolicy", "Always")
    _set(spec, "terminationGracePeriodSeconds", 30)
    _set(spec, "securityContext", {})
    _set(spec, "schedulerName", DEFAULT_SCHEDULER_NAME)
    _set(spec, "enableServiceLinks", True)
    if spec.get("serviceAccountName") and not spec.get("serviceAccount"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    elif spec.get("serviceAccount") and not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    for kind in ("initContainers", "containers"):
        for c in _items(spec.get(kind)):
            _container_defaults(c)
            if spec.get("hostNetwork"):
                for p in _items(c.get("ports")):
                    if not p.get("hostPort") and p.get("containerPort"):
                        p["hostPort"] = p["containerPort"]
    for vol in _items(spec.get("volumes")):
        _volume_defaults(vol)


def qos_class(spec: dict[str, Any]) -> str:
    """Kubernetes' QoS class of a (defaulted) pod spec: Guaranteed, Burstable or BestEffort."""
    containers = _items(spec.get("containers")) + _items(spec.get("initContainers"))
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    guaranteed = True
    for c in containers:
        res = _as_dict(c.get("resources"))
        creq = _as_dict(res.get("requests"))
        clim = _as_dict(res.get("limits"))
        for name in ("cpu", "memory"):
            rq, lq = _qty(creq.get(name)), _qty(clim.get(name))
            if rq:
                requests[name] = rq
            if lq:
                limits[name] = lq
        if not all(_qty(clim.get(n)) for n in ("cpu", "memory")):
            guaranteed = False
        for name in ("cpu", "memory"):
            if creq.get(name) is not None and _qty(creq.get(name)) != _qty(clim.get(name)):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _qty(v: Any) -> Any:
    if v is None:
        return None
    try:
        return parse_quantity(v)
    except (QuantityError, TypeError, ValueError):
        return None


def _pod_defaults(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    pod_spec_defaults(spec)
    # Admission, at create time: ServiceAccount, Priority, DefaultTolerationSeconds.
    _set(spec, "serviceAccountName", "default")
    _set(spec, "serviceAccount", spec["serviceAccountName"])
    if not spec.get("priorityClassName"):
        _set(spec, "priority", 0)
    _set(spec, "preemptionPolicy", "PreemptLowerPriority")
    tols = spec.get("tolerations")
    if tols is None:
        tols = []
    if isinstance(tols, list):
        for key in (TAINT_NODE_NOT_READY, TAINT_NODE_UNREACHABLE):
            if not any(isinstance(t, dict) and t.get("effect") in (TAINT_EFFECT_NO_EXECUTE, None, "")
                       and (t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists"))
                       for t in tols):
                tols.append({"key": key, "operator": "Exists", "effect": TAINT_EFFECT_NO_EXECUTE,
                             "tolerationSeconds": DEFAULT_TOLERATION_SECONDS})
        if tols:
            spec["tolerations"] = tols
    status = _dict(obj, "status")
    if status is not None:
        _set(status, "phase", "Pending")
        _set(status, "qosClass", qos_class(spec))


def _template_defaults(holder: dict[str, Any]) -> None:
    tmpl = holder.get("template")
    if not isinstance(tmpl, dict):
        return
    spec = _dict(tmpl, "spec")
    if spec is not None:
        pod_spec_defaults(spec)
    meta = tmpl.get("metadata")
    if meta is None:
        tmpl["metadata"] = {}
    if isinstance(tmpl.get("metadata"), dict):
        _set(tmpl["metadata"], "creationTimestamp", None)


# --- workloads -------------------------------------------------------------------------


def _rolling_update(spec: dict[str, Any], field: str, **rolling: Any) -> None:
    """A workload's update strategy defaults to RollingUpdate, whose parameters get `rolling`."""
    strategy = _dict(spec, field)
    if strategy is None:
        return
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = _dict(strategy, "rollingUpdate")
        if ru is not None:
            for k, v in rolling.items():
                _set(ru, k, v)


@_spec_defaulter
def _deployment_defaults(spec: dict[str, Any]) -> None:
    _set(spec, "replicas", 1)
    _rolling_update(spec, "strategy", maxUnavailable="25%", maxSurge="25%")
    _set(spec, "revisionHistoryLimit", 10)
    _set(spec, "progressDeadlineSeconds", 600)
    _template_defaults(spec)


@_spec_defaulter
def _replicaset_defaults(spec: dict[str, Any]) -> None:
    _set(spec, "replicas", 1)
    _template_defaults(spec)


def _rc_defaults(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    _set(spec, "replicas", 1)
    tmpl = spec.get("template")
    labels = tmpl.get("metadata", {}).get("labels") if isinstance(tmpl, dict) and \
        isinstance(tmpl.get("metadata"), dict) else None
    if isinstance(labels, dict) and labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = _dict(obj, "metadata")
        if meta is not None and not meta.get("labels"):
            meta["labels"] = dict(labels)
    _template_defaults(spec)


@_spec_defaulter
def _daemonset_defaults(spec: dict[str, Any]) -> None:
    _rolling_update(spec, "updateStrategy", maxUnavailable=1, maxSurge=0)
    _set(spec, "revisionHistoryLimit", 10)
    _template_defaults(spec)


@_spec_defaulter
def _statefulset_defaults(spec: dict[str, Any]) -> None:
    _set(spec, "replicas", 1)
    _set(spec, "podManagementPolicy", "OrderedReady")
    # maxUnavailable: 1 since 1.35 (MaxUnavailableStatefulSet, beta and on by default).
    _rolling_update(spec, "updateStrategy", partition=0, maxUnavailable=1)
    _set(spec, "revisionHistoryLimit", 10)
    pol = _dict(spec, "persistentVolumeClaimRetentionPolicy")
    if pol is not None:
        _set(pol, "whenDeleted", "Retain")
        _set(pol, "whenScaled", "Retain")
    for pvc in _items(spec.get("volumeClaimTemplates")):
        pspec = _dict(pvc, "spec")
        if pspec is not None:
            _set(pspec, "volumeMode", "Filesystem")
        _set(pvc, "status", {"phase": "Pending"})
    _template_defaults(spec)


JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


def _job_defaults(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    _set(spec, "parallelism", 1)
    # With a per-index limit (GA in 1.33) the job-wide backoffLimit is unlimited by default.
    _set(spec, "backoffLimit", 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6)
    _set(spec, "completionMode", "NonIndexed")
    _set(spec, "suspend", False)
    # GA in 1.34: Failed when a podFailurePolicy is set (the only value it allows).
    _set(spec, "podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") is not None else "TerminatingOrFailed")
    _template_defaults(spec)
    # The Job registry generates the selector from the uid (unless manualSelector).
    meta = _as_dict(obj.get("metadata"))
    uid, name = meta.get("uid"), meta.get("name")
    tmpl = spec.get("template")
    if uid and name and not spec.get("manualSelector") and spec.get("selector") is None and isinstance(tmpl, dict):
        spec["selector"] = {"matchLabels": {JOB_UID_LABEL: uid}}
        tmeta = _dict(tmpl, "metadata")
        if tmeta is not None:
            labels = _dict(tmeta, "labels")
            if labels is not None:
                labels.setdefault(JOB_UID_LABEL, uid)
                labels.setdefault(JOB_NAME_LABEL, name)
                labels.setdefault("controller-uid", uid)
                labels.setdefault("job-name", name)


@_spec_defaulter
def _cronjob_defaults(spec: dict[str, Any]) -> None:
    _set(spec, "concurrencyPolicy", "Allow")
    _set(spec, "suspend", False)
    _set(spec, "successfulJobsHistoryLimit", 3)
    _set(spec, "failedJobsHistoryLimit", 1)
    jt = spec.get("jobTemplate")
    if isinstance(jt, dict) and isinstance(jt.get("spec"), dict):
        _template_defaults(jt["spec"])


@_spec_defaulter
def _hpa_v1_defaults(spec: dict[str, Any]) -> None:
    """autoscaling/v1: only minReplicas (no target means the controller's 80% CPU)."""
    _set(spec, "minReplicas", 1)


@_spec_defaulter
def _hpa_defaults(spec: dict[str, Any]) -> None:
    _set(spec, "minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):  # only a given behavior is completed
        for direction, window, policies in (
                ("scaleUp", 0, [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                {"type": "Percent", "value": 100, "periodSeconds": 15}]),
                ("scaleDown", 300, [{"type": "Percent", "value": 100, "periodSeconds": 15}])):
            rules = _dict(behavior, direction)
            if rules is not None:
                _set(rules, "stabilizationWindowSeconds", window)
                _set(rules, "selectPolicy", "Max")
                _set(rules, "policies", policies)


# --- services and endpoints ------------------------------------------------------------


def _service_defaults(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    _set(spec, "type", "ClusterIP")
    stype = spec["type"]
    _set(spec, "sessionAffinity", "None")
    if spec.get("sessionAffinity") == "ClientIP":
        sac = _dict(spec, "sessionAffinityConfig")
        if sac is not None:
            cip = _dict(sac, "clientIP")
            if cip is not None:
                _set(cip, "timeoutSeconds", 10800)
    for p in _items(spec.get("ports")):
        _set(p, "protocol", "TCP")
        if p.get("targetPort") in (None, 0, "") and p.get("port") is not None:
            p["targetPort"] = p["port"]
    if stype != "ExternalName":
        _set(spec, "ipFamilies", ["IPv4"])
        _set(spec, "ipFamilyPolicy", "SingleStack")
        _set(spec, "internalTrafficPolicy", "Cluster")
    if stype in ("NodePort", "LoadBalancer"):
        _set(spec, "externalTrafficPolicy", "Cluster")
    if stype == "LoadBalancer":
        _set(spec, "allocateLoadBalancerNodePorts", True)
    status = _dict(obj, "status")
    if status is not None:
        _set(status, "loadBalancer", {})


def _endpoints_defaults(obj: dict[str, Any]) -> None:
    for sub in _items(obj.get("subsets")):
        for p in _items(sub.get("ports")):
            _set(p, "protocol", "TCP")


def _endpointslice_defaults(obj: dict[str, Any]) -> None:
    for p in _items(obj.get("ports")):
        _set(p, "protocol", "TCP")
        _set(p, "name", "")


# --- config, storage, cluster ----------------------------------------------------------


def _secret_defaults(obj: dict[str, Any]) -> None:
    _set(obj, "type", "Opaque")
    sd = obj.get("stringData")
    if isinstance(sd, dict):
        data = _dict(obj, "data")
        if data is not None:
            for k, v in sd.items():
                if isinstance(v, str):
                    data[k] = base64.b64encode(v.encode()).decode()
        del obj["stringData"]
    elif sd is None and "stringData" in obj:
        del obj["stringData"]


def _pvc_defaults(obj: dict[str, Any]) -> None:
    _set_in(obj, "spec", volumeMode="Filesystem")
    _set_in(obj, "status", phase="Pending")


def _pv_defaults(obj: dict[str, Any]) -> None:
    _set_in(obj, "spec", persistentVolumeReclaimPolicy="Retain", volumeMode="Filesystem")
    _set_in(obj, "status", phase="Pending")


def _namespace_defaults(obj: dict[str, Any]) -> None:
    _set_in(obj, "spec", finalizers=["kubernetes"])
    _set_in(obj, "status", phase="Active")
    meta = _dict(obj, "metadata")
    if meta is not None and isinstance(meta.get("name"), str):
        labels = _dict(meta, "labels")
        if labels is not None:
            labels.setdefault(LABEL_METADATA_NAME, meta["name"])


def _node_defaults(obj: dict[str, Any]) -> None:
    status = _dict(obj, "status")
    if status is None:
        return
    cap = status.get("capacity")
    if isinstance(cap, dict) and cap and not status.get("allocatable"):
        status["allocatable"] = dict(cap)


def _storageclass_defaults(obj: dict[str, Any]) -> None:
    _set(obj, "reclaimPolicy", "Delete")
    _set(obj, "volumeBindingMode", "Immediate")


def _binding_defaults(obj: dict[str, Any]) -> None:
    """A User or Group subject's apiGroup is rbac.authorization.k8s.io (SetDefaults_Subject)."""
    for s in _items(obj.get("subjects")):
        if s.get("kind") in ("User", "Group") and not s.get("apiGroup"):
            s["apiGroup"] = "rbac.authorization.k8s.io"


def _priorityclass_defaults(obj: dict[str, Any]) -> None:
    _set(obj, "preemptionPolicy", "PreemptLowerPriority")


def _limitrange_defaults(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    for lim in _items(spec.get("limits")):
        if lim.get("type") != "Container":
            continue
        mx = lim.get("max") if isinstance(lim.get("max"), dict) else {}
        if mx:
            default = _dict(lim, "default")
            if default is not None:
                for k, v in mx.items():
                    default.setdefault(k, v)
        default = lim.get("default") if isinstance(lim.get("default"), dict) else {}
        if default:
            dr = _dict(lim, "defaultRequest")
            if dr is not None:
                for k, v in default.items():
                    dr.setdefault(k, v)


def _webhooks_defaults(obj: dict[str, Any]) -> None:
    """admissionregistration/v1 SetDefaults_{Validating,Mutating}Webhook, Rule, ServiceReference."""
    mutating = obj.get("kind") == "MutatingWebhookConfiguration"
    for wh in _items(obj.get("webhooks")):
        _set(wh, "failurePolicy", "Fail")
        _set(wh, "matchPolicy", "Equivalent")
        _set(wh, "namespaceSelector", {})
        _set(wh, "objectSelector", {})
        _set(wh, "timeoutSeconds", 10)
        if mutating:
            _set(wh, "reinvocationPolicy", "Never")
        for rule in _items(wh.get("rules")):
            _set(rule, "scope", "*")
        svc = _as_dict(_as_dict(wh.get("clientConfig")).get("service"))
        if svc:
            _set(svc, "port", 443)


def _match_resources_defaults(m: dict[str, Any]) -> None:
    _set(m, "matchPolicy", "Equivalent")
    _set(m, "namespaceSelector", {})
    _set(m, "objectSelector", {})
    for rule in _items(m.get("resourceRules")) + _items(m.get("excludeResourceRules")):
        _set(rule, "scope", "*")


def _admission_policy_defaults(obj: dict[str, Any]) -> None:
    spec = _as_dict(obj.get("spec"))
    _set(spec, "failurePolicy", "Fail")
    if isinstance(spec.get("matchConstraints"), dict):
        _match_resources_defaults(spec["matchConstraints"])


def _admission_binding_defaults(obj: dict[str, Any]) -> None:
    spec = _as_dict(obj.get("spec"))
    if isinstance(spec.get("matchResources"), dict):
        _match_resources_defaults(spec["matchResources"])


def _crd_defaults(obj: dict[str, Any]) -> None:
    """spec.conversion: strategy None; a webhook Service's port 443 (apiextensions v1 defaults)."""
    spec = _dict(obj, "spec")
    if spec is None:
        return
    conv = _dict(spec, "conversion")
    if conv is None:
        return
    _set(conv, "strategy", "None")
    svc = _as_dict(_as_dict(_as_dict(conv.get("webhook")).get("clientConfig")).get("service"))
    if svc:
        _set(svc, "port", 443)


def _apiservice_defaults(obj: dict[str, Any]) -> None:
    """spec.service.port: 443 (apiregistration v1)."""
    svc = _as_dict(_as_dict(obj.get("spec")).get("service"))
    if svc:
        _set(svc, "port", 443)


def _networkpolicy_defaults(obj: dict[str, Any]) -> None:
    """networking/v1 SetDefaults_NetworkPolicy and _NetworkPolicyPort: policyTypes is
    [Ingress] (+ Egress when egress rules are given) when unset; a port's protocol is TCP."""
    spec = _as_dict(obj.get("spec"))
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
    for rule in _items(spec.get("ingress")) + _items(spec.get("egress")):
        for port in _items(rule.get("ports")):
            _set(port, "protocol", "TCP")


_DEFAULTERS: dict[tuple[str, str], Defaulter] = {
    ("", "Pod"): _pod_defaults,
    ("", "Service"): _service_defaults,
    ("", "Endpoints"): _endpoints_defaults,
    ("", "Secret"): _secret_defaults,
    ("", "Namespace"): _namespace_defaults,
    ("", "Node"): _node_defaults,
    ("", "PersistentVolume"): _pv_defaults,
    ("", "PersistentVolumeClaim"): _pvc_defaults,
    ("", "ReplicationController"): _rc_defaults,
    ("", "LimitRange"): _limitrange_defaults,
    ("apps", "Deployment"): _deployment_defaults,
    ("apps", "ReplicaSet"): _replicaset_defaults,
    ("apps", "DaemonSet"): _daemonset_defaults,
    ("apps", "StatefulSet"): _statefulset_defaults,
    ("batch", "Job"): _job_defaults,
    ("batch", "CronJob"): _cronjob_defaults,
    ("autoscaling", "HorizontalPodAutoscaler"): _hpa_defaults,
    ("discovery.k8s.io", "EndpointSlice"): _endpointslice_defaults,
    ("storage.k8s.io", "StorageClass"): _storageclass_defaults,
    ("rbac.authorization.k8s.io", "RoleBinding"): _binding_defaults,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): _webhooks_defaults,
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): _webhooks_defaults,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): _admission_policy_defaults,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): _admission_binding_defaults,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _binding_defaults,
    ("scheduling.k8s.io", "PriorityClass"): _priorityclass_defaults,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd_defaults,
    ("apiregistration.k8s.io", "APIService"): _apiservice_defaults,
    ("networking.k8s.io", "NetworkPolicy"): _networkpolicy_defaults,
}

# Defaulters of versions other than the preferred one, by (group, version, kind).
_VERSIONED_DEFAULTERS: dict[tuple[str, str, str], Defaulter] = {
    ("autoscaling", "v1", "HorizontalPodAutoscaler"): _hpa_v1_defaults,
}
