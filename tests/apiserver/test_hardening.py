"""A hardened API: the YAML alias limit (CVE-2019-11253), body and object sizes, max
in-flight requests and the request timeout, as kube-apiserver answers them."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from k8py.api.request import ApiRequest, ApiResponse
from k8py.apiserver import certs, codec, limits, storage
from k8py.apiserver.errors import StatusError
from k8py.apiserver.http import HttpFront
from k8py.apiserver.server import ApiServer
from k8py.store.memory import MemoryStore
from tests.apiserver.apiserver_helpers import call, deployment, pod, stored_keys


def laughs(levels: int = 9, width: int = 9, *, kind: str = "ConfigMap") -> str:
    """The "billion laughs" document: each level aliases the one before `width` times."""
    lines = ["apiVersion: v1", f"kind: {kind}", "metadata:", "  name: yaml-bomb", "data:"]
    lines.append("  a: &a [" + ",".join(['"lol"'] * width) + "]")
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"  {cur}: &{cur} [" + ",".join([f"*{prev}"] * width) + "]")
    return "\n".join(lines) + "\n"


MAP_BOMB = "\n".join(
    ["a0: &a0 {x: lol, y: lol}"]
    + [f"a{i}: &a{i} {{x: *a{i - 1}, y: *a{i - 1}, z: *a{i - 1}, w: *a{i - 1}}}" for i in range(1, 16)]) + "\n"
MERGE_BOMB = "\n".join(
    ["a0: &a0 {x0: lol}"]
    + [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]"
       for i in range(1, 12)]) + "\n"
MODEST = "base: &b {image: nginx, ports: [80, 443]}\n" + "".join(f"c{i}: *b\n" for i in range(50))


@pytest.mark.parametrize("doc,refused", [
    (laughs(), True),                        # ~10^9 strings from 446 bytes
    (laughs(levels=5, width=10), True),      # 10^5: still far beyond 99% aliasing
    (MAP_BOMB, True),                        # mappings of mappings
    (MERGE_BOMB, True),
    (laughs(levels=2, width=9), False),      # 90 strings: small, allowed
    (MODEST, False),                         # 50 aliases of a small mapping: allowed
    ("a: &x {b: 1}\nc: *x\nd: [*x, *x]\n", False),
])
def test_alias_expansion_budget(doc: str, refused: bool) -> None:
    t0 = time.perf_counter()
    try:
        d = codec.decode(doc.encode(), "application/yaml")
        outcome = "decoded"
    except StatusError as e:
        assert e.code == 400 and e.reason == "BadRequest"
        assert e.message == "error converting YAML to JSON: yaml: document contains excessive aliasing"
        outcome = "refused"
    took = time.perf_counter() - t0
    print(f"{len(doc)} bytes: {outcome} in {took * 1000:.1f} ms")
    assert outcome == ("refused" if refused else "decoded")
    if not refused:
        json.dumps(d.value)


def test_an_anchor_that_contains_itself_is_refused() -> None:
    with pytest.raises(StatusError) as e:
        codec.decode(b"a: &x [1, *x]\n", "application/yaml")
    assert e.value.code == 400 and "contains itself" in e.value.message


async def test_alias_bomb_create_is_400_and_nothing_stored(api: ApiServer, store: MemoryStore) -> None:
    doc = laughs()
    t0 = time.perf_counter()
    resp = await call(api, "POST", "/api/v1/namespaces/default/configmaps", doc, content_type="application/yaml")
    print(f"alias bomb ({len(doc)} bytes) answered {resp.status} in {(time.perf_counter() - t0) * 1000:.1f} ms")
    assert resp.status == 400, resp.body
    assert resp.body["reason"] == "BadRequest"
    assert resp.body["message"].startswith(
        "the object provided is unrecognized (must be of type ConfigMap): "
        "error converting YAML to JSON: yaml: document contains excessive aliasing (")
    assert await stored_keys(store, "/registry/core/configmaps/") == []
    # the same through server-side apply (YAML) and a PUT
    for method, path, ct in [
            ("PATCH", "/api/v1/namespaces/default/configmaps/yaml-bomb?fieldManager=t", "application/apply-patch+yaml"),
            ("PUT", "/api/v1/namespaces/default/configmaps/yaml-bomb", "application/yaml")]:
        p, _, q = path.partition("?")
        resp = await call(api, method, p, doc, content_type=ct, query=dict([q.split("=")]) if q else None)
        assert resp.status == 400 and "excessive aliasing" in resp.body["message"], (method, resp.body)
    assert await stored_keys(store, "/registry/core/configmaps/") == []


def big_labels(n: int) -> dict[str, str]:
    return {f"k{i:06d}": "v" * 30 for i in range(n)}


async def test_objects_over_etcds_limit_are_refused(api: ApiServer, store: MemoryStore) -> None:
    # as kube-apiserver's TestObjectSizeResponses: a Deployment made large by its labels
    dep = deployment("big")
    dep["metadata"]["labels"] = big_labels(40_000)  # about 1.8 MB of JSON, under the 3 MiB body limit
    resp = await call(api, "POST", "/apis/apps/v1/namespaces/default/deployments", dep)
    assert (resp.status, resp.body["reason"], resp.body["message"]) == (
        413, "RequestEntityTooLarge", "etcdserver: request is too large")
    assert await stored_keys(store, "/registry/apps/deployments/") == []
    # an update that would grow an object past the limit leaves it as it was
    cm: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
                          "data": {"x": "small"}}
    assert (await call(api, "POST", "/api/v1/namespaces/default/configmaps", cm)).status == 201
    grow = {"metadata": {"labels": big_labels(40_000)}}
    resp = await call(api, "PATCH", "/api/v1/namespaces/default/configmaps/big", grow,
                      content_type="application/merge-patch+json")
    assert resp.status == 413 and resp.body["message"] == "etcdserver: request is too large"
    got = await call(api, "GET", "/api/v1/namespaces/default/configmaps/big")
    assert got.body["data"] == {"x": "small"} and not got.body["metadata"].get("labels")
    # just under the limit is fine
    dep = deployment("fits")
    dep["metadata"]["labels"] = big_labels(20_000)  # with its managedFields, over 1 MiB stored
    assert (await call(api, "POST", "/apis/apps/v1/namespaces/default/deployments", dep)).status == 201
    kv = await store.get("/registry/apps/deployments/default/fits")
    assert kv is not None and 1024 * 1024 < len(kv.value) <= storage.MAX_OBJECT_BYTES


# -- the HTTPS front -----------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> certs.Pki:
    return certs.ensure_pki(tmp_path_factory.mktemp("data"))


def client_ctx(pki: certs.Pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
    return ctx


async def request(port: int, pki: certs.Pki, method: str, path: str,
                  **kw: Any) -> tuple[int, Any, dict[str, str]]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ctx(pki))) as s:
        async with s.request(method, f"https://127.0.0.1:{port}{path}", **kw) as r:
            raw = await r.read()
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw
            return r.status, body, dict(r.headers)


@pytest.fixture
async def real_front(api: ApiServer, pki: certs.Pki) -> AsyncIterator[HttpFront]:
    f = HttpFront(api.handle, ssl_context=pki.server_ssl_context(), authenticator=None)
    await f.start("127.0.0.1", 0)
    yield f
    await f.close()


async def test_alias_bomb_over_https_while_others_are_served(real_front: HttpFront, pki: certs.Pki,
                                                            store: MemoryStore) -> None:
    doc = laughs().encode()

    async def bomb() -> tuple[int, Any, float]:
        t0 = time.perf_counter()
        status, body, _ = await request(real_front.port, pki, "POST", "/api/v1/namespaces/default/configmaps",
                                        data=doc, headers={"Content-Type": "application/yaml"})
        return status, body, time.perf_counter() - t0

    async def gets() -> list[int]:
        return [(await request(real_front.port, pki, "GET", "/api/v1/namespaces"))[0] for _ in range(5)]

    (status, body, took), got = await asyncio.gather(bomb(), gets())
    print(f"alias bomb over HTTPS answered {status} in {took * 1000:.1f} ms; concurrent GETs: {got}")
    assert status == 400 and "excessive aliasing" in body["message"]
    assert got == [200] * 5
    assert await stored_keys(store, "/registry/core/configmaps/") == []


@pytest.mark.parametrize("size,status", [
    (limits.MAX_REQUEST_BODY + 1, 413),
    (limits.MAX_REQUEST_BODY * 2, 413),
    (limits.MAX_REQUEST_BODY, 400),  # at the limit: read, then refused as not JSON
])
async def test_request_body_limit(real_front: HttpFront, pki: certs.Pki, store: MemoryStore,
                                  size: int, status: int) -> None:
    got, body, _ = await request(real_front.port, pki, "POST", "/api/v1/namespaces/default/configmaps",
                                 data=b"x" * size, headers={"Content-Type": "application/json"})
    assert got == status, body
    if status == 413:
        assert body["reason"] == "RequestEntityTooLarge"
        assert body["message"] == "Request entity too large: limit is 3145728"
    assert await stored_keys(store, "/registry/core/configmaps/") == []


class Slow:
    """A handler whose /slow requests wait until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = 0
        self.completed = 0

    async def handle(self, req: ApiRequest) -> ApiResponse:
        if "slow" in req.path:
            self.started += 1
            await self.release.wait()
            self.completed += 1
        if req.query.get("watch") == "true":
            return ApiResponse(200, stream=self._events())
        return ApiResponse(200, {"kind": "Status", "path": req.path})

    async def _events(self) -> AsyncIterator[Any]:
        yield {"type": "ADDED", "object": {}}


