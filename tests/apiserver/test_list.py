"""LIST: label/field selectors per kind, pagination, resourceVersion, Table output."""

from __future__ import annotations

import pytest

from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.store.memory import MemoryStore

from apiserver_helpers import call, pod


async def _pods(client: Client) -> None:
    await client.create("namespaces", {"metadata": {"name": "other"}})
    specs = [("a", "default", {"app": "web", "tier": "fe"}, "n1"), ("b", "default", {"app": "web"}, ""),
             ("c", "default", {"app": "db"}, "n2"), ("d", "other", {"app": "web"}, "n1")]
    for name, ns, labels, node in specs:
        p = pod(name, ns, **({"nodeName": node} if node else {}))
        p["metadata"]["labels"] = labels
        await client.create("pods", p)


def names(lst: dict) -> list[str]:
    return sorted(i["metadata"]["name"] for i in lst["items"])


@pytest.mark.parametrize("ns,label,field,want", [
    ("default", None, None, ["a", "b", "c"]),
    (None, None, None, ["a", "b", "c", "d"]),
    (None, "app=web", None, ["a", "b", "d"]),
    ("default", "app in (web,db),tier!=fe", None, ["b", "c"]),
    ("default", "tier", None, ["a"]),
    ("default", "!tier", None, ["b", "c"]),
    (None, None, "spec.nodeName=n1", ["a", "d"]),
    (None, None, "spec.nodeName=", ["b"]),
    (None, None, "spec.nodeName!=", ["a", "c", "d"]),
    (None, None, "metadata.namespace=other", ["d"]),
    (None, None, "metadata.name=c", ["c"]),
    (None, "app=web", "spec.nodeName=n1,metadata.namespace=default", ["a"]),
    (None, None, "status.phase=Pending", ["a", "b", "c", "d"]),
    (None, None, "status.phase==Running", []),
])
async def test_pod_selectors(client: Client, ns: str | None, label: str | None, field: str | None,
                             want: list[str]) -> None:
    await _pods(client)
    assert names(await client.list("pods", ns, label_selector=label, field_selector=field)) == want


@pytest.mark.parametrize("resource,field,code,msg", [
    ("pods", "spec.foo=x", 400, "field label not supported: spec.foo"),
    ("configmaps", "spec.nodeName=x", 400, "field label not supported: spec.nodeName"),
    ("pods", "nonsense", 400, "invalid field selector"),
])
async def test_unsupported_field_selectors(client: Client, resource: str, field: str, code: int, msg: str) -> None:
    with pytest.raises(ApiError) as e:
        await client.list(resource, "default", field_selector=field)
    assert e.value.status == code and msg in e.value.body["message"]


async def test_bad_label_selector(client: Client) -> None:
    with pytest.raises(ApiError) as e:
        await client.list("pods", "default", label_selector="a in (")
    assert e.value.status == 400


async def test_field_selectors_of_other_kinds(client: Client) -> None:
    await client.create("secrets", {"metadata": {"name": "s1", "namespace": "default"}, "type": "Opaque"})
    await client.create("secrets", {"metadata": {"name": "s2", "namespace": "default"},
                                    "type": "kubernetes.io/dockerconfigjson",
                                    "data": {".dockerconfigjson": "e30="}})
    assert names(await client.list("secrets", "default", field_selector="type=Opaque")) == ["s1"]
    await client.create("nodes", {"metadata": {"name": "n1"}, "spec": {"unschedulable": True}})
    await client.create("nodes", {"metadata": {"name": "n2"}})
    assert names(await client.list("nodes", field_selector="spec.unschedulable=false")) == ["n2"]
    for i, (kind, reason, comp) in enumerate([("Pod", "Started", "kubelet"), ("Node", "Ready", "kubelet"),
                                              ("Pod", "Scheduled", "scheduler")]):
        await client.create("events", {"metadata": {"name": f"e{i}", "namespace": "default"},
                                       "involvedObject": {"kind": kind, "name": "x", "namespace": "default"},
                                       "reason": reason, "source": {"component": comp}, "type": "Normal"})
    assert names(await client.list("events", "default", field_selector="involvedObject.kind=Pod")) == ["e0", "e2"]
    assert names(await client.list("events", "default", field_selector="source=kubelet,reason=Ready")) == ["e1"]
    assert names(await client.list("events.events.k8s.io", "default",
                                   field_selector="regarding.kind=Pod,reason=Scheduled")) == ["e2"]


