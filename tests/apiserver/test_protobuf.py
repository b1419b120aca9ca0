"""Protobuf request bodies, as kubectl 1.32's typed clients send them (bodies captured
from `kubectl create ... -v=9`): decoded by `apiserver.protobuf` and accepted by the
API server's codec."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from k8py.apiserver import protobuf, wire
from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.store.memory import MemoryStore

from apiserver_helpers import call

BODIES: dict[str, Any] = json.loads(Path(__file__).with_name("kubectl_protobuf_bodies.json").read_text())
PB = "application/vnd.kubernetes.protobuf"


def body(name: str) -> bytes:
    return base64.b64decode(BODIES[name]["body"])


def test_deployment_decodes_like_kubectl_json() -> None:
    d = protobuf.decode(body("deployment"))
    assert d["apiVersion"] == "apps/v1" and d["kind"] == "Deployment"
    assert d["metadata"]["name"] == "fx-web" and d["metadata"]["labels"] == {"app": "fx-web"}
    spec = d["spec"]
    assert spec["replicas"] == 2 and spec["selector"] == {"matchLabels": {"app": "fx-web"}}
    c = spec["template"]["spec"]["containers"][0]
    assert c["name"] == "nginx" and c["image"] == "nginx:1.25"
    assert c["ports"][0]["containerPort"] == 8080
    assert "creationTimestamp" not in d["metadata"]  # a zero time is absent, as in JSON


def test_explicit_zero_replicas_survive() -> None:
    assert protobuf.decode(body("deployment-zero"))["spec"]["replicas"] == 0


@pytest.mark.parametrize("name,check", [
    ("configmap", lambda o: o["data"] == {"a": "b", "empty": ""}),
    ("secret", lambda o: base64.b64decode(o["data"]["user"]) == b"admin"),
    ("namespace", lambda o: o["metadata"]["name"] == "fx-ns"),
    ("service-nodeport", lambda o: o["spec"]["ports"][0]["nodePort"] == 30123
     and o["spec"]["ports"][0]["targetPort"] == 8080 and o["spec"]["type"] == "NodePort"),
])
def test_other_kinds(name: str, check: Any) -> None:
    assert check(protobuf.decode(body(name)))


CREATE_PATHS = {
    "deployment": "/apis/apps/v1/namespaces/default/deployments",
    "deployment-zero": "/apis/apps/v1/namespaces/default/deployments",
    "configmap": "/api/v1/namespaces/default/configmaps",
    "secret": "/api/v1/namespaces/default/secrets",
    "namespace": "/api/v1/namespaces",
    "service-nodeport": "/api/v1/namespaces/default/services",
}


@pytest.mark.parametrize("name", sorted(CREATE_PATHS))
async def test_create_from_protobuf(api: ApiServer, name: str) -> None:
    resp = await call(api, "POST", CREATE_PATHS[name], body(name), content_type=PB,
                      query={"fieldManager": "kubectl-create", "fieldValidation": "Strict"})
    assert resp.status == 201, resp.body
    assert resp.body["metadata"]["uid"]


@pytest.mark.parametrize("bad", [b"k8s\x00\x0a\xff", b"not protobuf", b"k8s\x00\x0a\x05\x0a\x01v\x12\x00",
                                 b"k8s\x00" + b"\x12\x03\x0a\x01\x00"])
async def test_malformed_protobuf_is_400(api: ApiServer, store: MemoryStore, bad: bytes) -> None:
    rev = await store.current_revision()
    resp = await call(api, "POST", "/api/v1/namespaces/default/configmaps", bad, content_type=PB)
    assert resp.status == 400 and "protobuf" in resp.body["message"]
    assert await store.current_revision() == rev


def test_wire_rejects_truncation() -> None:
    with pytest.raises(ValueError):
        list(wire.fields(b"\x0a\x05ab"))
    with pytest.raises(ValueError):
        list(wire.fields(b"\x08\xff"))


async def test_created_objects_match_kubectl_intent(api: ApiServer) -> None:
    resp = await call(api, "POST", CREATE_PATHS["deployment"], body("deployment"), content_type=PB)
    d = resp.body
    assert d["metadata"]["generation"] == 1 and d["spec"]["replicas"] == 2
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    resp = await call(api, "POST", CREATE_PATHS["service-nodeport"], body("service-nodeport"), content_type=PB)
    assert resp.body["spec"]["ports"][0]["nodePort"] == 30123 and resp.body["spec"]["clusterIP"]


def test_table_covers_served_kinds() -> None:
    from k8py.api import resources
    # kube-aggregator's and metrics' types are not in kubectl's descriptors: no client sends them in protobuf
    no_descriptors = ("apiregistration.k8s.io", "metrics.k8s.io")
    for r in resources.RESOURCES:
        if r.group == "apiextensions.k8s.io":
            continue  # kubectl and the clients send CRDs (unstructured) as JSON only
        assert r.group in no_descriptors or protobuf.message_for(r.api_version, r.kind), r.kind
    assert protobuf.message_for("policy/v1", "Eviction")
    assert protobuf.message_for("v1", "DeleteOptions")


async def test_roundtrip_client(client: Client) -> None:
    got = await client.get("namespaces", "default")
    assert got["metadata"]["name"] == "default"
