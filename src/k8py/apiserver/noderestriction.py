"""The NodeRestriction admission plugin, as kube-apiserver's, for writes by a node
(`system:node:<name>` in `system:nodes`); anyone else passes untouched.

- Node: only its own (`node "a" is not allowed to modify node "b"`); it may not set or
  change labels under `node-restriction.kubernetes.io/`, nor kubernetes.io / k8s.io
  labels other than the kubelet's own, and may not change its taints or ownerReferences
  once the Node exists (on create it may set taints, as a kubelet's --register-with-taints).
- Pod: it creates only mirror pods (annotation `kubernetes.io/config.mirror`) bound to
  itself that reference no service account, secret, configmap or claim; it updates
  (status) only pods bound to itself, never their labels. TokenRequests of a node must
  be bound to a pod on it (`tokenrequest.create_token`). Deleting and evicting pods of
  other nodes is refused earlier, by the Node authorizer's graph.
- Lease: only in kube-node-lease, only the one named after the node.
- The cluster DNS a k8py node publishes in kube-system: only under its names
  (`nodeauthz.dns_object_name`).
Denials are 403 Status worded as Kubernetes words them. Invariant: no store read; the
old object is the one the registry is about to replace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.api.wellknown import ANNOTATION_MIRROR_POD
from k8py.apiserver.errors import forbidden
from k8py.apiserver.nodeauthz import DNS_NAMESPACE, dns_object_name, node_name, pod_refs

if TYPE_CHECKING:
    from k8py.apiserver.registry import WriteOptions

RESTRICTED_LABEL_PREFIX = "node-restriction.kubernetes.io/"
NODE_LEASE_NAMESPACE = "kube-node-lease"


def admit(r: Resource, obj: Obj, old: Obj | None, opts: WriteOptions) -> None:
    """Registry validating-admission hook (create: old is None; update: old is stored)."""
    node = node_name(opts.user, opts.groups)
    if not node:
        return
    if r.group == "" and r.plural == "nodes":
        _node(node, r, obj, old)
    elif r.group == "" and r.plural == "pods":
        _pod(node, r, obj, old)
    elif (md := obj.get("metadata") or {}).get("namespace") == DNS_NAMESPACE and \
            (want := dns_object_name(r.group, r.plural, node)) is not None:
        if md.get("name") != want:
            raise forbidden(r.plural, str(md.get("name") or ""),
                            f'node "{node}" may only publish its cluster DNS as {r.plural} "{want}" in {DNS_NAMESPACE}',
                            r.group)
    elif r.group == "coordination.k8s.io" and r.plural == "leases":
        md = obj.get("metadata") or {}
        if md.get("namespace") != NODE_LEASE_NAMESPACE:
            raise forbidden(r.plural, str(md.get("name") or ""),
                            f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace', r.group)
        if md.get("name") != node:
            raise forbidden(r.plural, str(md.get("name") or ""),
                            "can only access node lease with the same name as the requesting node", r.group)


_KUBELET_LABELS = frozenset({
    "kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch", "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch", "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type",
    "failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
    "topology.kubernetes.io/zone", "topology.kubernetes.io/region"})
_KUBELET_LABEL_DOMAINS = ("kubelet.kubernetes.io", "node.kubernetes.io")


def _in_domain(domain: str, *roots: str) -> bool:
    return any(domain == r or domain.endswith("." + r) for r in roots)


def forbidden_labels(labels: dict[str, str], old: dict[str, str]) -> list[str]:
    """Label keys added, removed or changed that a node may not touch: the
    node-restriction.kubernetes.io domain, and kubernetes.io / k8s.io ones a kubelet
    does not set itself."""
    out = []
    for k in set(labels) | set(old):
        if labels.get(k) == old.get(k):
            continue
        domain = k.split("/", 1)[0] if "/" in k else ""
        if _in_domain(domain, RESTRICTED_LABEL_PREFIX[:-1]) or (
                _in_domain(domain, "kubernetes.io", "k8s.io") and k not in _KUBELET_LABELS
                and not _in_domain(domain, *_KUBELET_LABEL_DOMAINS)):
            out.append(k)
    return sorted(out)


def _node(node: str, r: Resource, obj: Obj, old: Obj | None) -> None:
    md = obj.get("metadata") or {}
    name = str(md.get("name") or "")
    if name != node:
        raise forbidden(r.plural, name, f'node "{node}" is not allowed to modify node "{name}"')
    old_md = (old or {}).get("metadata") or {}
    bad = forbidden_labels(md.get("labels") or {}, old_md.get("labels") or {})
    if old is None:
        if bad:
            raise forbidden(r.plural, name, f'node "{node}" is not allowed to set the following labels: '
                                            + ", ".join(bad))
        return
    if ((obj.get("spec") or {}).get("taints") or []) != ((old.get("spec") or {}).get("taints") or []):
        raise forbidden(r.plural, name, f'node "{node}" is not allowed to modify taints')
    if (md.get("ownerReferences") or []) != (old_md.get("ownerReferences") or []):
        raise forbidden(r.plural, name, f'node "{node}" is not allowed to modify ownerReferences')
    if bad:
        raise forbidden(r.plural, name, "is not allowed to modify labels: " + ", ".join(bad))


def _pod(node: str, r: Resource, obj: Obj, old: Obj | None) -> None:
    md = obj.get("metadata") or {}
    name = str(md.get("name") or md.get("generateName") or "")
    if old is None:
        if ANNOTATION_MIRROR_POD not in (md.get("annotations") or {}):
            raise forbidden(r.plural, name, f'pod does not have "{ANNOTATION_MIRROR_POD}" annotation, '
                                            f'node "{node}" can only create mirror pods')
        if (obj.get("spec") or {}).get("nodeName") != node:
            raise forbidden(r.plural, name, f'node "{node}" can only create pods with spec.nodeName set to itself')
        _mirror_pod_references(node, r, name, obj)
        return
    if (old.get("spec") or {}).get("nodeName") != node:
        raise forbidden(r.plural, name,
                        f'node "{node}" can only update pod status for pods with spec.nodeName set to itself')
    if (md.get("labels") or {}) != ((old.get("metadata") or {}).get("labels") or {}):
        raise forbidden(r.plural, name, f'node "{node}" cannot update labels through pod status')


def _mirror_pod_references(node: str, r: Resource, name: str, pod: Obj) -> None:
    """A mirror pod references no other API object (service account, secret, configmap, claim)."""
    spec = pod.get("spec") or {}
    if spec.get("serviceAccountName"):
        raise forbidden(r.plural, name, f'node "{node}" can not create pods that reference a service account')
    kinds = {kind for kind, _, _ in pod_refs({**pod, "spec": {**spec, "serviceAccountName": "-"}}).refs}
    for kind, what in (("secret", "secrets"), ("configmap", "configmaps"), ("pvc", "persistentvolumeclaims")):
        if kind in kinds:
            raise forbidden(r.plural, name, f'node "{node}" can not create pods that reference {what}')
