"""The Node authorizer (Kubernetes' node_authorizer.go), asked before RBAC.

A request by `system:node:<name>` in group `system:nodes` is decided here:
- secrets, configmaps, persistentvolumeclaims, persistentvolumes (get, or list/watch of one
  name) and serviceaccounts/token (create) only when a pod bound to the node references
  them (a PV through a referenced claim); pods: get, delete, pods/status and pods/eviction
  only of pods bound to the node, list/watch only with the field selector
  `spec.nodeName=<name>` (AuthorizeNodeWithSelectors); everything else by the node rules
  (the `system:node` ClusterRole's, plus `system:node-proxier`'s and `system:kube-dns`'s
  reads, since a k8py node runs the service proxy and DNS with its own identity).
- k8py's additions, because a k8py node also runs the cluster DNS and reclaims local-path
  volumes: it may list persistentvolumes (their specs hold no secret; secrets they name
  stay behind the graph) and create/get/update/patch the DNS it publishes in kube-system
  (Service and Endpoints `kube-dns`, EndpointSlice `kube-dns-<node>`; NodeRestriction
  checks the names of what it creates).
- Anything else has no opinion here: RBAC decides (with the reason given here, e.g.
  `no relationship found between node 'a' and this object`).
The graph is kept from the pods' and claims' watch-cache events (`observe`), never from a
store read per request. NodeRestriction (`noderestriction`) then limits what a node writes.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from k8py.api.types import Obj
from k8py.api.wellknown import GROUP_NODES, NODE_USER_PREFIX
from k8py.apiserver import bootstrappolicy
from k8py.apiserver.rbac import Rule, compile_rules
from k8py.apiserver.requestinfo import Attributes

POD_PREFIX = "/registry/core/pods/"
PVC_PREFIX = "/registry/core/persistentvolumeclaims/"
_GRAPH_KINDS = {"secrets": "secret", "configmaps": "configmap", "persistentvolumeclaims": "pvc",
                "persistentvolumes": "pv"}
_NODE_ROLES = ("system:node", "system:node-proxier", "system:kube-dns")
DNS_NAMESPACE = "kube-system"
DNS_OBJECTS = {("", "services"): "kube-dns", ("", "endpoints"): "kube-dns",
               ("discovery.k8s.io", "endpointslices"): "kube-dns-{node}"}


def dns_object_name(group: str, resource: str, node: str) -> str | None:
    """The name a node's cluster DNS publishes as (group, resource) in kube-system, if any."""
    name = DNS_OBJECTS.get((group, resource))
    return None if name is None else name.format(node=node)


def node_name(user: str, groups: Iterable[str]) -> str:
    """The node a user is (system:node:<name> in system:nodes), else ""."""
    if user.startswith(NODE_USER_PREFIX) and GROUP_NODES in groups:
        return user[len(NODE_USER_PREFIX):]
    return ""


@dataclass(frozen=True)
class PodRefs:
    node: str
    refs: frozenset[tuple[str, str, str]]  # (kind, namespace, name): secret, configmap, pvc, serviceaccount


def pod_refs(pod: Obj) -> PodRefs:
    """What a pod bound to a node lets that node read."""
    md, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    ns = str(md.get("namespace") or "")
    out: set[tuple[str, str, str]] = set()

    def add(kind: str, name: Any) -> None:
        if isinstance(name, str) and name:
            out.add((kind, ns, name))

    add("serviceaccount", spec.get("serviceAccountName") or "default")
    for s in spec.get("imagePullSecrets") or []:
        add("secret", (s or {}).get("name"))
    for v in spec.get("volumes") or []:
        _volume_refs(v if isinstance(v, dict) else {}, str(md.get("name") or ""), add)
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(kind) or []:
            _env_refs(c if isinstance(c, dict) else {}, add)
    return PodRefs(str(spec.get("nodeName") or ""), frozenset(out))


