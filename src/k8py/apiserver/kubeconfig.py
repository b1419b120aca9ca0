"""The admin kubeconfig: DATA_DIR/kubeconfig, for kubectl, the kubernetes client and k8py's REST client.

One cluster `k8py` (the CA inline, server https://<host>:<port>), one user `admin`
(the admin client cert and key inline), one context `k8py`, made current.
Invariant: written atomically with mode 0600 (it holds a private key). Emitted as
block YAML by `to_yaml` (scalars JSON-quoted), so startup does not import PyYAML.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from k8py.apiserver.certs import Pki


def _b64(p: Path) -> str:
    return base64.b64encode(p.read_bytes()).decode()


def server_url(host: str, port: int) -> str:
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"https://{host}:{port}"


def build(pki: Pki, server: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "k8py", "cluster": {"server": server,
                                                  "certificate-authority-data": _b64(pki.ca_cert)}}],
        "users": [{"name": "admin", "user": {"client-certificate-data": _b64(pki.admin_cert),
                                             "client-key-data": _b64(pki.admin_key)}}],
        "contexts": [{"name": "k8py", "context": {"cluster": "k8py", "user": "admin", "namespace": "default"}}],
        "current-context": "k8py",
        "preferences": {},
    }


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block YAML for a tree of dicts, lists and scalars (strings JSON-quoted: valid YAML)."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return "{}\n" if indent == 0 else " {}\n"
        out = "" if indent == 0 else "\n"
        for k, v in value.items():
            out += f"{pad}{k}:" + _yaml_value(v, indent)
        return out
    raise TypeError("to_yaml wants a mapping at the top")


def _yaml_value(v: Any, indent: int) -> str:
    if isinstance(v, dict):
        return " {}\n" if not v else to_yaml(v, indent + 2)
    if isinstance(v, list):
        if not v:
            return " []\n"
        out = "\n"
        for item in v:
            body = to_yaml(item, indent + 2) if isinstance(item, dict) and item else " " + json.dumps(item) + "\n"
            if isinstance(item, dict) and item:
                body = body.lstrip("\n")
                out += " " * indent + "- " + body[indent + 2:]
            else:
                out += " " * indent + "-" + body
        return out
    return " " + json.dumps(v) + "\n"


def write(path: str | Path, pki: Pki, server: str) -> Path:
    """Write the kubeconfig at `path` (atomically, 0600) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(to_yaml(build(pki, server)))
    os.replace(tmp, path)
    return path
