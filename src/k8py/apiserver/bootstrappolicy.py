"""The ClusterRoles and ClusterRoleBindings Kubernetes creates in every cluster (its
bootstrap policy), as k8py serves them: created when missing at every start.

User-facing roles: cluster-admin (everything), and admin, edit and view, which are
aggregated (their rules are those of the ClusterRoles labelled
`rbac.authorization.k8s.io/aggregate-to-<role>: "true"`, filled in by the ClusterRole
aggregation controller); edit aggregates into admin and view into edit, as in Kubernetes.
Discovery and identity roles every authenticated user holds (system:basic-user,
system:discovery, system:public-info-viewer), and the components' roles (system:node,
system:kube-scheduler, system:kube-controller-manager, system:kube-dns,
system:node-proxier, system:auth-delegator). Each object carries Kubernetes' labels and
annotation. Invariant: pure data.
"""

from __future__ import annotations

from typing import Any

from k8py.api.types import Obj
from k8py.api.wellknown import GROUP_POLICY_AGENTS

GROUP = "rbac.authorization.k8s.io"
AGGREGATE_TO = "rbac.authorization.k8s.io/aggregate-to-"
READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
ALL = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
DISCOVERY_URLS = ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz",
                  "/version", "/version/"]
PUBLIC_URLS = ["/healthz", "/livez", "/readyz", "/version", "/version/"]


def rule(groups: list[str], res: list[str], verbs: list[str]) -> Obj:
    return {"apiGroups": groups, "resources": res, "verbs": verbs}


def urls(paths: list[str], verbs: list[str]) -> Obj:
    return {"nonResourceURLs": paths, "verbs": verbs}


def _meta(name: str, labels: dict[str, str] | None = None) -> Obj:
    return {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults", **(labels or {})},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}}


def cluster_role(name: str, rules: list[Obj], labels: dict[str, str] | None = None,
                 aggregate_from: str = "") -> Obj:
    out: Obj = {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRole", "metadata": _meta(name, labels), "rules": rules}
    if aggregate_from:
        out["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {AGGREGATE_TO + aggregate_from: "true"}}]}
    return out


def cluster_role_binding(name: str, subjects: list[tuple[str, str]], role: str = "") -> Obj:
    subs: list[dict[str, Any]] = []
    for kind, who in subjects:
        if kind == "ServiceAccount":
            ns, _, sa = who.partition("/")
            subs.append({"kind": kind, "name": sa, "namespace": ns})
        else:
            subs.append({"kind": kind, "name": who, "apiGroup": GROUP})
    return {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRoleBinding", "metadata": _meta(name),
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role or name}, "subjects": subs}


def _aggregated_roles() -> list[Obj]:
    return [
        cluster_role("admin", [], aggregate_from="admin"),
        cluster_role("edit", [], {AGGREGATE_TO + "admin": "true"}, aggregate_from="edit"),
        cluster_role("view", [], {AGGREGATE_TO + "edit": "true"}, aggregate_from="view"),
        cluster_role("system:aggregate-to-admin", [
            rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]),
            rule([GROUP], ["rolebindings", "roles"], ALL),
        ], {AGGREGATE_TO + "admin": "true"}),
        cluster_role("system:aggregate-to-edit", [
            rule([""], ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"],
                 READ),
            rule([""], ["serviceaccounts"], ["impersonate"]),
            rule([""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], WRITE),
            rule([""], ["pods/eviction", "serviceaccounts/token"], ["create"]),
            rule([""], ["configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
                        "replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy"],
                 WRITE),
            rule(["apps"], ["daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets",
                            "replicasets/scale", "statefulsets", "statefulsets/scale"], WRITE),
            rule(["autoscaling"], ["horizontalpodautoscalers"], WRITE),
            rule(["batch"], ["cronjobs", "jobs"], WRITE),
            rule(["policy"], ["poddisruptionbudgets"], WRITE),
            rule(["networking.k8s.io"], ["ingresses", "networkpolicies"], WRITE),
            rule(["coordination.k8s.io"], ["leases"], ALL),
        ], {AGGREGATE_TO + "edit": "true"}),
        cluster_role("system:aggregate-to-view", [
            rule([""], ["configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods",
                        "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services",
                        "services/status"], READ),
            rule([""], ["bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
                        "replicationcontrollers/status", "resourcequotas", "resourcequotas/status"], READ),
            rule([""], ["namespaces"], READ),
            rule(["discovery.k8s.io"], ["endpointslices"], READ),
            rule(["apps"], ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
                            "deployments/scale", "deployments/status", "replicasets", "replicasets/scale",
                            "replicasets/status", "statefulsets", "statefulsets/scale", "statefulsets/status"], READ),
            rule(["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"], READ),
            rule(["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"], READ),
            rule(["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"], READ),
            rule(["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"], READ),
        ], {AGGREGATE_TO + "view": "true"}),
    ]