def _volume_refs(v: Obj, pod_name: str, add: Any) -> None:
    add("secret", (v.get("secret") or {}).get("secretName"))
    add("configmap", (v.get("configMap") or {}).get("name"))
    add("pvc", (v.get("persistentVolumeClaim") or {}).get("claimName"))
    if v.get("ephemeral"):
        add("pvc", f"{pod_name}-{v.get('name', '')}")
    for src in (v.get("projected") or {}).get("sources") or []:
        add("secret", ((src or {}).get("secret") or {}).get("name"))
        add("configmap", ((src or {}).get("configMap") or {}).get("name"))
    for key in ("csi", "cephfs", "rbd", "iscsi", "flexVolume", "azureFile", "scaleIO", "storageos"):
        sub = v.get(key) or {}
        for ref in ("nodePublishSecretRef", "secretRef"):
            add("secret", (sub.get(ref) or {}).get("name"))
        add("secret", sub.get("secretName"))


def _env_refs(c: Obj, add: Any) -> None:
    for e in c.get("env") or []:
        vf = (e or {}).get("valueFrom") or {}
        add("secret", (vf.get("secretKeyRef") or {}).get("name"))
        add("configmap", (vf.get("configMapKeyRef") or {}).get("name"))
    for e in c.get("envFrom") or []:
        add("secret", ((e or {}).get("secretRef") or {}).get("name"))
        add("configmap", ((e or {}).get("configMapRef") or {}).get("name"))


class NodeGraph:
    """Which node may read what: pods by node, their references, claims' volumes."""

    def __init__(self) -> None:
        self.pods: dict[str, PodRefs] = {}  # storage key -> refs
        self.edges: Counter[tuple[str, str, str, str]] = Counter()  # (node, kind, ns, name) -> pods
        self.claim_volume: dict[tuple[str, str], str] = {}  # (ns, claim) -> PV name
        self.volume_claims: defaultdict[str, set[tuple[str, str]]] = defaultdict(set)
        self._revs: dict[str, int] = {}

    def observe(self, key: str, revision: int, value: bytes | None) -> None:
        """A PUT (value) or DELETE (None) of a pod or a claim at `revision` (an older one
        than already seen for the key, e.g. the start's list racing the watch, is ignored)."""
        if revision < self._revs.get(key, 0):
            return
        self._revs[key] = revision
        if value is None:
            del self._revs[key]  # (a later re-create has a higher revision anyway)
        try:
            obj = json.loads(value) if value is not None else None
        except ValueError:
            return
        if key.startswith(POD_PREFIX):
            self.set_pod(key, obj if isinstance(obj, dict) else None)
        elif key.startswith(PVC_PREFIX):
            self.set_claim(key, obj if isinstance(obj, dict) else None)

    def replace(self, prefix: str, items: Iterable[tuple[str, int, bytes]]) -> None:
        """Everything under `prefix` is now `items` (key, revision, value): after a watch
        cache restart, which may have missed deletions."""
        seen = set()
        for key, rev, value in items:
            seen.add(key)
            self.observe(key, rev, value)
        for key in [k for k in self._revs if k.startswith(prefix) and k not in seen]:
            self.observe(key, self._revs[key], None)

    def set_pod(self, key: str, pod: Obj | None) -> None:
        old = self.pods.pop(key, None)
        if old is not None and old.node:
            for kind, ns, name in old.refs | {("pod", *_ns_name(key, POD_PREFIX))}:
                self._dec((old.node, kind, ns, name))
        refs = pod_refs(pod) if pod is not None else None
        if refs is None or not refs.node:
            return
        self.pods[key] = refs
        for kind, ns, name in refs.refs | {("pod", *_ns_name(key, POD_PREFIX))}:
            self.edges[(refs.node, kind, ns, name)] += 1

    def _dec(self, k: tuple[str, str, str, str]) -> None:
        self.edges[k] -= 1
        if self.edges[k] <= 0:
            del self.edges[k]

    def set_claim(self, key: str, claim: Obj | None) -> None:
        nsname = _ns_name(key, PVC_PREFIX)
        old = self.claim_volume.pop(nsname, None)
        if old:
            self.volume_claims[old].discard(nsname)
            if not self.volume_claims[old]:
                del self.volume_claims[old]
        pv = str(((claim or {}).get("spec") or {}).get("volumeName") or "")
        if pv:
            self.claim_volume[nsname] = pv
            self.volume_claims[pv].add(nsname)

    def related(self, node: str, kind: str, namespace: str, name: str) -> bool:
        if kind == "pv":
            return any((node, "pvc", ns, c) in self.edges for ns, c in self.volume_claims.get(name, ()))
        return (node, kind, namespace, name) in self.edges


