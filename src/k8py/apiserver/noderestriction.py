"""The NodeRestriction admission plugin, as kube-apiserver's, for writes by a node
(`system:node:<name>` in `system:nodes`); anyone else passes untouched.

- Node: only its own (`node "a" is not allowed to modify node "b"`); it may not set or
  change labels under `node-restriction.kubernetes.io/` and may not change its taints
  once the Node exists (on create it may set them, as a kubelet's --register-with-taints).
- Pod: it creates only mirror pods (annotation `kubernetes.io/config.mirror`) bound to
  itself; it updates (status) only pods bound to itself. Deleting and evicting pods of
  other nodes is refused earlier, by the Node authorizer's graph.
- Lease in kube-node-lease: only the one named after the node.
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
from k8py.apiserver.nodeauthz import DNS_NAMESPACE, dns_object_name, node_name

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
        if md.get("namespace") == NODE_LEASE_NAMESPACE and md.get("name") != node:
            raise forbidden(r.plural, str(md.get("name") or ""),
                            "can only access node lease with the same name as the requesting node", r.group)


def _restricted(labels: dict[str, str]) -> set[str]:
    return {k for k in labels if k.split("/", 1)[0] + "/" == RESTRICTED_LABEL_PREFIX
            or k.split("/", 1)[0].endswith("." + RESTRICTED_LABEL_PREFIX[:-1])}


def _node(node: str, r: Resource, obj: Obj, old: Obj | None) -> None:
    name = str((obj.get("metadata") or {}).get("name") or "")
    if name != node:
        raise forbidden(r.plural, name, f'node "{node}" is not allowed to modify node "{name}"')
    labels = (obj.get("metadata") or {}).get("labels") or {}
    old_labels = ((old or {}).get("metadata") or {}).get("labels") or {}
    changed = {k for k in _restricted(labels) | _restricted(old_labels) if labels.get(k) != old_labels.get(k)}
    if changed:
        what = "set the following labels" if old is None else "modify labels"
        raise forbidden(r.plural, name, f'node "{node}" is not allowed to {what}: {", ".join(sorted(changed))}')
    if old is not None and ((obj.get("spec") or {}).get("taints") or []) != \
            ((old.get("spec") or {}).get("taints") or []):
        raise forbidden(r.plural, name, f'node "{node}" is not allowed to modify taints')


def _pod(node: str, r: Resource, obj: Obj, old: Obj | None) -> None:
    md = obj.get("metadata") or {}
    name = str(md.get("name") or md.get("generateName") or "")
    if old is None:
        if ANNOTATION_MIRROR_POD not in (md.get("annotations") or {}):
            raise forbidden(r.plural, name, f'pod does not have "{ANNOTATION_MIRROR_POD}" annotation, '
                                            f'node "{node}" can only create mirror pods')
        if (obj.get("spec") or {}).get("nodeName") != node:
            raise forbidden(r.plural, name, f'node "{node}" can only create pods with spec.nodeName set to itself')
        return
    if (old.get("spec") or {}).get("nodeName") != node:
        raise forbidden(r.plural, name,
                        f'node "{node}" can only update pod status for pods with spec.nodeName set to itself')