def _component_roles() -> list[Obj]:
    events = rule(["", "events.k8s.io"], ["events"], ["create", "patch", "update"])
    reviews = [rule(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
               rule(["authorization.k8s.io"], ["subjectaccessreviews"], ["create"])]
    return [
        cluster_role("system:node", [
            *reviews, events,
            rule([""], ["nodes"], ["create", "get", "list", "watch", "patch", "update"]),
            rule([""], ["nodes/status"], ["patch", "update"]),
            rule([""], ["pods"], ["get", "list", "watch", "create", "delete"]),
            rule([""], ["pods/status"], ["patch", "update"]),
            rule([""], ["pods/eviction", "serviceaccounts/token"], ["create"]),
            rule([""], ["services", "endpoints"], READ),
            rule([""], ["configmaps", "secrets", "persistentvolumeclaims", "persistentvolumes"], ["get"]),
            rule([""], ["persistentvolumeclaims/status"], ["get", "patch", "update"]),
            rule(["coordination.k8s.io"], ["leases"], ["create", "delete", "get", "patch", "update"]),
            rule(["discovery.k8s.io"], ["endpointslices"], READ),
            rule(["storage.k8s.io"], ["storageclasses", "csinodes", "csidrivers", "volumeattachments"], READ),
        ]),
        cluster_role("system:kube-scheduler", [
            *reviews, events,
            rule(["coordination.k8s.io"], ["leases"], ["create", "get", "update"]),
            rule([""], ["nodes", "namespaces", "persistentvolumeclaims", "persistentvolumes", "replicationcontrollers",
                        "services"], READ),
            rule([""], ["pods"], ["delete", "get", "list", "watch"]),
            rule([""], ["bindings", "pods/binding"], ["create"]),
            rule([""], ["pods/status"], ["patch", "update"]),
            rule(["apps"], ["replicasets", "statefulsets"], READ),
            rule(["policy"], ["poddisruptionbudgets"], READ),
            rule(["storage.k8s.io"], ["storageclasses", "csinodes", "csidrivers", "csistoragecapacities"], READ),
        ]),
        cluster_role("system:kube-controller-manager", [
            *reviews, events,
            rule(["coordination.k8s.io"], ["leases"], ["create", "get", "update"]),
            rule([""], ["endpoints"], ["create", "get", "update"]),
            rule([""], ["secrets", "serviceaccounts"], ["create", "delete", "get", "update"]),
            rule([""], ["serviceaccounts/token"], ["create"]),
            rule([""], ["configmaps", "namespaces"], ["get"]),
            rule(["*"], ["*"], ["list", "watch"]),
        ]),
        cluster_role("system:volume-scheduler", [
            rule([""], ["persistentvolumes", "persistentvolumeclaims"], ["get", "list", "patch", "update", "watch"]),
            rule(["storage.k8s.io"], ["storageclasses"], READ),
        ]),
        cluster_role("system:kube-dns", [rule([""], ["endpoints", "services"], ["list", "watch"]),
                                         rule(["discovery.k8s.io"], ["endpointslices"], ["list", "watch"])]),
        cluster_role("system:node-proxier", [
            events,
            rule([""], ["endpoints", "services"], ["list", "watch"]),
            rule([""], ["nodes"], READ),
            rule(["discovery.k8s.io"], ["endpointslices"], ["list", "watch"]),
        ]),
        cluster_role("system:auth-delegator", reviews),
        # k8py's NetworkPolicy enforcer on every node (as a CNI's policy agent, e.g. Calico's node):
        # every pod, namespace and policy, read only; bound to the enforcers' own group, never to the
        # nodes (a node may list only its own pods)
        cluster_role("system:k8py:network-policy-agent", [
            rule([""], ["pods", "namespaces"], ["list", "watch"]),
            rule(["networking.k8s.io"], ["networkpolicies"], ["list", "watch"]),
            rule(["discovery.k8s.io"], ["endpointslices"], ["list", "watch"]),  # kube-dns's, as pod peers
        ]),
    ]


def cluster_roles() -> list[Obj]:
    return [
        cluster_role("cluster-admin", [rule(["*"], ["*"], ["*"]), urls(["*"], ["*"])]),
        *_aggregated_roles(),
        cluster_role("system:basic-user", [
            rule(["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], ["create"]),
            rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"]),
        ]),
        cluster_role("system:discovery", [urls(DISCOVERY_URLS, ["get"])]),
        cluster_role("system:public-info-viewer", [urls(PUBLIC_URLS, ["get"])]),
        cluster_role("system:service-account-issuer-discovery",
                     [urls(["/.well-known/openid-configuration", "/.well-known/openid-configuration/",
                            "/openid/v1/jwks", "/openid/v1/jwks/"], ["get"])]),
        *_component_roles(),
        # what metrics-server installs, here with the API server that serves metrics.k8s.io
        cluster_role("system:aggregated-metrics-reader", [rule(["metrics.k8s.io"], ["pods", "nodes"], READ)],
                     {AGGREGATE_TO + "view": "true", AGGREGATE_TO + "edit": "true", AGGREGATE_TO + "admin": "true"}),
    ]


def cluster_role_bindings() -> list[Obj]:
    authed = ("Group", "system:authenticated")
    return [
        cluster_role_binding("cluster-admin", [("Group", "system:masters")]),
        cluster_role_binding("system:basic-user", [authed]),
        cluster_role_binding("system:discovery", [authed]),
        cluster_role_binding("system:public-info-viewer", [authed, ("Group", "system:unauthenticated")]),
        cluster_role_binding("system:service-account-issuer-discovery", [("Group", "system:serviceaccounts")]),
        cluster_role_binding("system:node", []),  # nodes are authorized by the Node authorizer
        cluster_role_binding("system:kube-scheduler", [("User", "system:kube-scheduler")]),
        cluster_role_binding("system:volume-scheduler", [("User", "system:kube-scheduler")]),
        cluster_role_binding("system:kube-controller-manager", [("User", "system:kube-controller-manager")]),
        cluster_role_binding("system:kube-dns", [("ServiceAccount", "kube-system/kube-dns")]),
        cluster_role_binding("system:node-proxier", [("User", "system:kube-proxy")]),
        cluster_role_binding("system:k8py:network-policy-agent", [("Group", GROUP_POLICY_AGENTS)]),
    ]
