"""The table of API resources k8py serves.

Pure data shared by the API server (routing, discovery, storage keys) and the
client (URL building). One `Resource` per (group, version, plural). Invariant:
in `RESOURCES`, `(group, plural)` is unique (the preferred and storage version),
and `kind` is unique within a group. `OTHER_VERSIONS` are further versions of some
of them, served over the same storage (the API server converts); `SERVED` is both.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # e.g. ("status", "scale")
    categories: tuple[str, ...] = ()
    singular: str = ""
    verbs: tuple[str, ...] = (
        "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch",
    )
    list_kind: str = field(default="")

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def name_singular(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def list_kind_name(self) -> str:
        return self.list_kind or f"{self.kind}List"

    @property
    def prefix(self) -> str:
        """URL prefix of the group version: /api/v1 or /apis/apps/v1."""
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        """URL of a collection, an object, or an object's subresource."""
        p = self.prefix
        if self.namespaced and namespace:
            p += f"/namespaces/{namespace}"
        p += f"/{self.plural}"
        if name:
            p += f"/{name}"
            if subresource:
                p += f"/{subresource}"
        return p

    def storage_prefix(self, namespace: str | None = None) -> str:
        """Store key prefix: /registry/<group>/<plural>/[<ns>/]  (group "core" for "")."""
        g = self.group or "core"
        p = f"/registry/{g}/{self.plural}/"
        if self.namespaced and namespace:
            p += f"{namespace}/"
        return p

    def storage_key(self, namespace: str | None, name: str) -> str:
        return self.storage_prefix(namespace if self.namespaced else None) + name


_ALL = "all"
_CREATE_ONLY = ("create",)  # reviews: answered, never stored
_READ_ONLY = ("get", "list")  # metrics.k8s.io: computed, never stored


def stored(r: Resource) -> bool:
    """Whether objects of `r` live in the store (reviews do not: they are only created;
    nor metrics.k8s.io's: they are computed)."""
    return "get" in r.verbs and r.group != "metrics.k8s.io"

