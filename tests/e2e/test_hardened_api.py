# mypy: disable-error-code="union-attr,index,arg-type"
"""A hardened API, as a user (or an attacker) meets it through the real kubectl and the
official Python client: the YAML alias bomb, unknown fields under the default field
validation, int32 overflow, a watch from a future resourceVersion."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from e2e_harness import K8pyServer

pytestmark = pytest.mark.e2e

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.apiserver.test_hardening import laughs  # noqa: E402

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import config  # noqa: E402


def api_client(s: K8pyServer) -> Any:
    return config.new_client_from_config(config_file=str(s.kubeconfig))


def raw(s: K8pyServer, method: str, path: str, body: Any, content_type: str) -> tuple[int, Any, Any]:
    """A request through the official client's connection pool (its TLS client certificate):
    status, decoded body, headers."""
    c = api_client(s)
    try:
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        r = c.rest_client.pool_manager.request(method, c.configuration.host + path, body=data,
                                               headers={"Content-Type": content_type, "Accept": "application/json"})
        return r.status, json.loads(r.data), r.headers
    finally:
        c.close()


def test_alias_bomb_is_refused_while_kubectl_keeps_working(cluster: K8pyServer, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(laughs())
    # kubectl parses manifests itself, with the same go-yaml budget: the bomb never leaves it
    p = cluster.kubectl("apply", "-f", str(bomb), check=False)
    print(f"kubectl apply -f bomb.yaml: rc={p.returncode} {p.stderr.strip()}")
    assert p.returncode != 0 and "excessive aliasing" in p.stderr
    # sent as is (application/yaml), the server refuses it; kubectl get goes on meanwhile
    gets: list[subprocess.CompletedProcess[str]] = []

    def kubectl_gets() -> None:
        for _ in range(3):
            gets.append(cluster.kubectl("get", "configmaps", check=False))

    t = threading.Thread(target=kubectl_gets)
    t.start()
    t0 = time.perf_counter()
    status, body, _ = raw(cluster, "POST", "/api/v1/namespaces/default/configmaps", laughs(), "application/yaml")
    took = time.perf_counter() - t0
    t.join()
    print(f"alias bomb ({len(laughs())} bytes) answered {status} in {took * 1000:.0f} ms: {body['message']}")
    assert status == 400 and body["reason"] == "BadRequest"
    assert "yaml: document contains excessive aliasing" in body["message"]
    assert [g.returncode for g in gets] == [0, 0, 0], [g.stderr for g in gets]
    assert "yaml-bomb" not in cluster.kubectl("get", "configmaps", "-o", "name").stdout


def test_unknown_fields_default_validation(cluster: K8pyServer) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "uf", "namespace": "default"},
          "data": {"a": "b"}, "spec": {"foo": 1}}
    # no fieldValidation (the Python client sends none): dropped, with a warning
    status, body, headers = raw(cluster, "POST", "/api/v1/namespaces/default/configmaps", cm, "application/json")
    assert status == 201, body
    assert headers.get("Warning") == '299 - "unknown field \\"spec\\""'
    stored = cluster.kubectl_json("get", "configmap", "uf")
    assert "spec" not in stored and stored["data"] == {"a": "b"}
    # kubectl sends Strict: refused, the field named
    cm["metadata"]["name"] = "uf2"
    p = cluster.kubectl("apply", "-f", "-", input=json.dumps(cm), check=False)
    assert p.returncode != 0 and 'unknown field "spec"' in p.stderr, p.stderr
    # and with --validate=false kubectl sends Ignore: dropped silently
    p = cluster.kubectl("apply", "--validate=false", "-f", "-", input=json.dumps(cm))
    assert "spec" not in cluster.kubectl_json("get", "configmap", "uf2")


def test_int32_overflow_is_refused(cluster: K8pyServer) -> None:
    manifest = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: huge}
spec:
  replicas: 1e12
  selector: {matchLabels: {app: huge}}
  template:
    metadata: {labels: {app: huge}}
    spec: {containers: [{name: c, image: nginx}]}
"""
    p = cluster.kubectl("apply", "-f", "-", input=manifest, check=False)
    print(p.stderr.strip())
    assert p.returncode != 0
    assert "cannot unmarshal number 1000000000000 into Go struct field DeploymentSpec.spec.replicas of type int32" \
        in p.stderr, p.stderr
    assert "huge" not in cluster.kubectl("get", "deployments", "-o", "name").stdout


def test_watch_from_a_future_resource_version(cluster: K8pyServer) -> None:
    rv = int(json.loads(cluster.kubectl("get", "--raw", "/api/v1/namespaces/default/configmaps").stdout)
             ["metadata"]["resourceVersion"])
    t0 = time.perf_counter()
    url = f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv + 100000}"
    p = cluster.kubectl("get", "--raw", url, check=False)
    print(f"kubectl get --raw '{url}': rc={p.returncode} after {time.perf_counter() - t0:.1f} s: {p.stdout.strip()}")
    event = json.loads(p.stdout)
    assert event["type"] == "ERROR"
    assert (event["object"]["code"], event["object"]["reason"]) == (504, "Timeout")
    assert event["object"]["message"].startswith(f"Timeout: Too large resource version: {rv + 100000}, current: ")
