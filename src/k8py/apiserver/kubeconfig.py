"""The admin kubeconfig: DATA_DIR/kubeconfig, for kubectl, the kubernetes client and k8py's REST client.

One cluster `k8py` (the CA inline, server https://<host>:<port>), one user `admin`
(the admin client cert and key inline), one context `k8py`, made current.
Invariant: written atomically with mode 0600 (it holds a private key).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

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


def write(path: str | Path, pki: Pki, server: str) -> Path:
    """Write the kubeconfig at `path` (atomically, 0600) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(build(pki, server), f, sort_keys=False)
    os.replace(tmp, path)
    return path
