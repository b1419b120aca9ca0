"""networking.k8s.io/v1 Ingress and IngressClass: CRUD, discovery, validation (422 naming
the field), the `kubectl get ingress` table."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from k8py.apiserver.server import ApiServer

from apiserver_helpers import call

NET = "/apis/networking.k8s.io/v1"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def ingress(name: str = "web", **spec: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"rules": [{"host": "a.example.com", "http": {"paths": [
        {"path": "/", "pathType": "Prefix",
         "backend": {"service": {"name": "svc-a", "port": {"number": 80}}}}]}}]}
    s.update(spec)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name}, "spec": s}


def _path0(obj: dict[str, Any]) -> dict[str, Any]:
    p: dict[str, Any] = obj["spec"]["rules"][0]["http"]["paths"][0]
    return p


def _set(field: str, value: Any) -> dict[str, Any]:
    obj = ingress()
    p = _path0(obj)
    if value is None:
        p.pop(field)
    else:
        p[field] = value
    return obj


def _svc(**svc: Any) -> dict[str, Any]:
    return _set("backend", {"service": svc})


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("no-pathtype", _set("pathType", None), "spec.rules[0].http.paths[0].pathType: Required value"),
    ("bad-pathtype", _set("pathType", "Regex"),
     'spec.rules[0].http.paths[0].pathType: Unsupported value: "Regex"'),
    ("relative-path", _set("path", "api"), 'spec.rules[0].http.paths[0].path: Invalid value: "api": must be an '
                                           "absolute path"),
    ("no-backend", _set("backend", {}), "spec.rules[0].http.paths[0].backend: Invalid value"),
    ("bad-service-name", _svc(name="Svc_A", port={"number": 80}),
     'spec.rules[0].http.paths[0].backend.service.name: Invalid value: "Svc_A"'),
    ("no-port", _svc(name="svc-a", port={}), "spec.rules[0].http.paths[0].backend.service.port: Required value"),
    ("both-ports", _svc(name="svc-a", port={"number": 80, "name": "http"}),
     "spec.rules[0].http.paths[0].backend.service.port: Invalid value"),
    ("ip-host", ingress(rules=[{"host": "10.0.0.1"}]), 'spec.rules[0].host: Invalid value: "10.0.0.1": must be a '
                                                       "DNS name, not an IP address"),
    ("bad-tls-host", ingress(tls=[{"hosts": ["Bad_Host"], "secretName": "tls"}]),
     'spec.tls[0].hosts[0]: Invalid value: "Bad_Host"'),
    ("empty", ingress(rules=[]), "spec: Invalid value"),
]


@pytest.mark.parametrize("obj,needle", [(o, n) for _, o, n in BAD], ids=[i for i, _, _ in BAD])
async def test_bad_ingress_is_422_naming_the_field(api: ApiServer, obj: dict[str, Any], needle: str) -> None:
    r = await call(api, "POST", f"{NET}/namespaces/default/ingresses", obj)
    assert r.status == 422, r.body
    assert needle in r.body["message"]
    r = await call(api, "GET", f"{NET}/namespaces/default/ingresses")
    assert r.body["items"] == []


async def test_ingress_crud_and_table(api: ApiServer) -> None:
    obj = ingress(ingressClassName="k8py", tls=[{"hosts": ["a.example.com"], "secretName": "tls"}])
    obj["spec"]["rules"].append(copy.deepcopy(obj["spec"]["rules"][0]))
    obj["spec"]["rules"][1]["host"] = "b.example.com"
    r = await call(api, "POST", f"{NET}/namespaces/default/ingresses", obj)
    assert r.status == 201, r.body
    st = {"status": {"loadBalancer": {"ingress": [{"ip": "127.0.100.254"}]}}}
    r = await call(api, "PATCH", f"{NET}/namespaces/default/ingresses/web/status", st,
                   content_type="application/merge-patch+json")
    assert r.status == 200, r.body
    r = await call(api, "GET", f"{NET}/namespaces/default/ingresses", accept=TABLE)
    assert [c["name"] for c in r.body["columnDefinitions"]] == ["Name", "Class", "Hosts", "Address", "Ports", "Age"]
    assert r.body["rows"][0]["cells"][:5] == ["web", "k8py", "a.example.com,b.example.com", "127.0.100.254",
                                              "80, 443"]
    r = await call(api, "DELETE", f"{NET}/namespaces/default/ingresses/web")
    assert r.status == 200


async def test_ingressclass_controller_is_required_and_fixed(api: ApiServer) -> None:
    cls = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "c"}, "spec": {}}
    r = await call(api, "POST", f"{NET}/ingressclasses", cls)
    assert r.status == 422 and "spec.controller: Required value" in r.body["message"]
    cls["spec"]["controller"] = "k8py.io/ingress-nginx"
    r = await call(api, "POST", f"{NET}/ingressclasses", cls)
    assert r.status == 201, r.body
    upd = r.body
    upd["spec"]["controller"] = "other.io/x"
    r = await call(api, "PUT", f"{NET}/ingressclasses/c", upd)
    assert r.status == 422 and "spec.controller" in r.body["message"]
    r = await call(api, "GET", f"{NET}/ingressclasses", accept=TABLE)
    assert [c["name"] for c in r.body["columnDefinitions"]] == ["Name", "Controller", "Parameters", "Age"]


async def test_discovery_lists_the_networking_group(api: ApiServer) -> None:
    r = await call(api, "GET", NET)
    assert r.status == 200
    names = {x["name"] for x in r.body["resources"]}
    assert {"ingresses", "ingresses/status", "ingressclasses"} <= names
    r = await call(api, "GET", "/openapi/v3/apis/networking.k8s.io/v1")
    body = json.loads(r.body) if isinstance(r.body, bytes) else r.body
    assert r.status == 200 and "io.k8s.api.networking.v1.Ingress" in body["components"]["schemas"]


def _cls(name: str, default: bool) -> dict[str, Any]:
    ann = {"ingressclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": name, "annotations": ann}, "spec": {"controller": "example.com/" + name}}


async def test_default_ingress_class_admission(api: ApiServer) -> None:
    path = f"{NET}/namespaces/default/ingresses"
    r = await call(api, "POST", path, ingress("before"))
    assert "ingressClassName" not in r.body["spec"]  # no default class yet: left alone
    await call(api, "POST", f"{NET}/ingressclasses", _cls("plain", False))
    await call(api, "POST", f"{NET}/ingressclasses", _cls("dflt", True))
    r = await call(api, "POST", path, ingress("after"))
    assert r.body["spec"]["ingressClassName"] == "dflt"
    r = await call(api, "POST", path, ingress("chosen", ingressClassName="plain"))
    assert r.body["spec"]["ingressClassName"] == "plain"
    legacy = ingress("legacy")
    legacy["metadata"]["annotations"] = {"kubernetes.io/ingress.class": "plain"}
    r = await call(api, "POST", path, legacy)
    assert "ingressClassName" not in r.body["spec"]
