"""Unit tests: path routing, body decoding, Accept negotiation, the in-process transport."""

from __future__ import annotations

import pytest

from k8py.apiserver import codec, routing
from k8py.apiserver.errors import StatusError
from k8py.apiserver.inprocess import InProcessTransport
from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.client.errors import ApiError


@pytest.mark.parametrize("path,want", [
    ("/api/v1/pods", ("pods", None, None, None, False)),
    ("/api/v1/namespaces/ns/pods", ("pods", "ns", None, None, False)),
    ("/api/v1/namespaces/ns/pods/p", ("pods", "ns", "p", None, False)),
    ("/api/v1/namespaces/ns/pods/p/status", ("pods", "ns", "p", "status", False)),
    ("/api/v1/namespaces", ("namespaces", None, None, None, False)),
    ("/api/v1/namespaces/ns", ("namespaces", None, "ns", None, False)),
    ("/api/v1/namespaces/ns/finalize", ("namespaces", None, "ns", "finalize", False)),
    ("/api/v1/watch/namespaces/ns/pods/p", ("pods", "ns", "p", None, True)),
    ("/apis/apps/v1/namespaces/ns/deployments/d/scale", ("deployments", "ns", "d", "scale", False)),
    ("/apis/events.k8s.io/v1/events", ("events", None, None, None, False)),
    ("/api/v1/nodes/n1/status", ("nodes", None, "n1", "status", False)),
])
def test_resource_routes(path: str, want: tuple) -> None:  # type: ignore[type-arg]
    r = routing.parse(path)
    assert r is not None and r.kind == "resource" and r.resource is not None
    assert (r.resource.plural, r.namespace, r.name, r.subresource, r.legacy_watch) == want


@pytest.mark.parametrize("path,kind", [
    ("/api", "discovery"), ("/apis", "discovery"), ("/apis/apps", "discovery"), ("/api/v1", "discovery"),
    ("/apis/apps/v1", "discovery"), ("/openapi/v3", "openapi"), ("/openapi/v3/api/v1", "openapi"),
])
def test_delegated_routes(path: str, kind: str) -> None:
    r = routing.parse(path)
    assert r is not None and r.kind == kind


@pytest.mark.parametrize("path", ["/", "/apis/apps/v2/deployments", "/api/v1/namespaces/ns/nodes",
                                  "/api/v1/namespaces/ns/pods/p/bogus", "/api/v1/pods/a/b/c/d", "/healthz",
                                  "/api/v1/watch", "/api/v1/watch/namespaces/ns/pods/p/status"])
def test_unknown_routes(path: str) -> None:
    assert routing.parse(path) is None


def test_decode_json_yaml_and_duplicates() -> None:
    assert codec.decode(b'{"a": 1, "a": 2}', "application/json").duplicates == ["a"]
    d = codec.decode(b"a: 1\na: 2\nt: 2024-01-01T00:00:00Z\n", "application/yaml")
    assert d.duplicates == ["a"] and d.value == {"a": 2, "t": "2024-01-01T00:00:00Z"}
    assert codec.decode(b"", "application/json").value is None
    # No content type: JSON first, then YAML.
    assert codec.decode(b"a: b", "").value == {"a": "b"}


@pytest.mark.parametrize("body,ctype,code", [
    (b"{", "application/json", 400), (b"a: [", "application/yaml", 400), (b"\xff\xfe", "application/json", 400),
    (b"{}", "application/cbor", 415), (b"{}", "text/html", 415), (b"? [a, b]\n: c\n", "application/yaml", 400),
])
def test_decode_errors(body: bytes, ctype: str, code: int) -> None:
    with pytest.raises(StatusError) as e:
        codec.decode(body, ctype)
    assert e.value.code == code


@pytest.mark.parametrize("accept,as_kind,version", [
    ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
     "Table", "v1"),
    ("application/json;as=Table;v=v1beta1;g=meta.k8s.io", "Table", "v1beta1"),
    ("application/vnd.kubernetes.protobuf,application/json", "", "v1"),
    ("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io", "PartialObjectMetadataList", "v1"),
    ("", "", "v1"), ("*/*", "", "v1"),
])
def test_negotiate(accept: str, as_kind: str, version: str) -> None:
    a = codec.negotiate(accept)
    assert (a.as_kind, a.version) == (as_kind, version)


async def test_inprocess_transport(api: ApiServer) -> None:
    t = InProcessTransport(api, user_agent="tester/1.0")
    status, body = await t.request("GET", "/api/v1/namespaces/default?pretty=true")
    assert status == 200 and body["metadata"]["name"] == "default"
    status, body = await t.request("POST", "/api/v1/namespaces/default/configmaps",
                                   body=b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: y}\ndata: {k: v}\n",
                                   content_type="application/yaml")
    assert status == 201 and body["metadata"]["managedFields"][0]["manager"] == "tester"
    with pytest.raises(ApiError) as e:
        async for _ in t.stream("/api/v1/namespaces/default/widgets", query={"watch": "true"}):
            pass
    assert e.value.status == 404
    status, body = await t.request("GET", "/api/v1/namespaces/default/configmaps/nope")
    assert status == 404 and body["reason"] == "NotFound"
    await Client(t).close()
