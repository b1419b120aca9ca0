"""The course (seed lecture 3, "Kubernetes") replayed as a student types it, with the
real kubectl against a cluster with a real node agent (docs/course.md is the walkthrough).

The tests run in file order and share one Deployment + Service applied with
`kubectl apply -f <dir>`: a two-container pod, horizontal scaling to 3 and back,
`kubectl label pod`, vertical scaling with `kubectl set resources` (a rolling update),
a Secret from `kubectl create secret generic --from-literal` read through
`secretKeyRef`, and self-healing (a killed process restarts, a deleted replica is
replaced). What other e2e modules prove in depth (OOM kills, MySQL, round robin, DNS,
packet capture) is left to them. Every pod goes through the scheduler.
"""

from __future__ import annotations

import base64
import secrets
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from e2e_harness import wait_for

pytestmark = pytest.mark.root

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  labels:
    app: nginx
spec:
  replicas: 2
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports:
        - containerPort: 80
        resources:
          requests:
            memory: "64Mi"
            cpu: "250m"
          limits:
            memory: "128Mi"
            cpu: "500m"
"""

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: nginx
spec:
  selector:
    app: nginx
  ports:
  - port: 80
    targetPort: 80
"""

DUO = """\
apiVersion: v1
kind: Pod
metadata:
  name: duo
spec:
  volumes:
  - name: html
    emptyDir: {}
  containers:
  - name: web
    image: nginx:1.14.2
    volumeMounts:
    - name: html
      mountPath: /usr/share/nginx/html
  - name: writer
    image: busybox
    command: ["sh", "-c", "echo written-by-the-writer > /html/index.html; sleep 3600"]
    volumeMounts:
    - name: html
      mountPath: /html
"""

APP_WITH_SECRET = """\
apiVersion: v1
kind: Pod
metadata:
  name: rest-app
spec:
  containers:
  - name: app
    image: busybox
    command: ["sleep", "3600"]
    env:
    - name: DB_PASSWORD
      valueFrom:
        secretKeyRef:
          name: mysql-pass
          key: password
"""


def live_pods(c: Any, selector: str = "app=nginx") -> list[dict]:  # type: ignore[type-arg]
    """Pods of the selector that are not being deleted."""
    items = c.kubectl_json("get", "pods", "-l", selector)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def ready(p: dict) -> bool:  # type: ignore[type-arg]
    conds = {x["type"]: x["status"] for x in p["status"].get("conditions") or []}
    return p["status"].get("phase") == "Running" and conds.get("Ready") == "True"


def endpoint_ips(c: Any, name: str = "nginx") -> list[str]:
    ep = c.kubectl_json("get", "endpoints", name)
    return sorted(a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or [])


def settled(c: Any, n: int) -> list[dict]:  # type: ignore[type-arg]
    """Waits until exactly n live nginx pods are ready and the Service's endpoints are their IPs."""
    def ok() -> list[dict] | None:  # type: ignore[type-arg]
        pods = live_pods(c)
        if len(pods) != n or not all(ready(p) for p in pods):
            return None
        return pods if endpoint_ips(c) == sorted(p["status"]["podIP"] for p in pods) else None
    return wait_for(ok, 120, f"{n} ready nginx replicas behind the Service")  # type: ignore[no-any-return]


def http_get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:  # noqa: S310 - a pod or service IP of our cluster
            return r.read().decode()
    except OSError:
        return ""