def _ns_name(key: str, prefix: str) -> tuple[str, str]:
    ns, _, name = key.removeprefix(prefix).partition("/")
    return ns, name


def _node_rules() -> tuple[Rule, ...]:
    roles = {r["metadata"]["name"]: r for r in bootstrappolicy.cluster_roles()}
    return tuple(rule for n in _NODE_ROLES for rule in compile_rules(roles[n].get("rules")))


class NodeAuthorizer:
    """`authorize(a)`: (True, reason) to allow, (False, reason) for no opinion (RBAC next)."""

    def __init__(self, graph: NodeGraph | None = None) -> None:
        self.graph = graph or NodeGraph()
        self.rules = _node_rules()

    def authorize(self, a: Attributes) -> tuple[bool, str]:
        node = node_name(a.user, a.groups)
        if not node or not a.resource_request:
            return False, ""
        if a.namespace == DNS_NAMESPACE and not a.subresource and a.verb in ("create", "get", "update", "patch"):
            name = dns_object_name(a.api_group, a.resource, node)
            if name is not None and (a.verb == "create" or a.name == name):
                return True, ""
        if a.api_group == "" and a.resource == "persistentvolumes" and a.verb == "list":
            return True, ""
        if a.api_group == "":
            kind = _GRAPH_KINDS.get(a.resource)
            if kind is not None:
                return self._graph_get(node, kind, a)
            if a.resource == "serviceaccounts" and a.subresource == "token":
                return self._graph_verb(node, "serviceaccount", a, ("create",))
            if a.resource == "pods":
                return self._pod(node, a)
        return any(r.allows(a) for r in self.rules), ""

    def _graph_get(self, node: str, kind: str, a: Attributes) -> tuple[bool, str]:
        if a.subresource == "status" and kind == "pvc":
            return self._graph_verb(node, kind, a, ("get", "update", "patch"))
        if a.subresource or a.verb not in ("get", "list", "watch") or not a.name:
            return False, "can only get individual resources of this type"
        return self._graph_verb(node, kind, a, ("get", "list", "watch"))

    def _graph_verb(self, node: str, kind: str, a: Attributes, verbs: tuple[str, ...]) -> tuple[bool, str]:
        if a.verb not in verbs:
            return False, f"can only {'/'.join(verbs)} this type"
        if self.graph.related(node, kind, a.namespace, a.name):
            return True, ""
        return False, f"no relationship found between node '{node}' and this object"

    def _pod(self, node: str, a: Attributes) -> tuple[bool, str]:
        if not a.subresource and a.verb in ("list", "watch"):
            if _selects_node(a.field_selector, node):
                return True, ""
            return False, "can only list/watch pods with spec.nodeName field selector"
        if (not a.subresource and a.verb in ("get", "delete")) or (a.subresource == "status" and a.verb in (
                "get", "update", "patch")) or (a.subresource == "eviction" and a.verb == "create"):
            return self._graph_verb(node, "pod", a, (a.verb,))
        return any(r.allows(a) for r in self.rules), ""


def _selects_node(selector: str, node: str) -> bool:
    for term in selector.split(","):
        k, sep, v = term.partition("==") if "==" in term else term.partition("=")
        if sep and k.strip() == "spec.nodeName" and not k.endswith("!") and v.strip() == node:
            return True
    return False
