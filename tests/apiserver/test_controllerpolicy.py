"""The controller manager's user (system:kube-controller-manager) holds, through the
bootstrap policy and the system:controller:* roles, what k8py's controllers do, and not
what they never do."""

from __future__ import annotations

import pytest

from k8py.apiserver import bootstrappolicy, controllerpolicy
from k8py.apiserver.rbac import PREFIX, RbacIndex
from k8py.apiserver.requestinfo import Attributes

KCM = "system:kube-controller-manager"


@pytest.fixture(scope="module")
def index() -> RbacIndex:
    idx = RbacIndex()
    for role in [*bootstrappolicy.cluster_roles(), *controllerpolicy.controller_roles()]:
        idx.observe(f"{PREFIX}clusterroles/{role['metadata']['name']}", 1, role)
    for b in [*bootstrappolicy.cluster_role_bindings(), *controllerpolicy.controller_role_bindings()]:
        idx.observe(f"{PREFIX}clusterrolebindings/{b['metadata']['name']}", 1, b)
    return idx


@pytest.mark.parametrize("verb, group, resource, sub, ns, allowed", [
    ("create", "", "pods", "", "default", True),               # replicaset, job, daemonset
    ("update", "apps", "deployments", "status", "default", True),
    ("create", "apps", "replicasets", "", "default", True),    # deployment
    ("create", "apps", "controllerrevisions", "", "default", True),
    ("create", "", "pods", "binding", "default", True),        # daemonset
    ("update", "batch", "jobs", "status", "default", True),
    ("create", "batch", "jobs", "", "default", True),          # cronjob
    ("update", "apps", "statefulsets", "status", "default", True),
    ("create", "", "persistentvolumeclaims", "", "default", True),
    ("update", "", "endpoints", "", "default", True),
    ("create", "discovery.k8s.io", "endpointslices", "", "default", True),
    ("patch", "", "nodes", "", "", True),                      # node IPAM, taints
    ("update", "", "nodes", "status", "", True),               # node lifecycle
    ("delete", "", "pods", "", "default", True),               # pod GC, eviction
    ("update", "apps", "deployments", "scale", "default", True),  # HPA
    ("update", "policy", "poddisruptionbudgets", "status", "default", True),
    ("update", "", "resourcequotas", "status", "default", True),
    ("create", "", "configmaps", "", "default", True),         # kube-root-ca.crt
    ("update", "", "services", "status", "default", True),     # service load balancer
    ("create", "", "persistentvolumes", "", "", True),         # local-path provisioner
    ("create", "storage.k8s.io", "storageclasses", "", "", True),
    ("escalate", "rbac.authorization.k8s.io", "clusterroles", "", "", True),  # aggregation
    ("delete", "apps", "replicasets", "", "default", True),    # garbage collector
    ("create", "", "events", "", "default", True),
    ("update", "coordination.k8s.io", "leases", "", "kube-system", True),  # leader election
    # never done by a controller: not granted
    ("create", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", False),
    ("impersonate", "", "users", "", "", False),
    ("create", "", "pods", "exec", "default", False),
    ("create", "", "pods", "eviction", "default", False),
    ("create", "", "namespaces", "", "", False),
    ("create", "certificates.k8s.io", "certificatesigningrequests", "", "", False),
])
def test_controller_manager_rights(index: RbacIndex, verb: str, group: str, resource: str, sub: str, ns: str,
                                   allowed: bool) -> None:
    a = Attributes(user=KCM, groups=("system:authenticated",), verb=verb, resource_request=True,
                   namespace=ns, api_group=group, api_version="v1", resource=resource, subresource=sub)
    assert index.authorize(a)[0] is allowed, index.authorize(a)


def test_every_controller_role_is_bound_to_its_account_and_the_controller_manager() -> None:
    roles = {r["metadata"]["name"] for r in controllerpolicy.controller_roles()}
    for b in controllerpolicy.controller_role_bindings():
        name = b["metadata"]["name"]
        assert b["roleRef"]["name"] == name and name in roles
        subjects = {(s["kind"], s["name"]) for s in b["subjects"]}
        assert subjects == {("ServiceAccount", name.removeprefix("system:controller:")), ("User", KCM)}
    assert len(roles) == len(controllerpolicy.controller_role_bindings())