async def test_pagination(client: Client, store: MemoryStore) -> None:
    for i in range(7):
        await client.create("configmaps", {"metadata": {"name": f"cm{i}", "namespace": "default",
                                                        "labels": {"even": str(i % 2 == 0).lower()}}})
    seen: list[str] = []
    cont = None
    revs = set()
    while True:
        page = await client.list("configmaps", "default", limit=3, continue_=cont)
        assert len(page["items"]) <= 3
        seen += [i["metadata"]["name"] for i in page["items"]]
        revs.add(page["metadata"]["resourceVersion"])
        cont = page["metadata"].get("continue")
        if not cont:
            break
    assert seen == [f"cm{i}" for i in range(7)]
    assert len(revs) == 1
    # With a selector, pages are filled with matching items.
    page = await client.list("configmaps", "default", label_selector="even=true", limit=2)
    assert [i["metadata"]["name"] for i in page["items"]] == ["cm0", "cm2"]
    rest = await client.list("configmaps", "default", label_selector="even=true", limit=2,
                             continue_=page["metadata"]["continue"])
    assert [i["metadata"]["name"] for i in rest["items"]] == ["cm4", "cm6"]
    assert "continue" not in rest["metadata"]


async def test_bad_and_expired_continue(client: Client, store: MemoryStore) -> None:
    for i in range(3):
        await client.create("configmaps", {"metadata": {"name": f"cm{i}", "namespace": "default"}})
    with pytest.raises(ApiError) as e:
        await client.list("configmaps", "default", limit=1, continue_="garbage!!")
    assert e.value.status == 400
    page = await client.list("configmaps", "default", limit=1)
    await client.create("configmaps", {"metadata": {"name": "later", "namespace": "default"}})
    await store.compact(await store.current_revision())
    with pytest.raises(ApiError) as e:
        await client.list("configmaps", "default", limit=1, continue_=page["metadata"]["continue"])
    assert e.value.status == 410 and e.value.reason == "Expired"


async def test_list_resource_version_is_store_revision(client: Client, store: MemoryStore) -> None:
    await client.create("configmaps", {"metadata": {"name": "x", "namespace": "default"}})
    lst = await client.list("configmaps", "default", resource_version="0")
    assert lst["metadata"]["resourceVersion"] == str(await store.current_revision())
    assert lst["kind"] == "ConfigMapList" and lst["apiVersion"] == "v1"


KUBECTL_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;"
                  "g=meta.k8s.io,application/json")


async def test_table_list_and_get(api: ApiServer, client: Client) -> None:
    await _pods(client)
    resp = await call(api, "GET", "/api/v1/namespaces/default/pods", accept=KUBECTL_ACCEPT)
    t = resp.body
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert t["columnDefinitions"][0]["name"] == "Name"
    assert [row["cells"][0] for row in t["rows"]] == ["a", "b", "c"]
    assert t["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert t["metadata"]["resourceVersion"]
    one = await call(api, "GET", "/api/v1/namespaces/default/pods/a", accept=KUBECTL_ACCEPT,
                     query={"includeObject": "Object"})
    assert one.body["kind"] == "Table" and len(one.body["rows"]) == 1
    assert one.body["rows"][0]["object"]["kind"] == "Pod"
    plain = await call(api, "GET", "/api/v1/namespaces/default/pods/a")
    assert plain.body["kind"] == "Pod"


async def test_partial_object_metadata(api: ApiServer, client: Client) -> None:
    await _pods(client)
    resp = await call(api, "GET", "/api/v1/pods",
                      accept="application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io")
    assert resp.body["kind"] == "PartialObjectMetadataList"
    assert all(set(i) == {"kind", "apiVersion", "metadata"} for i in resp.body["items"])
