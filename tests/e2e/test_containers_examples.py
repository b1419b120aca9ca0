"""The Kubernetes documentation examples (../shared/k8s-examples) on real containers:
every manifest whose images the local test registry holds runs to Ready, except the
ones that by design do not (each with the reason, e.g. the OOM exercise).

Each manifest gets its own namespace (unless it names one) so its pods are easy to find;
it is deleted again after the check.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from k8py.runtime import reference

from e2e_harness import wait_for
from helpers.corpus import EXAMPLES

pytestmark = pytest.mark.root

CORPUS = EXAMPLES
if not CORPUS.exists():  # CI lays shared/ beside the clone
    CORPUS = Path(__file__).resolve().parents[3] / "shared" / "k8s-examples"
NOT_READY_BY_DESIGN = {
    "pods/resource/memory-request-limit-2.yaml": "allocates more than its memory limit: OOMKilled, the exercise",
    "pods/resource/memory-request-limit-3.yaml": "requests more memory than the node has: Pending, the exercise",
    "pods/resource/cpu-request-limit-2.yaml": "requests more CPU than the node has: Pending, the exercise",
    "pods/init-containers.yaml": "its init containers wait for Services the exercise creates later",
    "pods/pod-nginx.yaml": "nodeSelector disktype=ssd: the exercise labels a node first",
    "pods/inject/pod-single-secret-env-variable.yaml": "invalid manifest (no apiVersion)",
    "pods/pod-with-node-affinity.yaml": "invalid manifest",
    "service/networking/nginx-secure-app.yaml": "needs the TLS certificate and nginx config the exercise makes",
}
_CLAIM = ('{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"%s"},'
          '"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}')
# What the exercise creates before the manifest (in the manifest's namespace): kubectl arguments or a JSON object.
PREREQS: dict[str, list[Any]] = {
    "pods/inject/secret-envars-pod.yaml": [["create", "secret", "generic", "test-secret",
                                            "--from-literal=username=my-app", "--from-literal=password=39528$vdg7Jb"]],
    "pods/inject/secret-pod.yaml": [["create", "secret", "generic", "test-secret", "--from-literal=username=my-app",
                                     "--from-literal=password=39528$vdg7Jb"]],
    "pods/storage/pv-pod.yaml": [_CLAIM % "task-pv-claim"],  # on the default (local-path) class
    "application/mysql/mysql-deployment.yaml": [_CLAIM % "mysql-pv-claim"],
}


def _docs(path: Path) -> list[dict]:
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    except yaml.YAMLError:
        return []


def _images(doc: dict) -> list[str]:
    spec = doc.get("spec") or {}
    if doc.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    if doc.get("kind") != "Pod":
        spec = ((spec.get("template") or {}).get("spec") or {})
    return [c.get("image", "") for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])]


def _available(registry_url: str, image: str) -> bool:
    ref = reference.parse(image)
    if ref.digest:
        return False
    try:
        with urllib.request.urlopen(f"{registry_url}/v2/{ref.repository}/tags/list", timeout=5) as r:  # noqa: S310
            return ref.tag in (json.loads(r.read()).get("tags") or [])
    except OSError:
        return False


def _candidates() -> list[str]:
    if not CORPUS.exists():
        return []
    out = []
    for p in sorted(CORPUS.rglob("*.yaml")):
        docs = _docs(p)
        if any(_images(d) for d in docs) and all(d.get("kind") in ("Pod", "Deployment", "ReplicaSet", "Service",
                                                                   "DaemonSet", "StatefulSet", "ConfigMap",
                                                                   "Secret", "Job")
                                                 for d in docs):
            out.append(str(p.relative_to(CORPUS)))
    return out


@pytest.fixture(scope="module")
def examples_cluster(agent_cluster: Any) -> Any:
    c = agent_cluster
    for n in ("mem-example", "cpu-example"):
        c.kubectl("create", "namespace", n)
    return c


@pytest.mark.parametrize("rel", _candidates())
def test_example_runs_to_ready(examples_cluster: Any, local_registry: Any, rel: str) -> None:
    c = examples_cluster
    docs = _docs(CORPUS / rel)
    images = [i for d in docs for i in _images(d)]
    missing = [i for i in images if not _available(local_registry.url, i)]
    if missing:
        pytest.skip(f"the local registry does not have {missing}")
    if rel in NOT_READY_BY_DESIGN:
        pytest.skip(NOT_READY_BY_DESIGN[rel])
    named = {(d.get("metadata") or {}).get("namespace") for d in docs} - {None}
    ns = named.pop() if named else "ex-" + rel.replace("/", "-").replace(".yaml", "").replace("_", "-")[:50].lower()
    if not named and ns.startswith("ex-"):
        c.kubectl("create", "namespace", ns, check=False)
    path = str(CORPUS / rel)
    for pre in PREREQS.get(rel, []):
        if isinstance(pre, str):
            c.kubectl("apply", "-n", ns, "-f", "-", input=pre)
        else:
            c.kubectl(*pre, "-n", ns)
    c.kubectl("apply", "-n", ns, "-f", path)
    try:
        def all_ready() -> bool:
            pods = c.kubectl_json("get", "pods", "-n", ns)["items"]
            return bool(pods) and all(
                any(x["type"] == "Ready" and x["status"] == "True" for x in (p.get("status") or {}).get("conditions")
                    or []) for p in pods)
        wait_for(all_ready, 90, f"the pods of {rel} to be Ready")
    finally:
        c.kubectl("delete", "-n", ns, "-f", path, "--wait=true", "--timeout=60s", check=False, timeout=90)
        for pre in PREREQS.get(rel, []):
            if isinstance(pre, str):
                _drop_claim(c, ns, json.loads(pre)["metadata"]["name"])


def _drop_claim(c: Any, ns: str, name: str) -> None:
    """Delete a claim and the local-path directory its volume had on this machine."""
    import shutil

    pvc = c.kubectl("get", "pvc", "-n", ns, name, "-o", "json", check=False)
    c.kubectl("delete", "pvc", "-n", ns, name, "--wait=true", check=False, timeout=60)
    if pvc.returncode == 0:
        vol = json.loads(pvc.stdout)["spec"].get("volumeName")
        if vol:
            path = Path("/var/lib/k8py/storage") / vol
            if vol.startswith("pvc-"):
                shutil.rmtree(path, ignore_errors=True)