async def eventually(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.01)


async def test_max_inflight_answers_429_and_long_running_are_not_counted(pki: certs.Pki) -> None:
    slow = Slow()
    f = HttpFront(slow.handle, ssl_context=pki.server_ssl_context(), authenticator=None,
                  max_mutating_inflight=1, max_readonly_inflight=1)
    await f.start("127.0.0.1", 0)
    try:
        held_get = asyncio.ensure_future(request(f.port, pki, "GET", "/api/v1/namespaces/default/slow"))
        held_post = asyncio.ensure_future(request(f.port, pki, "POST", "/api/v1/namespaces/default/slow"))
        await eventually(lambda: slow.started == 2)
        for method in ("GET", "DELETE"):
            status, body, headers = await request(f.port, pki, method, "/api/v1/namespaces")
            assert status == 429, (method, body)
            assert headers["Retry-After"] == "1"
            assert (body["reason"], body["message"], body["code"]) == (
                "TooManyRequests", "Too many requests, please try again later.", 429)
        # watches, logs and exec are long-running: not counted
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ctx(pki))) as s:
            async with s.get(f"https://127.0.0.1:{f.port}/api/v1/pods?watch=true") as r:
                assert r.status == 200
                assert json.loads(await r.content.readline())["type"] == "ADDED"
        status, _, _ = await request(f.port, pki, "GET", "/api/v1/namespaces/default/pods/p/log")
        assert status == 200
        slow.release.set()
        assert [r[0] for r in await asyncio.gather(held_get, held_post)] == [200, 200]
        assert (await request(f.port, pki, "GET", "/api/v1/namespaces"))[0] == 200
    finally:
        await f.close()


