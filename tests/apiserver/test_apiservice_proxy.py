"""APIServices backed by a Service (apiserver/aggregator.py) against a loopback HTTPS backend
behind a Service and its Endpoints: requests proxied with the user in X-Remote-User/-Group,
discovery (legacy and aggregated) listing the backend's resources, the Available condition
following the backend (Passed, MissingEndpoints, ServiceNotFound), 503 when it is gone, and
the local metrics.k8s.io still served in-process."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from k8py.api.request import ApiRequest
from k8py.apiserver import certs
from k8py.apiserver.server import ApiServer

from apiserver_helpers import call

GV = "/apis/demo.k8py.test/v1"
APISERVICE = "/apis/apiregistration.k8s.io/v1/apiservices/v1.demo.k8py.test"
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


class Backend:
    def __init__(self) -> None:
        self.port = 0
        self.ca = ""
        self.seen: list[dict[str, Any]] = []

    async def serve(self, req: web.Request) -> web.Response:
        self.seen.append({"path": req.path, "query": dict(req.query), "user": req.headers.get("X-Remote-User"),
                          "groups": req.headers.getall("X-Remote-Group", []),
                          "authorization": req.headers.get("Authorization")})
        if req.path == GV:
            return web.json_response({"kind": "APIResourceList", "apiVersion": "v1",
                                      "groupVersion": "demo.k8py.test/v1",
                                      "resources": [{"name": "flunders", "singularName": "flunder", "namespaced": True,
                                                     "kind": "Flunder", "verbs": ["get", "list"]},
                                                    {"name": "flunders/status", "singularName": "", "namespaced": True,
                                                     "kind": "Flunder", "verbs": ["get"]}]})
        if req.query.get("watch") == "true":
            out = web.StreamResponse(headers={"Content-Type": "application/json"})
            await out.prepare(req)
            await out.write(b'{"type":"ADDED","object":{"metadata":{"name":"first"}}}\n')
            try:
                for _ in range(300):  # open until its client goes (a write then fails)
                    await asyncio.sleep(0.05)
                    await out.write(b"\n")
            except ConnectionError:
                pass
            return out  # type: ignore[return-value]
        return web.json_response({"kind": "FlunderList", "apiVersion": "demo.k8py.test/v1", "metadata": {},
                                  "items": [{"metadata": {"name": req.headers.get("X-Remote-User", "")}}]})


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[Backend]:
    pki = certs.ensure_pki(tmp_path, sans=["demo.default.svc"])
    b = Backend()
    b.ca = base64.b64encode(pki.ca_cert.read_bytes()).decode()
    app = web.Application()
    app.router.add_get("/{path:.*}", b.serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=pki.server_ssl_context())
    await site.start()
    b.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield b
    await runner.cleanup()


async def _available(api: ApiServer, want: tuple[str, str]) -> dict[str, Any]:
    cond: dict[str, Any] = {}
    for _ in range(500):
        got = (await call(api, "GET", APISERVICE)).body
        cond = next((c for c in (got.get("status") or {}).get("conditions") or [] if c["type"] == "Available"), {})
        if (cond.get("status"), cond.get("reason")) == want:
            return cond
        await asyncio.sleep(0.02)
    raise AssertionError(f"Available never became {want}: {cond}")


@pytest.fixture
async def registered(api: ApiServer, backend: Backend) -> Backend:
    svc = {"kind": "Service", "metadata": {"name": "demo"}, "spec": {"ports": [{"port": 443, "targetPort": 8443}]}}
    eps = {"kind": "Endpoints", "metadata": {"name": "demo"},
           "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": backend.port}]}]}
    for path, obj in (("services", svc), ("endpoints", eps)):
        resp = await call(api, "POST", f"/api/v1/namespaces/default/{path}", obj)
        assert resp.status == 201, resp.body
    apisvc = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
              "metadata": {"name": "v1.demo.k8py.test"},
              "spec": {"group": "demo.k8py.test", "version": "v1", "groupPriorityMinimum": 1000, "versionPriority": 15,
                       "service": {"name": "demo", "namespace": "default"}, "caBundle": backend.ca}}
    resp = await call(api, "POST", "/apis/apiregistration.k8s.io/v1/apiservices", apisvc)
    assert resp.status == 201, resp.body
    await _available(api, ("True", "Passed"))
    return backend


async def test_requests_are_proxied_with_the_user(api: ApiServer, registered: Backend) -> None:
    resp = await call(api, "GET", f"{GV}/namespaces/default/flunders", query={"limit": "5"})
    assert resp.status == 200, resp.body
    assert json.loads(resp.body)["items"] == [{"metadata": {"name": "system:admin"}}]
    last = registered.seen[-1]
    assert last == {"path": f"{GV}/namespaces/default/flunders", "query": {"limit": "5"}, "user": "system:admin",
                    "groups": ["system:masters"], "authorization": None}


async def test_watch_is_streamed(api: ApiServer, registered: Backend) -> None:
    resp = await api.handle(ApiRequest("GET", f"{GV}/namespaces/default/flunders", query={"watch": "true"},
                                       headers={"accept": "application/json"}))
    assert resp.status == 200 and resp.stream is not None
    first = await asyncio.wait_for(resp.stream.__anext__(), 10)
    assert json.loads(first) == {"type": "ADDED", "object": {"metadata": {"name": "first"}}}
    await resp.stream.aclose()  # type: ignore[attr-defined]


async def test_discovery_includes_the_group(api: ApiServer, registered: Backend) -> None:
    groups = (await call(api, "GET", "/apis")).body["groups"]
    assert {"name": "demo.k8py.test", "versions": [{"groupVersion": "demo.k8py.test/v1", "version": "v1"}],
            "preferredVersion": {"groupVersion": "demo.k8py.test/v1", "version": "v1"}} in groups
    assert (await call(api, "GET", "/apis/demo.k8py.test")).body["name"] == "demo.k8py.test"
    listed = json.loads((await call(api, "GET", GV)).body)  # the backend's own document, proxied
    assert listed["resources"][0]["name"] == "flunders"
    agg = json.loads((await call(api, "GET", "/apis", accept=AGGREGATED)).body)
    demo = next(g for g in agg["items"] if g["metadata"]["name"] == "demo.k8py.test")
    res = demo["versions"][0]["resources"][0]
    assert (res["resource"], res["scope"], res["verbs"]) == ("flunders", "Namespaced", ["get", "list"])
    assert [s["subresource"] for s in res["subresources"]] == ["status"]


async def test_availability_follows_the_backend(api: ApiServer, registered: Backend) -> None:
    await call(api, "DELETE", "/api/v1/namespaces/default/endpoints/demo")
    cond = await _available(api, ("False", "MissingEndpoints"))
    assert cond["message"] == 'endpoints for service/demo in "default" have no addresses with port name ""'
    resp = await call(api, "GET", f"{GV}/namespaces/default/flunders")
    assert (resp.status, resp.body, resp.content_type) == (503, b"service unavailable\n", "text/plain; charset=utf-8")
    assert "demo.k8py.test" not in json.dumps(json.loads((await call(api, "GET", "/apis", accept=AGGREGATED)).body))
    await call(api, "DELETE", "/api/v1/namespaces/default/services/demo")
    cond = await _available(api, ("False", "ServiceNotFound"))
    assert cond["message"] == 'service/demo in "default" is not present'
    table = (await call(api, "GET", "/apis/apiregistration.k8s.io/v1/apiservices",
                        accept="application/json;as=Table;v=v1;g=meta.k8s.io")).body
    row = next(r["cells"] for r in table["rows"] if r["cells"][0] == "v1.demo.k8py.test")
    assert row[1:3] == ["default/demo", "False (ServiceNotFound)"]


async def test_local_metrics_apiservice_stays_in_process(api: ApiServer, registered: Backend) -> None:
    local = (await call(api, "GET", "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io")).body
    assert local["spec"].get("service") is None
    assert (await call(api, "GET", "/apis/metrics.k8s.io/v1beta1")).status == 200
    assert not any(s["path"].startswith("/apis/metrics.k8s.io") for s in registered.seen)


def _apiservice(**spec: Any) -> dict[str, Any]:
    base = {"group": "demo.k8py.test", "version": "v1", "groupPriorityMinimum": 1000, "versionPriority": 15,
            "service": {"name": "demo", "namespace": "default"}}
    return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1.demo.k8py.test"},
            "spec": {k: v for k, v in {**base, **spec}.items() if v is not None}}


BAD = [
    ({"version": "v2"}, 'metadata.name: Invalid value: "v1.demo.k8py.test": must be `spec.version+"."+spec.group`: '
     '"v2.demo.k8py.test"'),
    ({"groupPriorityMinimum": 0}, "spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000"),
    ({"versionPriority": 1001}, "spec.versionPriority: Invalid value: 1001: must be positive and less than 1000"),
    ({"service": {"name": "demo"}}, "spec.service.namespace: Required value"),
    ({"service": {"name": "demo", "namespace": "default", "port": 70000}},
     "spec.service.port: Invalid value: 70000: port is not valid: must be between 1 and 65535, inclusive"),
    ({"insecureSkipTLSVerify": True, "caBundle": "Zm9v"},
     "spec.insecureSkipTLSVerify: Invalid value: true: may not be true if caBundle is present"),
    ({"service": None, "insecureSkipTLSVerify": True},
     "spec.insecureSkipTLSVerify: Invalid value: true: local APIServices may not have insecureSkipTLSVerify"),
]


@pytest.mark.parametrize(("spec", "want"), BAD)
async def test_apiservice_validated(api: ApiServer, spec: dict[str, Any], want: str) -> None:
    resp = await call(api, "POST", "/apis/apiregistration.k8s.io/v1/apiservices", _apiservice(**spec))
    assert resp.status == 422, resp.body
    assert want in resp.body["message"], resp.body["message"]
