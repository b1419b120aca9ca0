"""The same server on etcd (`--store etcd://...`): kubectl works, a restart keeps objects and versions."""

from __future__ import annotations

import pytest

from e2e_harness import K8pyServer

pytestmark = pytest.mark.e2e

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: on-etcd, namespace: etcd-e2e}\ndata: {a: '1'}\n"


def test_kubectl_on_etcd_and_restart(etcd_cluster: K8pyServer) -> None:
    s = etcd_cluster
    assert "store etcd" in s.ready_line
    s.kubectl("create", "namespace", "etcd-e2e")
    assert "created" in s.kubectl("apply", "-f", "-", input=CM).stdout
    s.kubectl("label", "configmap", "on-etcd", "-n", "etcd-e2e", "x=y")
    before = s.kubectl_json("get", "configmap", "on-etcd", "-n", "etcd-e2e")
    assert "on-etcd" in s.kubectl("get", "cm", "-A", "-l", "x=y").stdout
    assert s.stop() == 0
    s.start()
    after = s.kubectl_json("get", "configmap", "on-etcd", "-n", "etcd-e2e")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["metadata"]["labels"] == {"x": "y"}
    assert "unchanged" in s.kubectl("apply", "-f", "-", input=CM).stdout
    s.kubectl("delete", "namespace", "etcd-e2e", "--wait=false")
