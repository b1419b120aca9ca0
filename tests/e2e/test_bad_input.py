"""Mistakes a new user makes: each is refused with the offending field named, and nothing changes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from e2e_harness import K8pyServer

pytestmark = pytest.mark.e2e

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {labels}
spec:
  containers:
  - name: c
    image: nginx
    resources: {{limits: {{memory: {memory}}}}}
"""

CASES = {
    "no-containers": ("apiVersion: v1\nkind: Pod\nmetadata: {name: no-containers}\nspec: {containers: []}\n",
                      ["spec.containers", "Required value"]),
    "bad-quantity": (POD.format(name="bad-quantity", labels="{}", memory="12XB"), ["quantities must match", "12XB"]),
    "long-label": (POD.format(name="long-label", labels="{app: " + "a" * 64 + "}", memory="64Mi"),
                   ["metadata.labels", "63"]),
    "wrong-api-version": ("apiVersion: apps/v9\nkind: Deployment\nmetadata: {name: wrong-api-version}\n",
                          ["apps/v9"]),
    "malformed-yaml": ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: malformed-yaml\n  labels: {a: b\n", ["yaml"]),
    "unknown-field": (POD.format(name="unknown-field", labels="{}", memory="64Mi").replace(
        "    image: nginx\n", "    image: nginx\n    imagePulPolicy: Always\n"), ["imagePulPolicy"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_with_field_named(cluster: K8pyServer, case: str) -> None:
    manifest, words = CASES[case]
    before = cluster.kubectl("get", "pods", "-o", "name").stdout
    p = cluster.kubectl("apply", "-f", "-", input=manifest, check=False)
    assert p.returncode != 0, p.stdout
    for w in words:
        assert w in p.stderr, p.stderr
    assert cluster.kubectl("get", "pods", "-o", "name").stdout == before


def test_stale_replace_is_a_conflict(cluster: K8pyServer, tmp_path: Path) -> None:
    cluster.kubectl("create", "configmap", "stale", "--from-literal=v=1")
    old = cluster.kubectl("get", "configmap", "stale", "-o", "yaml").stdout
    cluster.kubectl("patch", "configmap", "stale", "-p", '{"data":{"v":"2"}}')
    f = tmp_path / "old.yaml"
    f.write_text(old.replace("v: \"1\"", "v: \"3\""))
    p = cluster.kubectl("replace", "-f", str(f), check=False)
    assert p.returncode != 0
    assert "the object has been modified" in p.stderr or "Conflict" in p.stderr, p.stderr
    assert yaml.safe_load(cluster.kubectl("get", "cm", "stale", "-o", "yaml").stdout)["data"] == {"v": "2"}