@pytest.fixture(scope="module")
def course(agent_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The student's manifest directory, applied with `kubectl apply -f .`."""
    c = agent_cluster
    d = tmp_path_factory.mktemp("nginx-manifests")
    (d / "deployment.yaml").write_text(DEPLOYMENT)
    (d / "service.yaml").write_text(SERVICE)
    out = c.kubectl("apply", "-f", str(d)).stdout
    assert "deployment.apps/nginx-deployment created" in out and "service/nginx created" in out, out
    return c


def test_apply_directory_and_the_service_finds_the_pods_by_label(course: Any) -> None:
    c = course
    out = c.kubectl("rollout", "status", "deployment/nginx-deployment", "--timeout=120s", timeout=130).stdout
    assert "successfully rolled out" in out
    pods = settled(c, 2)
    assert all(p["spec"]["nodeName"] == c.node_name for p in pods)  # placed by the scheduler
    assert all(p["status"]["qosClass"] == "Burstable" for p in pods)
    for p in pods:
        assert "Welcome to nginx!" in http_get(f"http://{p['status']['podIP']}/")
    svc = c.kubectl_json("get", "svc", "nginx")
    assert svc["spec"]["type"] == "ClusterIP"
    wait_for(lambda: "Welcome to nginx!" in http_get(f"http://{svc['spec']['clusterIP']}/"), 30,
             "nginx through the ClusterIP")


def test_two_containers_share_an_ip_and_a_volume(course: Any, tmp_path: Path) -> None:
    c = course
    (tmp_path / "duo.yaml").write_text(DUO)
    c.kubectl("apply", "-f", str(tmp_path))
    c.kubectl("wait", "--for=condition=Ready", "pod/duo", "--timeout=90s", timeout=100)
    assert c.kubectl("get", "pod", "duo", "--no-headers").stdout.split()[1] == "2/2"  # READY column
    ip = c.kubectl_json("get", "pod", "duo")["status"]["podIP"]
    for container in ("web", "writer"):  # one network namespace: the same address in both
        got = c.kubectl("exec", "duo", "-c", container, "--", "hostname", "-i").stdout.split()
        assert got == [ip], (container, got)
    page = wait_for(lambda: c.kubectl("exec", "duo", "-c", "writer", "--", "wget", "-qO-", "http://localhost/",
                                      check=False).stdout, 30, "nginx over localhost")
    assert page == "written-by-the-writer\n"
    assert http_get(f"http://{ip}/") == "written-by-the-writer\n"
    c.kubectl("delete", "pod", "duo", "--grace-period=1", "--wait=false")  # sleep ignores SIGTERM


def test_scale_to_3_and_back(course: Any) -> None:
    c = course
    c.kubectl("scale", "--replicas=3", "deployment/nginx-deployment")
    three = settled(c, 3)
    wait_for(lambda: c.kubectl_json("get", "deployment", "nginx-deployment")["status"].get("availableReplicas") == 3,
             30, "the Deployment reporting 3 available")
    c.kubectl("scale", "--replicas=2", "deployment/nginx-deployment")
    two = settled(c, 2)
    assert {p["metadata"]["name"] for p in two} < {p["metadata"]["name"] for p in three}


def test_label_a_pod(course: Any) -> None:
    c = course
    name = settled(c, 2)[0]["metadata"]["name"]
    assert c.kubectl("label", "pod", name, "university=uqar").stdout.strip() == f"pod/{name} labeled"
    assert c.kubectl("get", "pods", "-l", "university=uqar", "-o", "name").stdout.split() == [f"pod/{name}"]
    assert "uqar" in c.kubectl("get", "pod", name, "-L", "university").stdout
    assert len(settled(c, 2)) == 2  # still matched by the Service's and the ReplicaSet's selector


def test_vertical_scaling_is_a_rolling_update(course: Any) -> None:
    c = course
    before = {p["metadata"]["name"] for p in settled(c, 2)}
    out = c.kubectl("set", "resources", "deployment", "nginx-deployment", "--limits=memory=256Mi",
                    "--requests=memory=128Mi").stdout
    assert "resource requirements updated" in out
    out = c.kubectl("rollout", "status", "deployment/nginx-deployment", "--timeout=120s", timeout=130).stdout
    assert "successfully rolled out" in out
    pods = settled(c, 2)
    assert not before & {p["metadata"]["name"] for p in pods}  # every replica was replaced
    for p in pods:
        res = p["spec"]["containers"][0]["resources"]
        assert res["limits"] == {"cpu": "500m", "memory": "256Mi"} and res["requests"]["memory"] == "128Mi"
    rss = c.kubectl_json("get", "rs", "-l", "app=nginx")["items"]
    assert sorted(rs["spec"]["replicas"] for rs in rss) == [0, 2]
    history = c.kubectl("rollout", "history", "deployment/nginx-deployment").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]


def test_secret_reaches_the_container_but_not_the_pod_spec(course: Any, tmp_path: Path) -> None:
    c = course
    password = "pw-" + secrets.token_hex(8)
    out = c.kubectl("create", "secret", "generic", "mysql-pass", f"--from-literal=password={password}").stdout
    assert out.strip() == "secret/mysql-pass created"
    stored = c.kubectl_json("get", "secret", "mysql-pass")["data"]["password"]
    assert base64.b64decode(stored).decode() == password
    (tmp_path / "app.yaml").write_text(APP_WITH_SECRET)
    c.kubectl("apply", "-f", str(tmp_path))
    c.kubectl("wait", "--for=condition=Ready", "pod/rest-app", "--timeout=90s", timeout=100)
    assert c.kubectl("exec", "rest-app", "--", "sh", "-c", 'echo "$DB_PASSWORD"').stdout == password + "\n"
    spec = c.kubectl("get", "pod", "rest-app", "-o", "yaml").stdout
    assert "secretKeyRef" in spec and password not in spec and stored not in spec
    c.kubectl("delete", "pod", "rest-app", "--grace-period=1", "--wait=false")


def test_self_healing(course: Any) -> None:
    c = course
    victim = settled(c, 2)[0]
    name = victim["metadata"]["name"]
    c.kubectl("exec", name, "--", "sh", "-c", "kill 1")  # nginx's master process stops
    wait_for(lambda: (s := c.kubectl_json("get", "pod", name)["status"]["containerStatuses"][0])["restartCount"] >= 1
             and "running" in s["state"], 60, "the container restarted")
    assert c.kubectl("get", "pod", name, "--no-headers").stdout.split()[3] == "1"  # RESTARTS column
    settled(c, 2)
    c.kubectl("delete", "pod", name)
    pods = settled(c, 2)
    assert name not in {p["metadata"]["name"] for p in pods}  # the ReplicaSet made a new one
