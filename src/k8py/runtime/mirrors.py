"""Registry endpoints and credentials from a k3s-style `registries.yaml`.

    mirrors:
      docker.io:
        endpoint: ["http://127.0.0.1:5000"]
      "*":                       # any registry without its own entry
        endpoint: ["http://127.0.0.1:5000"]
    configs:
      "127.0.0.1:5000":
        auth: {username: u, password: p}     # or {auth: base64(u:p)} or {identity_token: t}
    disable_default_endpoint: false          # k8py: never fall back to the upstream registry

Invariants: endpoints are tried in order, mirrors first, then (unless disabled) the
registry itself (docker.io -> https://registry-1.docker.io). An endpoint without a scheme
is plain http for loopback/localhost and https otherwise; a trailing `/v2` is dropped.
"""
from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DOCKER_HUB_ENDPOINT = "https://registry-1.docker.io"


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""


def is_loopback_host(host: str) -> bool:
    h = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    h = h.strip("[]")
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def endpoint_url(endpoint: str) -> str:
    e = endpoint.strip().rstrip("/")
    if "://" not in e:
        e = ("http://" if is_loopback_host(e.split("/", 1)[0]) else "https://") + e
    return e.removesuffix("/v2").rstrip("/")


def _host_of(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


@dataclass
class RegistriesConfig:
    mirrors: dict[str, list[str]] = field(default_factory=dict)
    auths: dict[str, Credentials] = field(default_factory=dict)
    disable_default_endpoint: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> RegistriesConfig:
        d = d or {}
        mirrors = {host: [endpoint_url(e) for e in (m or {}).get("endpoint", [])]
                   for host, m in (d.get("mirrors") or {}).items()}
        auths: dict[str, Credentials] = {}
        for host, c in (d.get("configs") or {}).items():
            a = (c or {}).get("auth") or {}
            user, pw = a.get("username", ""), a.get("password", "")
            if a.get("auth") and not user:
                user, _, pw = base64.b64decode(a["auth"]).decode().partition(":")
            auths[_host_of(endpoint_url(host))] = Credentials(user, pw, a.get("identity_token", ""))
        return cls(mirrors, auths, bool(d.get("disable_default_endpoint", False)))

    @classmethod
    def load(cls, path: str | Path | None) -> RegistriesConfig:
        """Load a registries.yaml; a missing file means no mirrors."""
        if not path or not Path(path).exists():
            return cls()
        return cls.from_dict(yaml.safe_load(Path(path).read_text()))

    def endpoints(self, registry: str) -> list[str]:
        """Base URLs (no /v2) to try for `registry`, in order."""
        out = list(self.mirrors.get(registry) or self.mirrors.get("*") or [])
        if not self.disable_default_endpoint:
            default = DOCKER_HUB_ENDPOINT if registry == "docker.io" else endpoint_url(registry)
            if default not in out:
                out.append(default)
        return out

    def credentials(self, endpoint: str) -> Credentials | None:
        return self.auths.get(_host_of(endpoint))