async def test_request_timeout_answers_504_and_the_work_goes_on(pki: certs.Pki) -> None:
    slow = Slow()
    f = HttpFront(slow.handle, ssl_context=pki.server_ssl_context(), authenticator=None, request_timeout=0.3)
    await f.start("127.0.0.1", 0)
    try:
        status, body, _ = await request(f.port, pki, "POST", "/api/v1/namespaces/default/slow")
        assert status == 504, body
        assert (body["reason"], body["message"]) == (
            "Timeout", "Timeout: request did not complete within requested timeout - context deadline exceeded")
        assert f.inflight.mutating == 0
        # a watch is not timed out: its handler is still pending after twice the timeout
        watch = asyncio.ensure_future(request(f.port, pki, "GET", "/api/v1/slowpods?watch=true", timeout=30))
        await eventually(lambda: slow.started == 2)
        t0 = time.monotonic()
        await eventually(lambda: time.monotonic() - t0 > 2 * f.request_timeout)
        assert not watch.done()
        slow.release.set()
        status, body, _ = await watch
        assert status == 200 and body["type"] == "ADDED"
        assert slow.completed == 2  # the timed-out request finished its work too
    finally:
        await f.close()


@pytest.mark.parametrize("query,default,expected", [
    ({}, 60.0, 60.0), ({"timeout": "5s"}, 60.0, 5.0), ({"timeout": "1m30s"}, 60.0, 60.0),
    ({"timeout": "250ms"}, 60.0, 0.25), ({"timeout": "0"}, 60.0, 60.0), ({"timeout": "bogus"}, 60.0, 60.0),
])
def test_request_timeout_from_query(query: dict[str, str], default: float, expected: float) -> None:
    assert limits.request_timeout(query, default) == expected


