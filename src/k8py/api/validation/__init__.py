"""Validation of API objects, as Kubernetes' apiserver validates them.

`validate(obj, resource, old)` returns a list of `FieldError`s (empty = valid) in two
layers: structural (`structural`: schema-driven JSON types, required fields, quantity
syntax, base64 of `format: byte`) and, when the structure is sound, semantic per kind
(`meta` for ObjectMeta and the shared checks, then one module per API group, as
Kubernetes splits pkg/apis/*/validation: `pod`, `service` and `core` for core/v1,
`apps`, `batch`, `autoscaling`, `coordination`, `discovery`, `events`, `storage`, `networking`,
`rbac`, `policy` for policy, scheduling.k8s.io and node.k8s.io, `admissionregistration`), plus
update-time immutability when `old` is given. `unknown_fields(obj, resource)` lists
fields the schema does not know, for `fieldValidation=Strict|Warn`. Invariants: never
raises on any JSON-decoded input; messages use Kubernetes' wording
(`field.Error.ErrorBody()`, see `field`), paths its notation (`spec.containers[0].image`,
`metadata.labels`, `data[key]`). Semantic checks assume the object was defaulted first
(the API server calls `apply_defaults` before).
"""

from __future__ import annotations

from typing import Any

from k8py.api.customresource import CustomResource
from k8py.api.resources import Resource
from k8py.api.validation import (
    admissionregistration,
    apiextensions,
    apiregistration,
    apps,
    autoscaling,
    batch,
    celrules,
    coordination,
    core,
    discovery,
    events,
    networking,
    networkpolicy,
    openapischema,
    pod,
    policy,
    rbac,
    service,
    storage,
)
from k8py.api.validation.field import (
    REQUIRED,
    TYPE_INVALID,
    FieldError,
    Raw,
    invalid,
    type_invalid,
)
from k8py.api.validation.meta import (
    ErrorList,
    KindValidator,
    dict_of,
    validate_object_meta,
    validate_object_meta_update,
)
from k8py.api.validation.structural import json_type, structural_errors, unknown_fields

__all__ = ["validate", "unknown_fields"]


def validate(obj: dict[str, Any], resource: Resource, old: dict[str, Any] | None = None) -> list[FieldError]:
    """All field errors of `obj` (a create when `old` is None, else an update of `old`)."""
    if not isinstance(obj, dict):
        return [type_invalid("<root>", json_type(obj), "object")]
    if isinstance(resource, CustomResource):  # its CRD's openAPIV3Schema, not Kubernetes' own
        errs = openapischema.validate(obj, resource.schema)
        if not errs:  # x-kubernetes-validations (CEL) once the structure is sound
            errs = celrules.validate(obj, old, resource.schema)
    else:
        errs = structural_errors(obj, resource)
    if any(e.type == TYPE_INVALID for e in errs):
        return errs  # Kubernetes fails to decode such a body; semantic checks would be noise
    v = ErrorList(errs)
    try:
        _semantic(v, obj, resource, old)
    except (TypeError, AttributeError, KeyError, ValueError) as exc:  # defensive: never raise
        v.add(invalid("<root>", Raw("object"), f"cannot validate: {exc}"))
    return _dedupe(v.errs)


def _dedupe(errs: list[FieldError]) -> list[FieldError]:
    """Drop repeats; of several Required errors for one field keep the most detailed."""
    seen: dict[tuple[str, str], int] = {}
    out: list[FieldError] = []
    for e in errs:
        key = (e.field, e.type) if e.type == REQUIRED else (e.field, e.message)
        if key not in seen:
            seen[key] = len(out)
            out.append(e)
        elif len(e.message) > len(out[seen[key]].message):
            out[seen[key]] = e
    return out


def _semantic(v: ErrorList, obj: dict[str, Any], resource: Resource, old: dict[str, Any] | None) -> None:
    meta = dict_of(obj.get("metadata"))
    validate_object_meta(v, meta, resource, "metadata")
    if old is not None:
        validate_object_meta_update(v, meta, dict_of(old.get("metadata")))
    fn = _KIND_VALIDATORS.get((resource.group, resource.kind))
    if fn is not None:
        fn(v, obj, old)


_KIND_VALIDATORS: dict[tuple[str, str], KindValidator] = {
    ("", "Pod"): pod.validate_pod,
    ("", "Service"): service.validate_service,
    ("", "Endpoints"): service.validate_endpoints,
    ("", "ConfigMap"): core.validate_configmap,
    ("", "Secret"): core.validate_secret,
    ("", "ServiceAccount"): core.validate_service_account,
    ("", "Namespace"): core.validate_namespace,
    ("", "Node"): core.validate_node,
    ("", "Event"): core.validate_core_event,
    ("", "PersistentVolume"): core.validate_pv,
    ("", "PersistentVolumeClaim"): core.validate_pvc,
    ("", "ReplicationController"): core.validate_rc,
    ("", "ResourceQuota"): core.validate_resource_quota,
    ("", "LimitRange"): core.validate_limit_range,
    ("apps", "Deployment"): apps.validate_deployment,
    ("apps", "ReplicaSet"): apps.validate_replicaset,
    ("apps", "DaemonSet"): apps.validate_daemonset,
    ("apps", "StatefulSet"): apps.validate_statefulset,
    ("batch", "Job"): batch.validate_job,
    ("batch", "CronJob"): batch.validate_cronjob,
    ("autoscaling", "HorizontalPodAutoscaler"): autoscaling.validate_hpa,
    ("coordination.k8s.io", "Lease"): coordination.validate_lease,
    ("discovery.k8s.io", "EndpointSlice"): discovery.validate_endpointslice,
    ("events.k8s.io", "Event"): events.validate_events_event,
    ("storage.k8s.io", "StorageClass"): storage.validate_storageclass,
    ("rbac.authorization.k8s.io", "Role"): rbac.validate_role,
    ("rbac.authorization.k8s.io", "ClusterRole"): rbac.validate_cluster_role,
    ("rbac.authorization.k8s.io", "RoleBinding"): rbac.validate_role_binding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): rbac.validate_cluster_role_binding,
    ("policy", "PodDisruptionBudget"): policy.validate_pdb,
    ("scheduling.k8s.io", "PriorityClass"): policy.validate_priorityclass,
    ("node.k8s.io", "RuntimeClass"): policy.validate_runtimeclass,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): apiextensions.validate_crd,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): admissionregistration.validate_mutating,
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): admissionregistration.validate_validating,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): admissionregistration.validate_policy,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): admissionregistration.validate_policy_binding,
    ("networking.k8s.io", "Ingress"): networking.validate_ingress,
    ("networking.k8s.io", "IngressClass"): networking.validate_ingressclass,
    ("apiregistration.k8s.io", "APIService"): apiregistration.validate_apiservice,
    ("networking.k8s.io", "NetworkPolicy"): networkpolicy.validate_networkpolicy,
}
