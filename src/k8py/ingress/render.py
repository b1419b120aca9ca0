"""An nginx config from Ingresses, Services, EndpointSlices and TLS Secrets (pure).

`render(state, settings)` returns the whole config text and the certificate files it
names, so that one sync renders everything (level-triggered) and the same inputs give
the same bytes (the controller reloads only when they change).

Invariants, as Kubernetes specifies Ingress matching:
- a rule's host is matched exactly (case-insensitively, by nginx), `*.example.com`
  matches exactly one more label; rules without a host go to the catch-all server;
- Exact paths match the whole path; Prefix paths match element-wise (`/foo` matches
  `/foo`, `/foo/` and `/foo/bar`, never `/foobar`), as `location = /foo` plus
  `location /foo/`; nginx picks exact locations first, then the longest prefix, which
  is Kubernetes' precedence; ImplementationSpecific is treated as Prefix;
- a path's upstream is its Service's ready endpoints on the Service port's target; a
  missing Service, port or endpoint answers 503 for that path only; a path no rule
  matches goes to the Ingress's defaultBackend, else 404;
- TLS hosts get their Secret's certificate (SNI); the file names carry a hash of the
  content, so a renewed certificate changes the config text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
DEFAULT_CLASS = "k8py"
CONTROLLER = "k8py.io/ingress-nginx"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
_NOT_FOUND = "return 404;"
_UNAVAILABLE = "return 503;"


@dataclass(frozen=True)
class Settings:
    address: str = "127.0.100.254"
    http_port: int = 80
    https_port: int = 443
    prefix: str = "/var/lib/k8py/ingress"  # nginx's own dir: pid, logs, temp files
    certs_dir: str = "/var/lib/k8py/ingress/certs"
    default_cert: str = "default.crt"  # in certs_dir: the certificate of the catch-all HTTPS server
    default_key: str = "default.key"
    workers: int = 0  # nginx worker processes; 0 = one per CPU (`auto`), as ingress-nginx


@dataclass
class State:
    ingresses: list[Obj] = field(default_factory=list)  # the ones this controller serves
    services: dict[str, Obj] = field(default_factory=dict)  # "ns/name" -> Service
    slices: dict[str, list[Obj]] = field(default_factory=dict)  # "ns/service" -> its EndpointSlices
    secrets: dict[str, Obj] = field(default_factory=dict)  # "ns/name" -> Secret


@dataclass
class Rendered:
    config: str
    files: dict[str, bytes]  # certs_dir-relative name -> content (written 0600)


@dataclass
class _Server:
    host: str  # "" = the catch-all server
    locations: dict[str, str] = field(default_factory=dict)  # "= /foo" -> body
    tls: tuple[str, str] | None = None  # (cert file, key file)
    default: str = ""  # body of `location /` when no rule claims it


def serves(ing: Obj, classes: list[Obj], controller: str = CONTROLLER) -> bool:
    """Whether an Ingress is this controller's: its class (spec.ingressClassName, else the
    legacy annotation) is one of ours, or it has none and one of ours is the default."""
    ours = [c for c in classes if (c.get("spec") or {}).get("controller") == controller]
    names = {c["metadata"]["name"] for c in ours}
    cls = (ing.get("spec") or {}).get("ingressClassName") or \
        ((ing.get("metadata") or {}).get("annotations") or {}).get(LEGACY_CLASS_ANNOTATION)
    if cls:
        return str(cls) in names
    return any(((c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION)) == "true" for c in ours)


def render(state: State, s: Settings) -> Rendered:
    files: dict[str, bytes] = {}
    upstreams: dict[str, list[str]] = {}
    servers: dict[str, _Server] = {"": _Server("")}
    ordered = sorted(state.ingresses, key=lambda i: (i["metadata"].get("creationTimestamp") or "",
                                                     i["metadata"].get("namespace") or "", i["metadata"]["name"]))
    for ing in ordered:
        _add_ingress(ing, state, servers, upstreams, files)
    return Rendered(_config(s, servers, upstreams), files)


def _add_ingress(ing: Obj, state: State, servers: dict[str, _Server], upstreams: dict[str, list[str]],
                 files: dict[str, bytes]) -> None:
    ns = ing["metadata"].get("namespace") or "default"
    spec = ing.get("spec") or {}
    default = ""
    if spec.get("defaultBackend"):
        default = _proxy(ns, spec["defaultBackend"], state, upstreams)
        if not servers[""].default:
            servers[""].default = default
    for rule in spec.get("rules") or []:
        host = str(rule.get("host") or "").lower()
        srv = servers.setdefault(host, _Server(host))
        if default and not srv.default and host:
            srv.default = default
        for p in ((rule.get("http") or {}).get("paths") or []):
            body = _proxy(ns, p.get("backend") or {}, state, upstreams)
            for key in _location_keys(p):
                srv.locations.setdefault(key, body)  # the oldest Ingress wins a conflict
    for tls in spec.get("tls") or []:
        pair = _certificate(ns, tls.get("secretName") or "", state, files)
        if pair is None:
            continue
        for h in tls.get("hosts") or []:
            srv = servers.setdefault(str(h).lower(), _Server(str(h).lower()))
            srv.tls = srv.tls or pair


def _location_keys(p: Obj) -> list[str]:
    """nginx location keys of one Ingress path (none for a path nginx could not take as
    written: whitespace, control characters, quotes or backslashes; it is not served)."""
    path = str(p.get("path") or "/")
    if any(ch.isspace() or not ch.isprintable() or ch in "\\\"" for ch in path):
        return []
    if p.get("pathType") == "Exact":
        return [f"= {_quote(path)}"]
    path = path.rstrip("/")
    if not path:
        return ["/"]
    return [f"= {_quote(path)}", _quote(path + "/")]


def _quote(path: str) -> str:
    """A path as an nginx token: bare when safe, else double-quoted (no quote or backslash
    can be inside: `_location_keys` refuses them)."""
    if re.fullmatch(r"[A-Za-z0-9/._~%!&()*+,=:@-]*", path):
        return path
    return f'"{path}"'


def _proxy(ns: str, backend: Obj, state: State, upstreams: dict[str, list[str]]) -> str:
    """The body of a location sending to a backend: proxy_pass to its upstream, or 503."""
    svc_ref = backend.get("service")
    if not svc_ref:
        return _UNAVAILABLE
    name, port_ref = str(svc_ref.get("name") or ""), svc_ref.get("port") or {}
    svc = state.services.get(f"{ns}/{name}")
    if svc is None:
        return _UNAVAILABLE
    sport = _service_port(svc, port_ref)
    if sport is None:
        return _UNAVAILABLE
    servers = _endpoints(state.slices.get(f"{ns}/{name}", []), sport)
    if not servers:
        return _UNAVAILABLE
    up = f"{ns}-{name}-{sport.get('port')}"
    upstreams[up] = servers
    return f"proxy_pass http://{up};"


def _service_port(svc: Obj, ref: Obj) -> Obj | None:
    for p in (svc.get("spec") or {}).get("ports") or []:
        if ref.get("name") and p.get("name") == ref["name"]:
            return dict(p)
        if ref.get("number") and p.get("port") == ref["number"]:
            return dict(p)
    return None


def _endpoints(slices: list[Obj], sport: Obj) -> list[str]:
    """ip:port of the ready endpoints of a Service port (its EndpointSlice port of the same name)."""
    out: set[str] = set()
    pname = sport.get("name") or ""
    for sl in slices:
        port = next((p.get("port") for p in sl.get("ports") or [] if (p.get("name") or "") == pname), None)
        if not port:
            continue
        for ep in sl.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") is False:
                continue
            for addr in ep.get("addresses") or []:
                out.add(f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}")
    return sorted(out)


def _certificate(ns: str, name: str, state: State, files: dict[str, bytes]) -> tuple[str, str] | None:
    """File names of a kubernetes.io/tls Secret's certificate and key (added to `files`)."""
    import base64
    sec = state.secrets.get(f"{ns}/{name}")
    if sec is None:
        return None
    data = sec.get("data") or {}
    try:
        crt, key = base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"])
    except (KeyError, ValueError):
        return None
    digest = hashlib.sha256(crt + key).hexdigest()[:12]
    cf, kf = f"{ns}_{name}_{digest}.crt", f"{ns}_{name}_{digest}.key"
    files[cf], files[kf] = crt, key
    return cf, kf