RESOURCES: tuple[Resource, ...] = (
    # core/v1
    Resource("", "v1", "Namespace", "namespaces", False, ("ns",), ("status", "finalize")),
    Resource("", "v1", "Pod", "pods", True, ("po",),
             ("status", "binding", "log", "eviction", "exec", "attach", "portforward", "ephemeralcontainers",
              "resize"),
             (_ALL,)),
    Resource("", "v1", "Service", "services", True, ("svc",), ("status", "proxy"), (_ALL,)),
    Resource("", "v1", "Endpoints", "endpoints", True, ("ep",), singular="endpoints"),
    Resource("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    Resource("", "v1", "Secret", "secrets", True),
    Resource("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",), ("token",)),
    Resource("", "v1", "Node", "nodes", False, ("no",), ("status", "proxy")),
    Resource("", "v1", "Event", "events", True, ("ev",)),
    Resource("", "v1", "PersistentVolume", "persistentvolumes", False, ("pv",), ("status",)),
    Resource("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",), ("status",)),
    Resource("", "v1", "ReplicationController", "replicationcontrollers", True, ("rc",),
             ("status", "scale"), (_ALL,)),
    Resource("", "v1", "ResourceQuota", "resourcequotas", True, ("quota",), ("status",)),
    Resource("", "v1", "LimitRange", "limitranges", True, ("limits",)),
    # apps/v1
    Resource("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("status", "scale"), (_ALL,)),
    Resource("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("status", "scale"), (_ALL,)),
    Resource("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("status",), (_ALL,)),
    Resource("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ("status", "scale"), (_ALL,)),
    Resource("apps", "v1", "ControllerRevision", "controllerrevisions", True),
    # batch/v1
    Resource("batch", "v1", "Job", "jobs", True, (), ("status",), (_ALL,)),
    Resource("batch", "v1", "CronJob", "cronjobs", True, ("cj",), ("status",), (_ALL,)),
    # autoscaling/v2
    Resource("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True,
             ("hpa",), ("status",), (_ALL,)),
    # coordination.k8s.io/v1
    Resource("coordination.k8s.io", "v1", "Lease", "leases", True),
    # discovery.k8s.io/v1
    Resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    # events.k8s.io/v1 (same storage as core events)
    Resource("events.k8s.io", "v1", "Event", "events", True, ("ev",)),
    # storage.k8s.io/v1
    Resource("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ("sc",)),
    # rbac.authorization.k8s.io/v1
    Resource("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    Resource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    # admissionregistration.k8s.io/v1: admission webhooks (apiserver.webhooks calls them)
    Resource("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration",
             "mutatingwebhookconfigurations", False, categories=("api-extensions",)),
    Resource("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration",
             "validatingwebhookconfigurations", False, categories=("api-extensions",)),
    Resource("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy",
             "validatingadmissionpolicies", False, (), ("status",), ("api-extensions",)),
    Resource("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding",
             "validatingadmissionpolicybindings", False, categories=("api-extensions",)),
    # authorization.k8s.io/v1 and authentication.k8s.io/v1: reviews, created and answered, never stored
    Resource("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False,
             verbs=_CREATE_ONLY),
    Resource("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", False,
             verbs=_CREATE_ONLY),
    Resource("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", False,
             verbs=_CREATE_ONLY),
    Resource("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", True,
             verbs=_CREATE_ONLY),
    Resource("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False,
             verbs=_CREATE_ONLY),
    Resource("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", False, verbs=_CREATE_ONLY),
    # apiregistration.k8s.io/v1: APIServices (the built-in groups and metrics.k8s.io are Local)
    Resource("apiregistration.k8s.io", "v1", "APIService", "apiservices", False, (), ("status",),
             ("api-extensions",)),
    # metrics.k8s.io/v1beta1: computed by the API server from the node agents (apiserver/metrics.py)
    Resource("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", False, verbs=_READ_ONLY),
    Resource("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", True, verbs=_READ_ONLY),
    # disruptions, priorities, runtime classes
    Resource("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",), ("status",)),
    Resource("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, ("pc",)),
    Resource("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", False),
    # apiextensions.k8s.io/v1 (the custom resources themselves: api/customresource.py)
    Resource("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False,
             ("crd", "crds"), ("status",), ("api-extensions",)),
    # networking.k8s.io/v1 (served by the ingress component's nginx)
    Resource("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",), ("status",)),
    Resource("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    # networking.k8s.io/v1 NetworkPolicy (enforced by the netpol component on every node)
    Resource("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ("netpol",)),
)


# Further versions of resources in RESOURCES, on the same storage (listed after the
# preferred version in discovery, as Kubernetes 1.32 does: autoscaling v2, then v1).
OTHER_VERSIONS: tuple[Resource, ...] = (
    Resource("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True,
             ("hpa",), ("status",), (_ALL,)),
)
SERVED: tuple[Resource, ...] = RESOURCES + OTHER_VERSIONS


def _index() -> dict[tuple[str, str], Resource]:
    return {(r.group, r.plural): r for r in RESOURCES}


_BY_GROUP_PLURAL = _index()
_BY_GVR = {(r.group, r.version, r.plural): r for r in SERVED}


def lookup(group: str, plural: str) -> Resource | None:
    """The resource served at /apis/<group>/<version>/<plural> (group "" = core)."""
    return _BY_GROUP_PLURAL.get((group, plural))


def lookup_version(group: str, version: str, plural: str) -> Resource | None:
    """The resource served at /apis/<group>/<version>/<plural>, any served version."""
    return _BY_GVR.get((group, version, plural))


def preferred(r: Resource) -> Resource:
    """The preferred (and storage) version of `r`'s resource: `r` itself unless it is
    one of OTHER_VERSIONS."""
    return _BY_GROUP_PLURAL.get((r.group, r.plural), r)


def by_kind(api_version: str, kind: str) -> Resource | None:
    """The resource of an object, from its apiVersion and kind."""
    group, _, version = api_version.rpartition("/")
    for r in SERVED:
        if r.group == group and r.version == version and r.kind == kind:
            return r
    return None


def get(name: str) -> Resource:
    """A resource by plural, short name, kind or `plural.group` (as kubectl accepts).

    Raises KeyError if unknown. Core-group resources win over same-named others.
    """
    n = name.lower()
    plural, _, group = n.partition(".")
    for r in RESOURCES:
        if group and r.group != group:
            continue
        if plural in (r.plural, r.name_singular, r.kind.lower()) or plural in r.short_names:
            return r
    raise KeyError(name)


def group_versions() -> list[tuple[str, str]]:
    """(group, version) pairs served, core first, in a stable order (a group's
    preferred version before its others)."""
    seen: list[tuple[str, str]] = []
    for r in SERVED:
        gv = (r.group, r.version)
        if gv not in seen:
            seen.append(gv)
    return seen
