"""The nginx config rendered from Ingresses, Services, EndpointSlices and Secrets:
which server (host) and location (path) sends where, table-driven."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from k8py.ingress.render import Settings, State, render, serves

S = Settings(address="127.0.100.254", http_port=80, https_port=443, prefix="/d", certs_dir="/d/certs")


def path(p: str, svc: str = "svc-a", ptype: str = "Prefix", port: Any = 80) -> dict[str, Any]:
    ref = {"number": port} if isinstance(port, int) else {"name": port}
    return {"path": p, "pathType": ptype, "backend": {"service": {"name": svc, "port": ref}}}


def ing(name: str = "web", ts: str = "2026-01-01T00:00:00Z", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "creationTimestamp": ts}, "spec": spec}


def rule(host: str, *paths: dict[str, Any]) -> dict[str, Any]:
    return {"host": host, "http": {"paths": list(paths)}}


def service(name: str, ip: str, port: int = 80, target: int = 8080, pname: str = "",
            ready: bool | None = True) -> tuple[dict[str, Any], dict[str, Any]]:
    sp: dict[str, Any] = {"port": port, "targetPort": target, **({"name": pname} if pname else {})}
    cond = {} if ready is None else {"ready": ready}
    sl = {"metadata": {"name": f"{name}-x", "namespace": "default", "labels": {"kubernetes.io/service-name": name}},
          "ports": [{"port": target, **({"name": pname} if pname else {})}],
          "endpoints": [{"addresses": [ip], "conditions": cond}]}
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {"ports": [sp]}}, sl


def state(ingresses: list[dict[str, Any]], *svcs: tuple[dict[str, Any], dict[str, Any]],
          secrets: dict[str, Any] | None = None) -> State:
    st = State(ingresses=ingresses, secrets=secrets or {})
    for svc, sl in svcs:
        st.services[f"default/{svc['metadata']['name']}"] = svc
        st.slices.setdefault(f"default/{svc['metadata']['name']}", []).append(sl)
    return st


def servers(conf: str) -> dict[str, dict[str, str]]:
    """server_name -> {location key: body}, from the rendered text."""
    out: dict[str, dict[str, str]] = {}
    for block in conf.split("  server {")[1:]:
        name = re.search(r"server_name (\S+);", block)
        assert name
        out[name.group(1)] = dict(re.findall(r"location (.+?) \{ (.+?) \}", block))
    return out


def upstreams(conf: str) -> dict[str, list[str]]:
    return {m.group(1): re.findall(r"server (\S+);", m.group(2))
            for m in re.finditer(r"upstream (\S+) \{(.*?)\}", conf, re.S)}


A, B = service("svc-a", "10.42.0.5"), service("svc-b", "10.42.0.6")
UP_A, UP_B = "proxy_pass http://default-svc-a-80;", "proxy_pass http://default-svc-b-80;"

CASES: list[tuple[str, State, str, dict[str, str]]] = [
    ("two-hosts", state([ing(rules=[rule("a.example.com", path("/")), rule("b.example.com", path("/", "svc-b"))])],
                        A, B), "a.example.com", {"/": UP_A}),
    ("prefix-element-wise", state([ing(rules=[rule("a.example.com", path("/api/", "svc-b"), path("/"))])], A, B),
     "a.example.com", {"= /api": UP_B, "/api/": UP_B, "/": UP_A}),
    ("exact", state([ing(rules=[rule("a.example.com", path("/login", "svc-b", "Exact"))])], A, B),
     "a.example.com", {"= /login": UP_B, "/": "return 404;"}),
    ("exact-wins-over-prefix-of-same-path",
     state([ing(rules=[rule("h.io", path("/x", "svc-b", "Exact"), path("/x", "svc-a"))])], A, B),
     "h.io", {"= /x": UP_B, "/x/": UP_A, "/": "return 404;"}),
    ("implementation-specific-as-prefix",
     state([ing(rules=[rule("h.io", path("/docs", "svc-b", "ImplementationSpecific"))])], A, B),
     "h.io", {"= /docs": UP_B, "/docs/": UP_B, "/": "return 404;"}),
    ("missing-service-503-others-kept",
     state([ing(rules=[rule("h.io", path("/gone", "nope"), path("/", "svc-a"))])], A), "h.io",
     {"= /gone": "return 503;", "/gone/": "return 503;", "/": UP_A}),
    ("no-ready-endpoints-503",
     state([ing(rules=[rule("h.io", path("/"))])], service("svc-a", "10.42.0.5", ready=False)),
     "h.io", {"/": "return 503;"}),
    ("unknown-port-503", state([ing(rules=[rule("h.io", path("/", port=81))])], A), "h.io", {"/": "return 503;"}),
    ("named-port", state([ing(rules=[rule("h.io", path("/", port="http"))])],
                         service("svc-a", "10.42.0.5", pname="http")), "h.io", {"/": UP_A}),
    ("default-backend-catch-all", state([ing(defaultBackend={"service": {"name": "svc-b", "port": {"number": 80}}},
                                             rules=[rule("h.io", path("/api"))])], A, B),
     "_", {"/": UP_B}),
    ("default-backend-for-unmatched-paths-of-a-host",
     state([ing(defaultBackend={"service": {"name": "svc-b", "port": {"number": 80}}},
                rules=[rule("h.io", path("/api"))])], A, B), "h.io", {"= /api": UP_A, "/api/": UP_A, "/": UP_B}),
    ("hostless-rule-on-catch-all", state([ing(rules=[{"http": {"paths": [path("/x")]}}])], A), "_",
     {"= /x": UP_A, "/x/": UP_A, "/": "return 404;"}),
    ("oldest-ingress-wins-a-conflict",
     state([ing("new", "2026-02-01T00:00:00Z", rules=[rule("h.io", path("/", "svc-b"))]),
            ing("old", "2026-01-01T00:00:00Z", rules=[rule("h.io", path("/", "svc-a"))])], A, B),
     "h.io", {"/": UP_A}),
    ("wildcard-host-one-label", state([ing(rules=[rule("*.example.com", path("/"))])], A),
     r"~^[^.]+\.example\.com$", {"/": UP_A}),
    ("nothing-served-404", state([]), "_", {"/": "return 404;"}),
    ("odd-characters-quoted", state([ing(rules=[rule("h.io", path("/a;b{c}$d", ptype="ImplementationSpecific"))])], A),
     "h.io", {'= "/a;b{c}$d"': UP_A, '"/a;b{c}$d/"': UP_A, "/": "return 404;"}),
    ("unrenderable-path-skipped", state([ing(rules=[rule("h.io", path('/a"b'), path("/x y"), path("/ok"))])], A),
     "h.io", {"= /ok": UP_A, "/ok/": UP_A, "/": "return 404;"}),
]


@pytest.mark.parametrize("st,host,want", [(s, h, w) for _, s, h, w in CASES], ids=[c[0] for c in CASES])
def test_routes(st: State, host: str, want: dict[str, str]) -> None:
    conf = render(st, S).config
    assert servers(conf)[host] == want


def test_upstreams_are_ready_endpoints_on_the_target_port() -> None:
    svc, sl = service("svc-a", "10.42.0.5")
    sl["endpoints"] += [{"addresses": ["10.42.0.7"]},  # ready unset counts as ready
                        {"addresses": ["10.42.0.8"], "conditions": {"ready": False}}]
    conf = render(state([ing(rules=[rule("h.io", path("/"))])], (svc, sl)), S).config
    assert upstreams(conf) == {"default-svc-a-80": ["10.42.0.5:8080", "10.42.0.7:8080"]}


def _tls_secret(crt: bytes, key: bytes) -> dict[str, Any]:
    return {"metadata": {"name": "tls", "namespace": "default"}, "type": "kubernetes.io/tls",
            "data": {"tls.crt": base64.b64encode(crt).decode(), "tls.key": base64.b64encode(key).decode()}}


def test_tls_hosts_get_their_secret_certificate() -> None:
    st = state([ing(rules=[rule("a.io", path("/")), rule("b.io", path("/"))],
                    tls=[{"hosts": ["a.io"], "secretName": "tls"}])], A, secrets={})
    st.secrets["default/tls"] = _tls_secret(b"CRT", b"KEY")
    r = render(st, S)
    assert sorted(r.files.values()) == [b"CRT", b"KEY"]
    a = r.config.split("server_name a.io;")[1].split("}\n")[0]
    b = r.config.split("server_name b.io;")[1].split("}\n")[0]
    crt = next(n for n, v in r.files.items() if v == b"CRT")
    assert "listen 127.0.100.254:443 ssl;" in a and f"ssl_certificate /d/certs/{crt};" in a
    assert "443" not in b  # b.io has no certificate: HTTPS for it is the catch-all's
    st.secrets["default/tls"] = _tls_secret(b"CRT2", b"KEY")
    assert render(st, S).config != r.config  # a renewed certificate changes the config text


def test_missing_tls_secret_serves_http_only() -> None:
    st = state([ing(rules=[rule("a.io", path("/"))], tls=[{"hosts": ["a.io"], "secretName": "none"}])], A)
    r = render(st, S)
    assert r.files == {} and "ssl;" not in r.config.split("server_name a.io;")[0].rsplit("server {", 1)[1]


def test_same_inputs_same_bytes() -> None:
    st = state([ing(rules=[rule("a.io", path("/")), rule("b.io", path("/x", "svc-b"))])], A, B)
    assert render(st, S).config == render(st, S).config


CLS = [{"metadata": {"name": "k8py", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
        "spec": {"controller": "k8py.io/ingress-nginx"}},
       {"metadata": {"name": "other"}, "spec": {"controller": "example.com/other"}}]
SERVES = [
    ("our-class", {"ingressClassName": "k8py"}, {}, True),
    ("other-class", {"ingressClassName": "other"}, {}, False),
    ("unknown-class", {"ingressClassName": "nope"}, {}, False),
    ("no-class-default", {}, {}, True),
    ("legacy-annotation", {}, {"kubernetes.io/ingress.class": "other"}, False),
]


@pytest.mark.parametrize("spec,ann,want", [(s, a, w) for _, s, a, w in SERVES], ids=[c[0] for c in SERVES])
def test_serves_by_class(spec: dict[str, Any], ann: dict[str, str], want: bool) -> None:
    obj = {"metadata": {"name": "i", "namespace": "default", "annotations": ann}, "spec": spec}
    assert serves(obj, CLS) is want