def _config(s: Settings, servers: dict[str, _Server], upstreams: dict[str, list[str]]) -> str:
    p = s.prefix
    out = [
        "# rendered by k8py's ingress controller: do not edit",
        f"worker_processes {s.workers or 'auto'};",
        f"pid {p}/nginx.pid;",
        f"error_log {p}/logs/error.log notice;",
        "events { worker_connections 1024; }",
        "http {",
        f"  access_log {p}/logs/access.log;",
        *(f"  {k}_temp_path {p}/tmp/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
        "  server_names_hash_bucket_size 128;",
        "  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }",
        "  proxy_http_version 1.1;",
        "  proxy_set_header Host $host;",
        "  proxy_set_header Upgrade $http_upgrade;",
        "  proxy_set_header Connection $connection_upgrade;",
        "  proxy_set_header X-Real-IP $remote_addr;",
        "  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "  proxy_set_header X-Forwarded-Proto $scheme;",
        "  proxy_next_upstream error timeout;",
    ]
    for name in sorted(upstreams):
        out.append(f"  upstream {name} {{")
        out += [f"    server {addr};" for addr in upstreams[name]]
        out += ["    keepalive 16;", "  }"]
    out += _catch_all(s, servers[""])
    for host in sorted(h for h in servers if h):
        out += _server(s, servers[host])
    out.append("}")
    return "\n".join(out) + "\n"


def _server_name(host: str) -> str:
    if host.startswith("*."):  # Kubernetes: the wildcard is exactly one DNS label
        return "~^[^.]+" + re.escape(host[1:]) + "$"
    return host


def _locations(srv: _Server) -> list[str]:
    locs = dict(srv.locations)
    locs.setdefault("/", srv.default or _NOT_FOUND)
    return [f"    location {k} {{ {locs[k]} }}" for k in sorted(locs)]


def _catch_all(s: Settings, srv: _Server) -> list[str]:
    c = s.certs_dir
    return ["  server {",
            f"    listen {s.address}:{s.http_port} default_server;",
            f"    listen {s.address}:{s.https_port} ssl default_server;",
            "    server_name _;",
            f"    ssl_certificate {c}/{s.default_cert};",
            f"    ssl_certificate_key {c}/{s.default_key};",
            *_locations(srv), "  }"]


def _server(s: Settings, srv: _Server) -> list[str]:
    out = ["  server {", f"    listen {s.address}:{s.http_port};", f"    server_name {_server_name(srv.host)};"]
    if srv.tls:
        out += [f"    listen {s.address}:{s.https_port} ssl;",
                f"    ssl_certificate {s.certs_dir}/{srv.tls[0]};",
                f"    ssl_certificate_key {s.certs_dir}/{srv.tls[1]};"]
    return out + _locations(srv) + ["  }"]
