"""Every manifest of the Kubernetes documentation corpus in ../shared/k8s-examples: accepted by
`kubectl apply -f`, listed back by `kubectl get -f`, deleted by `kubectl delete -f`; the two
invalid ones refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e_harness import K8pyServer
from helpers.corpus import EXAMPLES

pytestmark = pytest.mark.e2e

CORPUS = EXAMPLES
if not CORPUS.exists():  # CI lays shared/ beside the clone
    CORPUS = Path(__file__).resolve().parents[3] / "shared" / "k8s-examples"
INVALID = {
    "pods/inject/pod-single-secret-env-variable.yaml": ["apiVersion not set"],
    "pods/pod-with-node-affinity.yaml": ["nodeSelectorTerms", "requiredDuringSchedulingIgnoredDuringExecution"],
}
FILES = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.yaml")) if CORPUS.exists() else []


@pytest.fixture(scope="module")
def prepared(cluster: K8pyServer) -> K8pyServer:
    for n in ("mem-example", "cpu-example"):
        cluster.kubectl("create", "namespace", n)
    cluster.kubectl("create", "secret", "generic", "backend-user", "--from-literal=backend-username=admin")
    cluster.kubectl("create", "secret", "generic", "nginxsecret", "--from-literal=tls.crt=x",
                    "--from-literal=tls.key=y")
    cluster.kubectl("create", "configmap", "nginxconfigmap", "--from-literal=default.conf=server {}")
    cluster.kubectl("create", "configmap", "special-config", "--from-literal=special.how=very")
    return cluster


@pytest.mark.skipif(not FILES, reason="no k8s-examples corpus")
@pytest.mark.parametrize("rel", [f for f in FILES if f not in INVALID])
def test_valid_manifest_applies_and_lists(prepared: K8pyServer, rel: str) -> None:
    path = str(CORPUS / rel)
    out = prepared.kubectl("apply", "-f", path).stdout
    assert out.strip() and all(("created" in line or "configured" in line or "unchanged" in line)
                               for line in out.strip().splitlines()), out
    got = prepared.kubectl("get", "-f", path, "-o", "name").stdout.split()
    assert len(got) == len(out.strip().splitlines())
    # Several files reuse names (nginx-deployment, my-nginx, ...) with other selectors, which are
    # immutable: delete before the next file, as a user trying them one by one would.
    prepared.kubectl("delete", "-f", path, "--wait=true", "--timeout=60s")


@pytest.mark.skipif(not FILES, reason="no k8s-examples corpus")
@pytest.mark.parametrize("rel", sorted(INVALID))
def test_invalid_manifest_is_refused(prepared: K8pyServer, rel: str) -> None:
    p = prepared.kubectl("apply", "-f", str(CORPUS / rel), check=False)
    assert p.returncode != 0
    assert any(word in p.stderr for word in INVALID[rel]), p.stderr
    assert prepared.kubectl("get", "-f", str(CORPUS / rel), check=False).returncode != 0
