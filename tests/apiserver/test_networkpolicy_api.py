"""networking.k8s.io/v1 NetworkPolicy: CRUD, defaults (policyTypes, protocol), validation
(422 naming the field, Kubernetes' wording), the `kubectl get networkpolicy` table,
discovery and OpenAPI."""

from __future__ import annotations

import json
from typing import Any

import pytest

from k8py.apiserver.server import ApiServer

from apiserver_helpers import call

NET = "/apis/networking.k8s.io/v1"
PATH = f"{NET}/namespaces/default/networkpolicies"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def policy(name: str = "np", **spec: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"podSelector": {"matchLabels": {"app": "web"}}}
    s.update(spec)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name}, "spec": s}


def _in(ports: Any = None, peers: Any = None) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if ports is not None:
        rule["ports"] = ports
    if peers is not None:
        rule["from"] = peers
    return policy(ingress=[rule])


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("bad-protocol", _in([{"protocol": "ICMP", "port": 80}]),
     'spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"'),
    ("port-zero", _in([{"port": 0}]), "spec.ingress[0].ports[0].port: Invalid value: 0: must be between 1 and "
                                      "65535, inclusive"),
    ("endport-below-port", _in([{"port": 8080, "endPort": 80}]),
     "spec.ingress[0].ports[0].endPort: Invalid value: 8080: must be greater than or equal to `port`"),
    ("endport-named", _in([{"port": "http", "endPort": 90}]),
     "spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric"),
    ("endport-alone", _in([{"endPort": 90}]),
     "spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is not specified"),
    ("bad-port-name", _in([{"port": "Web_Port"}]), 'spec.ingress[0].ports[0].port: Invalid value: "Web_Port"'),
    ("bad-cidr", _in(peers=[{"ipBlock": {"cidr": "10.0.0.300/24"}}]),
     'spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "10.0.0.300/24": must be a valid CIDR value, '
     "(e.g. 10.9.8.0/24 or 2001:db8::/64)"),
    ("no-cidr", _in(peers=[{"ipBlock": {}}]), "spec.ingress[0].from[0].ipBlock.cidr: Required value"),
    ("except-outside", _in(peers=[{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"]}}]),
     'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "10.1.0.0/24": must be a strict subset of `cidr`'),
    ("except-equal", _in(peers=[{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.0.0/16"]}}]),
     'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "10.0.0.0/16": must be a strict subset of `cidr`'),
    ("empty-peer", _in(peers=[{}]), "spec.ingress[0].from[0]: Required value: must specify a peer"),
    ("ipblock-and-selector", _in(peers=[{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]),
     "spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer"),
    ("bad-selector", policy(podSelector={"matchExpressions": [{"key": "a", "operator": "Near"}]}),
     'spec.podSelector.matchExpressions[0].operator: Invalid value: "Near"'),
    ("bad-peer-selector", policy(egress=[{"to": [{"namespaceSelector": {"matchLabels": {"a b": "x"}}}]}]),
     'spec.egress[0].to[0].namespaceSelector.matchLabels: Invalid value: "a b"'),
    ("bad-policy-type", policy(policyTypes=["Sideways"]),
     'spec.policyTypes[0]: Unsupported value: "Sideways": supported values: "Ingress", "Egress"'),
    ("three-policy-types", policy(policyTypes=["Ingress", "Egress", "Ingress"]),
     "spec.policyTypes: Invalid value"),
]


@pytest.mark.parametrize("obj,needle", [(o, n) for _, o, n in BAD], ids=[i for i, _, _ in BAD])
async def test_bad_networkpolicy_is_422_naming_the_field(api: ApiServer, obj: dict[str, Any], needle: str) -> None:
    r = await call(api, "POST", PATH, obj)
    assert r.status == 422, r.body
    assert needle in r.body["message"], r.body["message"]
    r = await call(api, "GET", PATH)
    assert r.body["items"] == []


DEFAULTS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("nothing", {}, ["Ingress"]),
    ("ingress-rules", {"ingress": [{}]}, ["Ingress"]),
    ("egress-rules", {"egress": [{"ports": [{"port": 53}]}]}, ["Ingress", "Egress"]),
    ("explicit", {"policyTypes": ["Egress"]}, ["Egress"]),
]


@pytest.mark.parametrize("spec,types", [(s, t) for _, s, t in DEFAULTS], ids=[i for i, _, _ in DEFAULTS])
async def test_policy_types_are_derived_as_kubernetes_does(api: ApiServer, spec: dict[str, Any],
                                                           types: list[str]) -> None:
    r = await call(api, "POST", PATH, policy(**spec))
    assert r.status == 201, r.body
    assert r.body["spec"]["policyTypes"] == types
    for rule in r.body["spec"].get("egress", []):
        assert all(p["protocol"] == "TCP" for p in rule["ports"])


async def test_networkpolicy_crud_table_and_generation(api: ApiServer) -> None:
    good = policy(ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.1.0/24"]}},
                                     {"namespaceSelector": {}, "podSelector": {"matchLabels": {"r": "x"}}}],
                            "ports": [{"port": 8000, "endPort": 9000}, {"port": "http", "protocol": "UDP"}]}])
    r = await call(api, "POST", PATH, good)
    assert r.status == 201, r.body
    assert r.body["metadata"]["generation"] == 1
    r = await call(api, "POST", PATH, policy("all", podSelector={}))
    assert r.status == 201, r.body
    r = await call(api, "GET", PATH, accept=TABLE)
    assert [c["name"] for c in r.body["columnDefinitions"]] == ["Name", "Pod-Selector", "Age"]
    assert [row["cells"][:2] for row in r.body["rows"]] == [["all", "<none>"], ["np", "app=web"]]
    r = await call(api, "PATCH", f"{PATH}/np", {"spec": {"podSelector": {"matchLabels": {"app": "db"}}}},
                   content_type="application/merge-patch+json")
    assert r.status == 200 and r.body["metadata"]["generation"] == 2
    r = await call(api, "DELETE", f"{PATH}/np")
    assert r.status == 200


async def test_discovery_and_openapi_serve_networkpolicies(api: ApiServer) -> None:
    r = await call(api, "GET", NET)
    res = {x["name"]: x for x in r.body["resources"]}
    assert res["networkpolicies"]["namespaced"] and res["networkpolicies"]["shortNames"] == ["netpol"]
    r = await call(api, "GET", "/openapi/v3/apis/networking.k8s.io/v1")
    body = json.loads(r.body) if isinstance(r.body, bytes) else r.body
    assert "io.k8s.api.networking.v1.NetworkPolicy" in body["components"]["schemas"]
    assert f"{PATH.replace('/default/', '/{namespace}/')}" in body["paths"]
