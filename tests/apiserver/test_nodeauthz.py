"""The Node authorizer (unit, table-driven) and NodeRestriction (unit and through the API
server): a node reads only what pods bound to it reference, and writes only its own Node,
Lease and pods, with Kubernetes' 403 wording."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from k8py.api import resources
from k8py.api.request import ApiRequest
from k8py.apiserver import noderestriction
from k8py.apiserver.authz import Authorizer
from k8py.apiserver.errors import StatusError
from k8py.apiserver.registry import WriteOptions
from k8py.apiserver.requestinfo import attributes
from k8py.apiserver.server import ApiServer

from apiserver_helpers import call, pod

NODE_A = ("system:node:a", ("system:nodes", "system:authenticated"))


def _pod(name: str, node: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": name}, "spec": {"nodeName": node, **spec}}


def authorizer() -> Authorizer:
    az = Authorizer("RBAC")
    g = az.node.graph
    g.observe("/registry/core/pods/default/pa", 5, json.dumps(_pod(
        "pa", "a", serviceAccountName="sa-a", volumes=[
            {"name": "s", "secret": {"secretName": "sec-a"}},
            {"name": "c", "projected": {"sources": [{"configMap": {"name": "cm-a"}}]}},
            {"name": "v", "persistentVolumeClaim": {"claimName": "claim-a"}}],
        containers=[{"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "env-a"}}}]}]))
        .encode())
    g.observe("/registry/core/pods/default/pb", 6, json.dumps(_pod(
        "pb", "b", volumes=[{"name": "s", "secret": {"secretName": "sec-b"}}])).encode())
    g.observe("/registry/core/persistentvolumeclaims/default/claim-a", 7,
              json.dumps({"spec": {"volumeName": "pv-a"}}).encode())
    return az


CASES = [  # (method, path, query, allowed, reason fragment)
    ("GET", "/api/v1/namespaces/default/secrets/sec-a", {}, True, ""),
    ("GET", "/api/v1/namespaces/default/secrets/env-a", {}, True, ""),
    ("GET", "/api/v1/namespaces/default/secrets/sec-b", {}, False, "no relationship found between node 'a'"),
    ("GET", "/api/v1/namespaces/default/secrets", {}, False, "can only get individual resources"),
    ("GET", "/api/v1/namespaces/default/secrets", {"fieldSelector": "metadata.name=sec-a", "watch": "true"},
     True, ""),
    ("GET", "/api/v1/namespaces/default/configmaps/cm-a", {}, True, ""),
    ("GET", "/api/v1/namespaces/default/persistentvolumeclaims/claim-a", {}, True, ""),
    ("GET", "/api/v1/persistentvolumes/pv-a", {}, True, ""),
    ("GET", "/api/v1/persistentvolumes/pv-b", {}, False, "no relationship"),
    ("POST", "/api/v1/namespaces/default/serviceaccounts/sa-a/token", {}, True, ""),
    ("POST", "/api/v1/namespaces/default/serviceaccounts/default/token", {}, False, "no relationship"),
    ("GET", "/api/v1/namespaces/default/pods/pa", {}, True, ""),
    ("GET", "/api/v1/namespaces/default/pods/pb", {}, False, "no relationship"),
    ("GET", "/api/v1/pods", {"fieldSelector": "spec.nodeName=a"}, True, ""),
    ("GET", "/api/v1/pods", {"fieldSelector": "spec.nodeName=b"}, False, "spec.nodeName field selector"),
    ("GET", "/api/v1/pods", {}, False, "spec.nodeName field selector"),
    ("PATCH", "/api/v1/namespaces/default/pods/pa/status", {}, True, ""),
    ("PUT", "/api/v1/namespaces/default/pods/pb/status", {}, False, "no relationship"),
    ("DELETE", "/api/v1/namespaces/default/pods/pa", {}, True, ""),
    ("DELETE", "/api/v1/namespaces/default/pods/pb", {}, False, "no relationship"),
    ("POST", "/api/v1/namespaces/default/pods/pb/eviction", {}, False, "no relationship"),
    ("POST", "/api/v1/namespaces/default/pods", {}, True, ""),  # mirror pods: NodeRestriction checks
    ("PUT", "/api/v1/namespaces/default/pods/pa", {}, False, ""),  # a node never updates a pod's spec
    ("GET", "/api/v1/nodes", {}, True, ""),
    ("PATCH", "/api/v1/nodes/b/status", {}, True, ""),  # authorized; NodeRestriction refuses
    ("DELETE", "/api/v1/namespaces/default/secrets/sec-a", {}, False, "can only get individual"),
    ("PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/a", {}, True, ""),
    ("POST", "/api/v1/namespaces/default/events", {}, True, ""),
    ("GET", "/apis/discovery.k8s.io/v1/endpointslices", {"watch": "true"}, True, ""),
    ("GET", "/api/v1/namespaces", {}, False, ""),
    ("POST", "/api/v1/namespaces/default/secrets", {}, False, "can only get individual"),
    ("GET", "/api/v1/persistentvolumes", {}, True, ""),  # k8py: local-path reclaim by the node
    ("GET", "/api/v1/persistentvolumes", {"watch": "1"}, False, "can only get individual"),
    ("POST", "/api/v1/namespaces/kube-system/services", {}, True, ""),  # k8py: the DNS publishes itself
    ("PUT", "/api/v1/namespaces/kube-system/endpoints/kube-dns", {}, True, ""),
    ("PUT", "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices/kube-dns-a", {}, True, ""),
    ("PUT", "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices/kube-dns-b", {}, False, ""),
    ("PUT", "/api/v1/namespaces/kube-system/services/other", {}, False, ""),
    ("POST", "/api/v1/namespaces/default/services", {}, False, ""),
    ("DELETE", "/api/v1/namespaces/kube-system/services/kube-dns", {}, False, ""),
]


@pytest.mark.parametrize(("method", "path", "query", "allowed", "reason"), CASES)
def test_node_authorizer(method: str, path: str, query: dict[str, str], allowed: bool, reason: str) -> None:
    d = authorizer().authorize(attributes(method, path, query, *NODE_A))
    assert d.allowed is allowed
    assert reason in d.reason


def test_graph_follows_pod_deletion_and_rebinding() -> None:
    az = authorizer()
    get = attributes("GET", "/api/v1/namespaces/default/secrets/sec-a", {}, *NODE_A)
    az.node.graph.observe("/registry/core/pods/default/pa", 4, None)  # older than the PUT seen: ignored
    assert az.authorize(get).allowed
    az.node.graph.observe("/registry/core/pods/default/pa", 9, None)
    assert not az.authorize(get).allowed
    az.node.graph.observe("/registry/core/pods/default/pb", 10, json.dumps(_pod(
        "pb", "a", volumes=[{"name": "s", "secret": {"secretName": "sec-a"}}])).encode())
    assert az.authorize(get).allowed


def test_graph_replaced_after_a_watch_restart() -> None:
    """Pods deleted while the watch was down are forgotten; those still there stay."""
    az = authorizer()
    az.node.graph.replace("/registry/core/pods/", [("/registry/core/pods/default/pa", 5, json.dumps(_pod(
        "pa", "a", volumes=[{"name": "s", "secret": {"secretName": "sec-a"}}])).encode())])
    assert az.authorize(attributes("GET", "/api/v1/namespaces/default/secrets/sec-a", {}, *NODE_A)).allowed
    assert "/registry/core/pods/default/pb" not in az.node.graph.pods
    assert az.node.graph.claim_volume == {("default", "claim-a"): "pv-a"}  # claims: another prefix, untouched


def test_not_a_node_has_no_opinion() -> None:
    az = authorizer()
    for user, groups in [("system:node:a", ("system:authenticated",)), ("a", ("system:nodes",))]:
        assert not az.authorize(attributes("GET", "/api/v1/namespaces/default/secrets/sec-a", {}, user,
                                           groups)).allowed


def _res(group: str, plural: str) -> Any:
    r = resources.lookup(group, plural)
    assert r is not None
    return r


NODE = {"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}
RESTRICTION = [  # (resource, obj, old, 403 message or "")
    (("", "nodes"), NODE, None, ""),
    (("", "nodes"), {"metadata": {"name": "b"}}, None, 'node "a" is not allowed to modify node "b"'),
    (("", "nodes"), {"metadata": {"name": "b"}}, {"metadata": {"name": "b"}},
     'nodes "b" is forbidden: node "a" is not allowed to modify node "b"'),
    (("", "nodes"), {"metadata": {"name": "a", "labels": {"node-restriction.kubernetes.io/x": "y"}}}, None,
     'node "a" is not allowed to set the following labels: node-restriction.kubernetes.io/x'),
    (("", "nodes"), {"metadata": {"name": "a", "labels": {"x": "2"}}, "spec": NODE["spec"]}, NODE, ""),
    (("", "nodes"), {"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {}}, NODE,
     'node "a" is not allowed to modify taints'),
    (("", "nodes"), {"metadata": {"name": "a", "labels": {"a.node-restriction.kubernetes.io/z": "1"}}},
     {"metadata": {"name": "a"}}, 'nodes "a" is forbidden: is not allowed to modify labels: '
                                  "a.node-restriction.kubernetes.io/z"),
    (("", "nodes"), {"metadata": {"name": "a", "labels": {"kubernetes.io/hostname": "a", "node.kubernetes.io/x": "1",
                                                          "example.com/y": "2"}}}, None, ""),
    (("", "nodes"), {"metadata": {"name": "a", "labels": {"node-role.kubernetes.io/control-plane": ""}}}, None,
     'node "a" is not allowed to set the following labels: node-role.kubernetes.io/control-plane'),
    (("", "nodes"), {"metadata": {"name": "a", "ownerReferences": [{"kind": "X"}]}}, {"metadata": {"name": "a"}},
     'node "a" is not allowed to modify ownerReferences'),
    (("", "pods"), _pod("p", "a"), None, 'node "a" can only create mirror pods'),
    (("", "pods"), {**_pod("p", "b"), "metadata": {"name": "p", "annotations": {"kubernetes.io/config.mirror": "x"}}},
     None, 'node "a" can only create pods with spec.nodeName set to itself'),
    (("", "pods"), {**_pod("p", "a"), "metadata": {"name": "p", "annotations": {"kubernetes.io/config.mirror": "x"}}},
     None, ""),
    (("", "pods"), _pod("p", "a"), _pod("p", "a"), ""),
    (("", "pods"), {**_pod("p", "a"), "metadata": {"name": "p", "labels": {"x": "1"}}}, _pod("p", "a"),
     'node "a" cannot update labels through pod status'),
    (("", "pods"), {**_pod("p", "a", volumes=[{"name": "v", "secret": {"secretName": "s"}}]),
                    "metadata": {"name": "p", "annotations": {"kubernetes.io/config.mirror": "x"}}},
     None, 'node "a" can not create pods that reference secrets'),
    (("", "pods"), {**_pod("p", "a", serviceAccountName="sa"),
                    "metadata": {"name": "p", "annotations": {"kubernetes.io/config.mirror": "x"}}},
     None, 'node "a" can not create pods that reference a service account'),
    (("", "pods"), _pod("p", "b"), _pod("p", "b"),
     'node "a" can only update pod status for pods with spec.nodeName set to itself'),
    (("coordination.k8s.io", "leases"), {"metadata": {"namespace": "kube-node-lease", "name": "a"}}, None, ""),
    (("coordination.k8s.io", "leases"), {"metadata": {"namespace": "default", "name": "a"}}, None,
     'can only access leases in the "kube-node-lease" system namespace'),
    (("", "services"), {"metadata": {"namespace": "kube-system", "name": "kube-dns"}}, None, ""),
    (("discovery.k8s.io", "endpointslices"), {"metadata": {"namespace": "kube-system", "name": "kube-dns-a"}},
     None, ""),
    (("", "services"), {"metadata": {"namespace": "kube-system", "name": "x"}}, None,
     'node "a" may only publish its cluster DNS as services "kube-dns" in kube-system'),
    (("discovery.k8s.io", "endpointslices"), {"metadata": {"namespace": "kube-system", "name": "kube-dns-b"}},
     None, 'as endpointslices "kube-dns-a"'),
    (("coordination.k8s.io", "leases"), {"metadata": {"namespace": "kube-node-lease", "name": "b"}}, None,
     "can only access node lease with the same name as the requesting node"),
]


@pytest.mark.parametrize(("res", "obj", "old", "message"), RESTRICTION)
def test_node_restriction(res: tuple[str, str], obj: dict[str, Any], old: dict[str, Any] | None,
                          message: str) -> None:
    opts = WriteOptions(user=NODE_A[0], groups=NODE_A[1])
    if not message:
        noderestriction.admit(_res(*res), obj, old, opts)
        return
    with pytest.raises(StatusError) as e:
        noderestriction.admit(_res(*res), obj, old, opts)
    assert e.value.code == 403
    assert message in e.value.status()["message"]


def test_others_pass_node_restriction() -> None:
    noderestriction.admit(_res("", "nodes"), {"metadata": {"name": "b"}}, None, WriteOptions())


async def test_node_through_the_api_server(api: ApiServer) -> None:
    """A node patches its own Node's status, not another's; reads its pod, not another node's."""
    for name in ("a", "b"):
        assert (await call(api, "POST", "/api/v1/nodes", {"metadata": {"name": name}})).status == 201
    for name, node in (("pa", "a"), ("pb", "b")):
        p = pod(name)
        p["spec"]["nodeName"] = node
        assert (await call(api, "POST", "/api/v1/namespaces/default/pods", p)).status == 201

    async def as_a(method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else b""
        return await api.handle(ApiRequest(method, path, body=data, user=NODE_A[0], groups=NODE_A[1],
                                           headers={"content-type": "application/merge-patch+json"}))

    patch = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    assert (await as_a("PATCH", "/api/v1/nodes/a/status", patch)).status == 200
    r = await as_a("PATCH", "/api/v1/nodes/b/status", patch)
    assert r.status == 403, r.body
    assert r.body["message"] == 'nodes "b" is forbidden: node "a" is not allowed to modify node "b"'
    deadline = asyncio.get_running_loop().time() + 10  # the graph follows the pods' watch cache
    while (await as_a("GET", "/api/v1/namespaces/default/pods/pa")).status != 200:
        assert asyncio.get_running_loop().time() < deadline, "the node never got its pod"
        await asyncio.sleep(0.01)
    r = await as_a("GET", "/api/v1/namespaces/default/pods/pb")
    assert r.status == 403
    assert "no relationship found between node 'a' and this object" in r.body["message"]


async def test_a_node_requests_tokens_only_for_its_pods(api: ApiServer) -> None:
    for name in ("a", "b"):
        assert (await call(api, "POST", "/api/v1/nodes", {"metadata": {"name": name}})).status == 201
    uids = {}
    for name, node in (("pa", "a"), ("pb", "b")):
        p = pod(name)
        p["spec"]["nodeName"] = node
        r = await call(api, "POST", "/api/v1/namespaces/default/pods", p)
        assert r.status == 201
        uids[name] = r.body["metadata"]["uid"]

    async def request(ref: dict[str, Any] | None) -> Any:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"boundObjectRef": ref}}
        path = "/api/v1/namespaces/default/serviceaccounts/default/token"
        deadline = asyncio.get_running_loop().time() + 10  # the graph follows the pods' watch cache
        while True:
            r = await api.handle(ApiRequest("POST", path, body=json.dumps(body).encode(), user=NODE_A[0],
                                            groups=NODE_A[1], headers={"content-type": "application/json"}))
            if r.status != 403 or "no relationship" not in r.body["message"]:
                return r
            assert asyncio.get_running_loop().time() < deadline, r.body
            await asyncio.sleep(0.01)

    r = await request({"apiVersion": "v1", "kind": "Pod", "name": "pa", "uid": uids["pa"]})
    assert r.status == 201, r.body
    for ref, message in [(None, "node requested token not bound to a pod"),
                         ({"apiVersion": "v1", "kind": "Pod", "name": "pa"},
                          "node requested token with a pod binding without a uid"),
                         ({"apiVersion": "v1", "kind": "Pod", "name": "pb", "uid": uids["pb"]},
                          "node requested token bound to a pod scheduled on a different node")]:
        r = await request(ref)
        assert r.status == 403 and r.body["message"] == f'serviceaccounts "default" is forbidden: {message}', r.body