@pytest.mark.parametrize("method,path,query,long", [
    ("GET", "/api/v1/pods", {"watch": "true"}, True),
    ("GET", "/api/v1/watch/pods", {}, True),
    ("GET", "/api/v1/namespaces/d/pods/p/log", {}, True),
    ("POST", "/api/v1/namespaces/d/pods/p/exec", {}, True),
    ("GET", "/api/v1/namespaces/d/pods/p/proxy/some/path", {}, True),
    ("GET", "/api/v1/namespaces/d/pods/log", {}, False),  # a pod named "log"
    ("GET", "/api/v1/pods", {}, False),
    ("POST", "/api/v1/namespaces/d/configmaps", {}, False),
])
def test_long_running_requests(method: str, path: str, query: dict[str, str], long: bool) -> None:
    assert limits.is_long_running(method, path, query) is long


# -- decoding: unknown fields and integer ranges ----------------------------------

@pytest.mark.parametrize("query,status,warned", [
    ({}, 201, True),                              # default: Warn, as kube-apiserver
    ({"fieldValidation": "Warn"}, 201, True),
    ({"fieldValidation": "Ignore"}, 201, False),
    ({"fieldValidation": "Strict"}, 400, False),
])
async def test_unknown_fields_are_dropped_with_a_warning(api: ApiServer, store: MemoryStore, query: dict[str, str],
                                                         status: int, warned: bool) -> None:
    body = pod("uf")
    body["spec"]["foo"] = 1
    body["spec"]["containers"][0]["bar"] = {"x": 1}
    resp = await call(api, "POST", "/api/v1/namespaces/default/pods", body, query=query)
    assert resp.status == status, resp.body
    if status == 400:
        assert resp.body["message"] == ('Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
                                        'unknown field "spec.containers[0].bar", unknown field "spec.foo"')
        assert await stored_keys(store, "/registry/core/pods/") == []
        return
    assert ("Warning" in resp.headers) is warned
    if warned:
        assert resp.headers["Warning"] == ('299 - "unknown field \\"spec.containers[0].bar\\"", '
                                           '299 - "unknown field \\"spec.foo\\""')
    kv = await store.get("/registry/core/pods/default/uf")
    assert kv is not None
    stored = json.loads(kv.value)
    assert "foo" not in stored["spec"] and "bar" not in stored["spec"]["containers"][0]
    assert "foo" not in resp.body["spec"]


async def test_unknown_fields_dropped_from_patches_and_updates(api: ApiServer) -> None:
    assert (await call(api, "POST", "/api/v1/namespaces/default/configmaps",
                       {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})).status == 201
    resp = await call(api, "PATCH", "/api/v1/namespaces/default/configmaps/c", {"spec": {"x": 1}, "data": {"a": "b"}},
                      content_type="application/merge-patch+json")
    assert resp.status == 200 and "spec" not in resp.body and resp.body["data"] == {"a": "b"}
    assert resp.headers["Warning"] == '299 - "unknown field \\"spec\\""'
    cur = resp.body
    cur["extra"] = True
    resp = await call(api, "PUT", "/api/v1/namespaces/default/configmaps/c", cur)
    assert resp.status == 200 and "extra" not in resp.body


