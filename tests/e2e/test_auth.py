"""Authentication as a stranger sees it: no credentials, no access (except health and version)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from e2e_harness import K8pyServer

pytestmark = pytest.mark.e2e


def _get(cluster: K8pyServer, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    ctx = ssl.create_default_context(cafile=str(cluster.data_dir / "pki" / "ca.crt"))
    req = urllib.request.Request(cluster.url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.mark.parametrize("path,code", [("/api/v1/namespaces", 401), ("/apis", 401), ("/openapi/v3", 401),
                                       ("/healthz", 200), ("/readyz", 200), ("/livez", 200), ("/version", 200)])
def test_anonymous(cluster: K8pyServer, path: str, code: int) -> None:
    status, body = _get(cluster, path)
    assert status == code
    if code == 401:
        assert json.loads(body)["reason"] == "Unauthorized"


def test_agent_token(cluster: K8pyServer) -> None:
    token = (cluster.data_dir / "pki" / "agent-token").read_text().strip()
    status, body = _get(cluster, "/api/v1/namespaces", {"Authorization": f"Bearer {token}"})
    assert status == 200 and json.loads(body)["kind"] == "NamespaceList"
    assert _get(cluster, "/api/v1/namespaces", {"Authorization": "Bearer nope"})[0] == 401


def test_kubectl_without_credentials(cluster: K8pyServer, tmp_path: Path) -> None:
    cfg = yaml.safe_load(cluster.kubeconfig.read_text())
    cfg["users"] = [{"name": "admin", "user": {"token": "not-a-valid-token"}}]
    kc = tmp_path / "anon"
    kc.write_text(yaml.safe_dump(cfg))
    p = cluster.kubectl("--kubeconfig", str(kc), "get", "pods", check=False)
    assert p.returncode != 0
    assert "You must be logged in to the server" in p.stderr, p.stderr
