"""The controllers' bootstrap roles: one `system:controller:<name>` ClusterRole per
controller k8py's controller manager runs, with the rights that controller uses (as
Kubernetes' controller roles grant them), each bound by a ClusterRoleBinding of the same
name to the controller's service account `kube-system/<name>` (Kubernetes' subject, used
with --use-service-account-credentials) and to the user `system:kube-controller-manager`:
k8py's controller manager runs as that one user, so it holds the union of these roles
and of `system:kube-controller-manager`, and nothing of system:masters.
Invariant: pure data.
"""

from __future__ import annotations

from k8py.api.types import Obj
from k8py.api.wellknown import USER_KUBE_CONTROLLER_MANAGER
from k8py.apiserver.bootstrappolicy import READ, cluster_role, cluster_role_binding, rule

ALL_WRITE = ["create", "delete", "get", "list", "patch", "update", "watch"]
EVENTS = rule(["", "events.k8s.io"], ["events"], ["create", "patch", "update"])


def _workload_roles() -> dict[str, list[Obj]]:
    pods_managed = rule([""], ["pods"], ["create", "delete", "list", "patch", "watch"])
    revisions = rule(["apps"], ["controllerrevisions"], ALL_WRITE)
    return {
        "replicaset-controller": [
            rule(["apps", "extensions"], ["replicasets"], ["get", "list", "update", "watch"]),
            rule(["apps", "extensions"], ["replicasets/status", "replicasets/finalizers"], ["update"]),
            pods_managed],
        "replication-controller": [
            rule([""], ["replicationcontrollers"], ["get", "list", "update", "watch"]),
            rule([""], ["replicationcontrollers/status", "replicationcontrollers/finalizers"], ["update"]),
            pods_managed],
        "deployment-controller": [
            rule(["apps", "extensions"], ["deployments"], ["get", "list", "update", "watch"]),
            rule(["apps", "extensions"], ["deployments/status", "deployments/finalizers"], ["update"]),
            rule(["apps", "extensions"], ["replicasets"], ALL_WRITE),
            rule([""], ["pods"], ["get", "list", "update", "watch"])],
        "daemon-set-controller": [
            rule(["apps", "extensions"], ["daemonsets"], READ),
            rule(["apps", "extensions"], ["daemonsets/status", "daemonsets/finalizers"], ["update"]),
            rule([""], ["nodes"], ["list", "watch"]), pods_managed,
            rule([""], ["pods/binding"], ["create"]), revisions],
        "statefulset-controller": [
            rule([""], ["pods"], ["create", "delete", "get", "list", "patch", "update", "watch"]),
            rule(["apps"], ["statefulsets"], READ),
            rule(["apps"], ["statefulsets/status", "statefulsets/finalizers"], ["update"]),
            rule([""], ["persistentvolumeclaims"], ["create", "get", "patch", "update"]), revisions],
        "job-controller": [
            rule(["batch"], ["jobs"], ["get", "list", "patch", "update", "watch"]),
            rule(["batch"], ["jobs/status", "jobs/finalizers"], ["update", "patch"]), pods_managed],
        "cronjob-controller": [
            rule(["batch"], ["cronjobs"], ["get", "list", "update", "watch"]),
            rule(["batch"], ["jobs"], ALL_WRITE),
            rule(["batch"], ["cronjobs/status", "cronjobs/finalizers"], ["update"]),
            rule([""], ["pods"], ["delete", "list"])],
        "horizontal-pod-autoscaler": [
            rule(["autoscaling"], ["horizontalpodautoscalers"], READ),
            rule(["autoscaling"], ["horizontalpodautoscalers/status"], ["update"]),
            rule(["*"], ["*/scale"], ["get", "update"]),
            rule([""], ["pods"], ["list"]),
            rule(["metrics.k8s.io"], ["pods"], ["list"])],
        "disruption-controller": [
            rule(["apps", "extensions"], ["deployments", "replicasets", "statefulsets"], READ),
            rule([""], ["replicationcontrollers"], READ),
            rule(["policy"], ["poddisruptionbudgets"], READ),
            rule(["policy"], ["poddisruptionbudgets/status"], ["update"]),
            rule([""], ["pods"], ["get"]),
            rule(["*"], ["*/scale"], ["get"])],
    }


def _cluster_roles() -> dict[str, list[Obj]]:
    return {
        "endpoint-controller": [
            rule([""], ["services", "pods"], READ),
            rule([""], ["endpoints"], ["create", "delete", "get", "list", "update"]),
            rule([""], ["endpoints/restricted"], ["create"])],
        "endpointslice-controller": [
            rule([""], ["services", "pods", "nodes"], READ),
            rule(["discovery.k8s.io"], ["endpointslices"], ["create", "delete", "get", "list", "update"])],
        "service-controller": [  # k8py's service load balancer (servicelb)
            rule([""], ["services"], READ),
            rule([""], ["services/status"], ["patch", "update"]),
            rule([""], ["nodes"], ["list", "watch"])],
        "node-controller": [  # node lifecycle and node IPAM
            rule([""], ["nodes"], ["delete", "get", "list", "patch", "update", "watch"]),
            rule([""], ["nodes/status"], ["patch", "update"]),
            rule([""], ["pods/status"], ["patch", "update"]),
            rule([""], ["pods"], ["delete", "get", "list", "watch"]),
            rule(["coordination.k8s.io"], ["leases"], READ)],
        "pod-garbage-collector": [
            rule([""], ["pods"], ["delete", "list", "watch"]),
            rule([""], ["pods/status"], ["patch"]),
            rule([""], ["nodes"], ["get", "list", "watch"])],
        "generic-garbage-collector": [rule(["*"], ["*"], ["delete", "get", "list", "patch", "update", "watch"])],
        "resourcequota-controller": [
            rule(["*"], ["*"], ["list", "watch"]),
            rule([""], ["resourcequotas/status"], ["update"])],
        "root-ca-cert-publisher": [rule([""], ["configmaps"], ["create", "update"])],
        "persistent-volume-binder": [
            rule([""], ["persistentvolumes"], ["create", "delete", "get", "list", "update", "watch"]),
            rule([""], ["persistentvolumes/status"], ["update"]),
            rule([""], ["persistentvolumeclaims"], ["get", "list", "patch", "update", "watch"]),
            rule([""], ["persistentvolumeclaims/status"], ["update"]),
            rule([""], ["pods"], ["create", "delete", "get", "list", "watch"]),  # the local-path helper pods
            rule(["storage.k8s.io"], ["storageclasses"], READ),
            rule(["storage.k8s.io"], ["storageclasses"], ["create"]),  # k8py's default class (k3s: a manifest)
            rule([""], ["nodes"], ["get", "list", "watch"])],
        "clusterrole-aggregation-controller": [
            rule(["rbac.authorization.k8s.io"], ["clusterroles"], ["escalate", "get", "list", "patch", "update",
                                                                   "watch"])],
    }


def controller_roles() -> list[Obj]:
    roles = {**_workload_roles(), **_cluster_roles()}
    return [cluster_role(f"system:controller:{name}", [*rules, EVENTS]) for name, rules in sorted(roles.items())]


def controller_role_bindings() -> list[Obj]:
    names = sorted({**_workload_roles(), **_cluster_roles()})
    return [cluster_role_binding(f"system:controller:{name}", [("ServiceAccount", f"kube-system/{name}"),
                                                                ("User", USER_KUBE_CONTROLLER_MANAGER)])
            for name in names]