def _deep(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    cur: Any = obj
    keys = path.split(".")
    for k in keys[:-1]:
        cur = cur[int(k)] if isinstance(cur, list) else cur[k]
    cur[keys[-1]] = value
    return obj


@pytest.mark.parametrize("kind,path,value,message", [
    ("deployment", "spec.replicas", 10 ** 12,
     "json: cannot unmarshal number 1000000000000 into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ("deployment", "spec.replicas", 4294967296,
     "json: cannot unmarshal number 4294967296 into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ("deployment", "spec.replicas", 1e12,
     "json: cannot unmarshal number 1000000000000 into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ("deployment", "spec.replicas", -(2 ** 31) - 1,
     "json: cannot unmarshal number -2147483649 into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ("pod", "spec.containers.0.ports", [{"containerPort": 2 ** 32}],
     "json: cannot unmarshal number 4294967296 into Go struct field ContainerPort.spec.containers.ports.containerPort"
     " of type int32"),
    ("pod", "spec.activeDeadlineSeconds", 2 ** 63,
     "json: cannot unmarshal number 9223372036854775808 into Go struct field PodSpec.spec.activeDeadlineSeconds"
     " of type int64"),
])
async def test_integers_out_of_range_fail_decoding(api: ApiServer, store: MemoryStore, kind: str, path: str,
                                                   value: Any, message: str) -> None:
    if kind == "deployment":
        body, url, k = deployment("big"), "/apis/apps/v1/namespaces/default/deployments", "Deployment"
    else:
        body, url, k = pod("big"), "/api/v1/namespaces/default/pods", "Pod"
    _deep(body, path, value)
    for query in ({}, {"fieldValidation": "Ignore"}, {"fieldValidation": "Strict"}):
        resp = await call(api, "POST", url, body, query=query)
        assert resp.status == 400, resp.body
        assert resp.body["reason"] == "BadRequest"
        assert resp.body["message"] == f'{k} in version "v1" cannot be handled as a {k}: {message}'
    assert not [key for key in await stored_keys(store, "/registry/") if key.endswith("/big")]


async def test_int32_limits_are_accepted(api: ApiServer) -> None:
    resp = await call(api, "POST", "/apis/apps/v1/namespaces/default/deployments", deployment("max", 2 ** 31 - 1))
    assert resp.status == 201, resp.body


# -- watch from a future resourceVersion ----------------------------------------

async def _drive(clock: Any, task: asyncio.Future[Any], step: float = 0.5) -> None:
    """Advance the fake clock until `task` is done."""
    for _ in range(200):
        if task.done():
            return
        await clock.advance(step)
        await asyncio.sleep(0.01)
    raise AssertionError("task did not finish")


async def test_watch_at_a_future_resource_version(api: ApiServer, store: MemoryStore, clock: Any) -> None:
    current = await store.current_revision()
    future = current + 1000
    task = asyncio.ensure_future(call(api, "GET", "/api/v1/namespaces/default/configmaps",
                                      query={"watch": "true", "resourceVersion": str(future)}))
    await _drive(clock, task)
    resp = task.result()
    assert resp.status == 200 and resp.stream is not None
    events = [e async for e in resp.stream]
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert (status["code"], status["reason"], status["message"]) == (
        504, "Timeout", f"Timeout: Too large resource version: {future}, current: {current}")
    assert status["details"] == {"causes": [{"reason": "ResourceVersionTooLarge",
                                             "message": "Too large resource version"}], "retryAfterSeconds": 1}


async def test_watch_at_a_revision_reached_while_waiting(api: ApiServer, store: MemoryStore, clock: Any) -> None:
    current = await store.current_revision()
    task = asyncio.ensure_future(call(api, "GET", "/api/v1/namespaces/default/configmaps",
                                      query={"watch": "true", "resourceVersion": str(current + 1)}))
    await asyncio.sleep(0.05)
    assert not task.done()  # waiting for the store to get there
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later"}}
    assert (await call(api, "POST", "/api/v1/namespaces/default/configmaps", cm)).status == 201
    await _drive(clock, task, step=0.05)
    resp = task.result()
    assert resp.status == 200 and resp.stream is not None
    await resp.stream.aclose()  # type: ignore[attr-defined]
