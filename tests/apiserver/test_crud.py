"""Create/get/update per kind, CAS, server-owned fields, status rules, bad input."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.store.memory import MemoryStore

from apiserver_helpers import call, deployment, pod

KINDS: list[tuple[str, dict[str, Any]]] = [
    ("pods", pod("p")),
    ("deployments", deployment("d")),
    ("configmaps", {"metadata": {"name": "cm", "namespace": "default"}, "data": {"a": "1"}}),
    ("secrets", {"metadata": {"name": "s", "namespace": "default"}, "stringData": {"a": "1"}}),
    ("nodes", {"metadata": {"name": "n1"}, "spec": {}}),
    ("namespaces", {"metadata": {"name": "team-a"}}),
    ("services", {"metadata": {"name": "svc", "namespace": "default"},
                  "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}}),
    ("leases", {"metadata": {"name": "l", "namespace": "default"}, "spec": {"holderIdentity": "me"}}),
    ("jobs", {"metadata": {"name": "j", "namespace": "default"},
              "spec": {"template": {"spec": {"restartPolicy": "Never",
                                             "containers": [{"name": "c", "image": "busybox"}]}}}}),
]


@pytest.mark.parametrize("resource,obj", KINDS, ids=[k for k, _ in KINDS])
async def test_create_get_update_delete_roundtrip(client: Client, store: MemoryStore,
                                                  resource: str, obj: dict[str, Any]) -> None:
    created = await client.create(resource, obj)
    md = created["metadata"]
    assert md["uid"] and md["creationTimestamp"] and int(md["resourceVersion"]) > 0
    got = await client.get(resource, md["name"], md.get("namespace"))
    assert got == created
    # Stored without resourceVersion; served with the key's mod_revision.
    from k8py.api import resources
    r = resources.get(resource)
    kv = await store.get(r.storage_key(md.get("namespace"), md["name"]))
    assert kv is not None and "resourceVersion" not in json.loads(kv.value)["metadata"]
    assert md["resourceVersion"] == str(kv.mod_revision)
    got["metadata"].setdefault("labels", {})["touched"] = "yes"
    updated = await client.update(resource, got)
    assert updated["metadata"]["labels"]["touched"] == "yes"
    assert int(updated["metadata"]["resourceVersion"]) > int(md["resourceVersion"])
    assert updated["metadata"]["uid"] == md["uid"]


async def test_generate_name(client: Client) -> None:
    obj = pod("")
    obj["metadata"] = {"generateName": "web-", "namespace": "default"}
    a = await client.create("pods", obj)
    b = await client.create("pods", obj)
    assert a["metadata"]["name"].startswith("web-") and len(a["metadata"]["name"]) == 9
    assert a["metadata"]["name"] != b["metadata"]["name"]


async def test_already_exists(client: Client) -> None:
    await client.create("configmaps", {"metadata": {"name": "x", "namespace": "default"}})
    with pytest.raises(ApiError) as e:
        await client.create("configmaps", {"metadata": {"name": "x", "namespace": "default"}})
    assert e.value.already_exists
    assert e.value.body["message"] == 'configmaps "x" already exists'


async def test_not_found_messages(client: Client) -> None:
    with pytest.raises(ApiError) as e:
        await client.get("deployments", "nope", "default")
    assert e.value.status == 404
    assert e.value.body["message"] == 'deployments.apps "nope" not found'
    assert e.value.body["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}


async def test_cas_conflict_and_unconditional_put(client: Client) -> None:
    cm = await client.create("configmaps", {"metadata": {"name": "c", "namespace": "default"}, "data": {"v": "1"}})
    first = dict(cm, data={"v": "2"})
    await client.update("configmaps", first)
    stale = dict(cm, data={"v": "3"})
    with pytest.raises(ApiError) as e:
        await client.update("configmaps", stale)
    assert e.value.conflict
    assert e.value.body["message"] == ('Operation cannot be fulfilled on configmaps "c": the object has been '
                                       "modified; please apply your changes to the latest version and try again")
    no_rv = {"metadata": {"name": "c", "namespace": "default"}, "data": {"v": "4"}}
    assert (await client.update("configmaps", no_rv))["data"] == {"v": "4"}


async def test_noop_update_does_not_bump_resource_version(client: Client) -> None:
    cm = await client.create("configmaps", {"metadata": {"name": "c", "namespace": "default"}, "data": {"v": "1"}})
    again = await client.update("configmaps", cm)
    assert again["metadata"]["resourceVersion"] == cm["metadata"]["resourceVersion"]


async def test_put_missing_object_is_404(client: Client) -> None:
    with pytest.raises(ApiError) as e:
        await client.update("configmaps", {"metadata": {"name": "ghost", "namespace": "default"}})
    assert e.value.status == 404


async def test_server_owned_metadata_is_immutable(client: Client) -> None:
    d = await client.create("deployments", deployment("d"))
    changed = json.loads(json.dumps(d))
    changed["metadata"]["creationTimestamp"] = "2000-01-01T00:00:00Z"
    changed["metadata"]["generation"] = 42
    out = await client.update("deployments", changed)
    assert out["metadata"]["creationTimestamp"] == d["metadata"]["creationTimestamp"]
    assert out["metadata"]["generation"] == 1
    changed = json.loads(json.dumps(out))
    changed["metadata"]["uid"] = "someone-else"
    with pytest.raises(ApiError) as e:
        await client.update("deployments", changed)
    assert e.value.status == 409 and "Precondition failed: UID" in e.value.body["message"]


async def test_generation_bumps_only_on_spec_change(client: Client) -> None:
    d = await client.create("deployments", deployment("d"))
    assert d["metadata"]["generation"] == 1
    d["metadata"]["labels"] = {"x": "y"}
    d = await client.update("deployments", d)
    assert d["metadata"]["generation"] == 1
    d["spec"]["replicas"] = 3
    d = await client.update("deployments", d)
    assert d["metadata"]["generation"] == 2


async def test_pod_generation_since_1_33(client: Client) -> None:
    # Pods keep metadata.generation (KEP-5067): 1 at create, +1 on a spec change only;
    # metadata, status and the binding (spec.nodeName through pods/binding) leave it.
    p = pod("gen")
    p["metadata"]["generation"] = 7
    p = await client.create("pods", p)
    assert p["metadata"]["generation"] == 1
    p["metadata"]["labels"] = {"x": "y"}
    p = await client.update("pods", p)
    assert p["metadata"]["generation"] == 1
    await client.bind(p, "n1")
    p = await client.get("pods", "gen", "default")
    assert p["spec"]["nodeName"] == "n1" and p["metadata"]["generation"] == 1
    p["status"]["phase"] = "Running"
    p = await client.update_status("pods", p)
    assert p["metadata"]["generation"] == 1
    p = await client.patch("pods", "gen", {"spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}},
                           "default", patch_type="strategic")
    assert p["metadata"]["generation"] == 2


async def test_status_subresource_rules(client: Client) -> None:
    d = await client.create("deployments", deployment("d"))
    # Main-resource writes ignore status.
    d["status"] = {"replicas": 7}
    d = await client.update("deployments", d)
    assert d.get("status", {}).get("replicas") is None
    # Status writes change only status.
    d["status"] = {"replicas": 2}
    d["spec"]["replicas"] = 9
    d["metadata"]["labels"] = {"sneaky": "yes"}
    out = await client.update_status("deployments", d)
    assert out["status"]["replicas"] == 2
    assert out["spec"]["replicas"] == 1
    assert "sneaky" not in (out["metadata"].get("labels") or {})
    status = (await client.raw("GET", "/apis/apps/v1/namespaces/default/deployments/d/status"))["status"]
    assert status == {"replicas": 2}


async def test_create_resets_status_but_nodes_keep_theirs(client: Client) -> None:
    p = pod("p")
    p["status"] = {"phase": "Running"}
    assert (await client.create("pods", p))["status"]["phase"] == "Pending"
    n = await client.create("nodes", {"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "4"}}})
    assert n["status"]["capacity"] == {"cpu": "4"}


async def test_dry_run_stores_nothing(api: ApiServer, store: MemoryStore) -> None:
    rev = await store.current_revision()
    resp = await call(api, "POST", "/api/v1/namespaces/default/pods", pod("dry"), query={"dryRun": "All"})
    assert resp.status == 201 and resp.body["metadata"]["name"] == "dry"
    assert await store.current_revision() == rev
    resp = await call(api, "POST", "/api/v1/namespaces/default/pods", pod("dry"), query={"dryRun": "Some"})
    assert resp.status == 400


async def test_namespace_admission(client: Client, api: ApiServer) -> None:
    with pytest.raises(ApiError) as e:
        await client.create("pods", pod("p", ns="missing"))
    assert e.value.status == 404 and e.value.body["message"] == 'namespaces "missing" not found'


async def test_yaml_body(api: ApiServer) -> None:
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n  namespace: default\ndata:\n  when: 2024-01-01\n"
    resp = await call(api, "POST", "/api/v1/namespaces/default/configmaps", body, content_type="application/yaml")
    assert resp.status == 201, resp.body
    assert resp.body["data"]["when"] == "2024-01-01"


BAD_INPUTS: list[tuple[str, str, Any, str, int, str]] = [
    # (id, path, body, content type, code, substring of the message)
    ("pod-without-containers", "/api/v1/namespaces/default/pods",
     {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}, "application/json", 422,
     'Pod "p" is invalid: spec.containers: Required value'),
    ("bad-quantity", "/api/v1/namespaces/default/pods",
     pod("q", resources={}) | {"spec": {"containers": [
         {"name": "c", "image": "i", "resources": {"limits": {"memory": "12XB"}}}]}},
     "application/json", 422, "spec.containers[0].resources.limits"),
    ("long-label", "/api/v1/namespaces/default/configmaps",
     {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "x" * 64}}},
     "application/json", 422, "metadata.labels"),
    ("wrong-api-version", "/api/v1/namespaces/default/pods",
     pod("p") | {"apiVersion": "apps/v1"}, "application/json", 400,
     "the API version in the data (apps/v1) does not match the expected API version (v1)"),
    ("wrong-kind", "/api/v1/namespaces/default/pods",
     pod("p") | {"kind": "Service"}, "application/json", 400, "the kind in the data (Service)"),
    ("namespace-mismatch", "/api/v1/namespaces/default/pods", pod("p", ns="other"), "application/json", 400,
     "does not match the namespace sent on the request"),
    ("malformed-json", "/api/v1/namespaces/default/pods", b'{"kind": "Pod", ', "application/json", 400,
     "could not be decoded as JSON"),
    ("malformed-yaml", "/api/v1/namespaces/default/pods", b"kind: Pod\n  metadata: [", "application/yaml", 400,
     "could not be decoded as YAML"),
    ("not-an-object", "/api/v1/namespaces/default/pods", b"[1, 2]", "application/json", 400, "must be an object"),
    ("empty-body", "/api/v1/namespaces/default/pods", b"", "application/json", 400, "empty"),
    ("cbor", "/api/v1/namespaces/default/pods", b"\xa0", "application/cbor", 415, "application/json"),
    ("garbage-protobuf", "/api/v1/namespaces/default/pods", b"k8s\x00\xff", "application/vnd.kubernetes.protobuf",
     400, "protobuf"),
    ("resource-version-on-create", "/api/v1/namespaces/default/configmaps",
     {"metadata": {"name": "c", "resourceVersion": "5"}}, "application/json", 400,
     "resourceVersion should not be set on objects to be created"),
    ("no-name", "/api/v1/namespaces/default/configmaps", {"metadata": {}}, "application/json", 422,
     "name or generateName is required"),
    ("bad-name", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "Not_Valid"}},
     "application/json", 422, "metadata.name"),
    ("nan", "/api/v1/namespaces/default/configmaps", b'{"metadata": {"name": "c"}, "x": NaN}',
     "application/json", 400, "JSON"),
    ("binary-yaml", "/api/v1/namespaces/default/configmaps", b"metadata: {name: c}\nx: !!binary aGk=\n",
     "application/yaml", 400, "JSON-compatible"),
]


@pytest.mark.parametrize("path,body,ctype,code,msg", [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
async def test_bad_input_gives_status_and_stores_nothing(api: ApiServer, store: MemoryStore, path: str, body: Any,
                                                         ctype: str, code: int, msg: str) -> None:
    rev = await store.current_revision()
    resp = await call(api, "POST", path, body, content_type=ctype)
    assert resp.status == code, resp.body
    assert resp.body["kind"] == "Status" and resp.body["status"] == "Failure" and resp.body["code"] == code
    assert msg in resp.body["message"], resp.body["message"]
    assert await store.current_revision() == rev


async def test_invalid_has_field_causes(api: ApiServer) -> None:
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "x" * 64}}}
    resp = await call(api, "POST", "/api/v1/namespaces/default/configmaps", bad)
    causes = resp.body["details"]["causes"]
    assert any(c["field"] == "metadata.labels" and c["reason"] == "FieldValueInvalid" for c in causes), causes
    assert resp.body["details"]["kind"] == "ConfigMap" and resp.body["details"]["name"] == "c"


@pytest.mark.parametrize("mode,status,warn", [("Strict", 400, False), ("Warn", 201, True), ("Ignore", 201, False)])
async def test_field_validation(api: ApiServer, mode: str, status: int, warn: bool) -> None:
    body = pod("fv")
    body["spec"]["foo"] = 1
    resp = await call(api, "POST", "/api/v1/namespaces/default/pods", body, query={"fieldValidation": mode})
    assert resp.status == status, resp.body
    if status == 400:
        assert resp.body["message"] == ('Pod in version "v1" cannot be handled as a Pod: '
                                        'strict decoding error: unknown field "spec.foo"')
    assert ("Warning" in resp.headers) == warn
    if warn:
        assert 'unknown field \\"spec.foo\\"' in resp.headers["Warning"]


async def test_strict_rejects_duplicate_fields(api: ApiServer) -> None:
    body = b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "name": "d"}}'
    resp = await call(api, "POST", "/api/v1/namespaces/default/configmaps", body, query={"fieldValidation": "Strict"})
    assert resp.status == 400 and 'duplicate field "name"' in resp.body["message"]


@pytest.mark.parametrize("method,path,code", [
    ("GET", "/api/v1/namespaces/default/widgets", 404),
    ("GET", "/apis/apps/v2/namespaces/default/deployments", 404),
    ("GET", "/apis/nope.io/v1/things", 404),
    ("GET", "/api/v1/namespaces/default/pods/p/nonsense", 404),
    ("GET", "/api/v1/namespaces/default/nodes", 404),
    ("GET", "/nothing/here", 404),
    ("POST", "/api/v1/namespaces/default/pods/p", 405),
    ("PUT", "/api/v1/namespaces/default/pods", 405),
])
async def test_routing_errors(api: ApiServer, method: str, path: str, code: int) -> None:
    resp = await call(api, method, path, {} if method != "GET" else None)
    assert resp.status == code
    assert resp.body["kind"] == "Status" and resp.body["code"] == code
    if code == 404:
        assert resp.body["message"] == "the server could not find the requested resource"


async def test_put_name_mismatch(api: ApiServer, client: Client) -> None:
    await client.create("configmaps", {"metadata": {"name": "a", "namespace": "default"}})
    resp = await call(api, "PUT", "/api/v1/namespaces/default/configmaps/a",
                      {"metadata": {"name": "b", "namespace": "default"}})
    assert resp.status == 400 and "does not match the name on the URL" in resp.body["message"]


async def test_events_share_storage_across_groups(client: Client) -> None:
    core = await client.create("events", {
        "metadata": {"name": "e1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Started", "message": "hello", "type": "Normal", "source": {"component": "kubelet"}})
    new = await client.get("events.events.k8s.io", "e1", "default")
    assert new["apiVersion"] == "events.k8s.io/v1"
    assert new["note"] == "hello" and new["regarding"]["name"] == "p"
    assert new["metadata"]["resourceVersion"] == core["metadata"]["resourceVersion"]
    created = await client.create("events.events.k8s.io", {
        "metadata": {"name": "e2", "namespace": "default"}, "eventTime": "2024-01-01T00:00:00.000000Z",
        "reportingController": "k8py/scheduler", "reportingInstance": "s1", "action": "Scheduling",
        "reason": "Scheduled", "note": "bound", "type": "Normal",
        "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}})
    assert created["note"] == "bound"
    back = await client.get("events", "e2", "default")
    assert back["message"] == "bound" and back["involvedObject"]["name"] == "p"
    assert back["source"]["component"] == "k8py/scheduler"


async def test_internal_errors_are_500_status(api: ApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    async def boom(*a: Any, **k: Any) -> Any:
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(api.registry, "get", boom)
    resp = await call(api, "GET", "/api/v1/namespaces/default/pods/x")
    assert resp.status == 500 and resp.body["reason"] == "InternalError"
    assert "disk on fire" in resp.body["message"]


async def test_status_writes_record_managed_fields(client: Client) -> None:
    p = await client.create("pods", pod("mf"))
    p["status"] = {"phase": "Running", "podIP": "10.42.0.9", "conditions": [{"type": "Ready", "status": "True"}]}
    out = await client.update_status("pods", p)
    entries = [m for m in out["metadata"]["managedFields"] if m.get("subresource") == "status"]
    assert len(entries) == 1 and entries[0]["manager"] == "k8py" and "f:status" in entries[0]["fieldsV1"]


@pytest.mark.parametrize("manager", ["kubelet", "k8py"])
def test_status_view_recording_equals_whole_object_recording(manager: str) -> None:
    from k8py.api.apply import record_update
    from k8py.apiserver.machinery import record_status_update
    old = record_update(None, pod("p") | {"status": {"phase": "Pending"}}, "k8py", 0.0)
    new = json.loads(json.dumps(old))
    new["status"] = {"phase": "Running", "podIP": "10.0.0.1",
                     "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0}]}
    whole = record_update(old, new, manager, 1.0, "status")
    fast = record_status_update(old, new, manager, 1.0)
    assert fast == whole


async def test_put_creates_kinds_that_allow_it_even_when_racing(client: Client, store: MemoryStore,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    real_get = store.get

    async def slow_get(key: str) -> Any:
        kv = await real_get(key)
        await asyncio.sleep(0)  # let the other PUTs read too: all of them see no object
        return kv
    monkeypatch.setattr(store, "get", slow_get)
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "node-1", "namespace": "kube-node-lease"}, "spec": {"holderIdentity": "node-1"}}
    outs = await asyncio.gather(*(client.update("leases", json.loads(json.dumps(lease))) for _ in range(5)))
    assert len({o["metadata"]["uid"] for o in outs}) == 1
    with pytest.raises(ApiError) as e:
        await client.update("configmaps", {"metadata": {"name": "nope", "namespace": "default"}})
    assert e.value.not_found


async def test_type_error_cause_is_type_invalid(api: ApiServer) -> None:
    bad = deployment("typed")
    bad["spec"]["replicas"] = "string"
    resp = await call(api, "POST", "/apis/apps/v1/namespaces/default/deployments", bad)
    assert resp.status == 422, resp.body
    causes = resp.body["details"]["causes"]
    want = {"reason": "FieldValueTypeInvalid", "field": "spec.replicas",
            "message": 'Invalid value: "string": spec.replicas in body must be of type integer: "string"'}
    assert want in causes, causes
    assert 'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer' \
        in resp.body["message"], resp.body["message"]
    assert "FieldValueTypeInvalid:" not in resp.body["message"]
