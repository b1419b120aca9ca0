"""Identities of pods, through the real kubectl: bound service-account tokens (`kubectl create
token`), refused once their account or pod is gone (after compaction and a restart too), the
root CA ConfigMap and the `kubernetes` Service kept, and the official Python client's
`load_incluster_config()` inside a real pod."""

from __future__ import annotations

import base64
import json
import os
import ssl
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from e2e_harness import K8pyServer, wait_for

pytestmark = pytest.mark.e2e


def api_get(s: K8pyServer, path: str, token: str) -> int:
    ctx = ssl.create_default_context(cafile=str(s.data_dir / "pki" / "ca.crt"))
    req = urllib.request.Request(s.url + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:  # noqa: S310 - our own server on loopback
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


def token(s: K8pyServer, *args: str) -> str:
    return s.kubectl("create", "token", *args).stdout.strip()


def test_tokens_die_with_their_account_and_pod(tmp_path: Path) -> None:
    """A token is accepted (GET /api: any authenticated user may, whatever its rights) while its
    account and bound pod exist, and refused (401) once either is gone, after compaction and a
    restart too."""
    s = K8pyServer(tmp_path / "data").start()
    try:
        s.kubectl("create", "serviceaccount", "robot")
        c = claims(token(s, "robot", "--audience", "x", "--duration", "10m"))
        assert c["aud"] == ["x"] and c["exp"] - c["iat"] == 600
        assert c["sub"] == "system:serviceaccount:default:robot"
        robot = token(s, "robot")
        wait_for(lambda: api_get(s, "/api", robot) == 200, 30, "the token accepted")
        s.kubectl("run", "p", "--image=busybox", "--restart=Never", "--", "sleep", "1")
        pod = s.kubectl_json("get", "pod", "p")
        vols = [v for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access-")]
        assert len(vols) == 1 and pod["spec"]["serviceAccountName"] == "default"
        bound = token(s, "default", "--bound-object-kind", "Pod", "--bound-object-name", "p")
        assert claims(bound)["kubernetes.io"]["pod"] == {"name": "p", "uid": pod["metadata"]["uid"]}
        wait_for(lambda: api_get(s, "/api", bound) == 200, 30, "the pod's token")
        s.kubectl("delete", "pod", "p", "--grace-period=0", "--force")
        wait_for(lambda: api_get(s, "/api", bound) == 401, 30, "the pod's token refused")
        s.kubectl("delete", "serviceaccount", "robot")
        wait_for(lambda: api_get(s, "/api", robot) == 401, 30, "the token refused")
        token_path = "/debug/k8py/compact"
        ctx = ssl.create_default_context(cafile=str(s.data_dir / "pki" / "ca.crt"))
        ctx.load_cert_chain(str(s.data_dir / "pki" / "admin.crt"), str(s.data_dir / "pki" / "admin.key"))
        with urllib.request.urlopen(urllib.request.Request(s.url + token_path, method="POST"), context=ctx,
                                    timeout=30) as r:  # noqa: S310 - our own server on loopback
            assert r.status == 200
        assert s.stop() == 0
        s.start()
        assert api_get(s, "/api", robot) == 401
        assert api_get(s, "/api", bound) == 401
        s.kubectl("create", "serviceaccount", "robot")  # the same name again is another account
        assert api_get(s, "/api", robot) == 401
    finally:
        s.stop()


def test_root_ca_and_kubernetes_service_are_kept(cluster: K8pyServer) -> None:
    ca = (cluster.data_dir / "pki" / "ca.crt").read_text()
    for ns in ("default", "kube-system"):
        wait_for(lambda ns=ns: cluster.kubectl("get", "configmap", "kube-root-ca.crt", "-n", ns, check=False)
                 .returncode == 0, 30, f"kube-root-ca.crt in {ns}")
        assert cluster.kubectl_json("get", "configmap", "kube-root-ca.crt", "-n", ns)["data"] == {"ca.crt": ca}
    cluster.kubectl("delete", "configmap", "kube-root-ca.crt")
    wait_for(lambda: cluster.kubectl("get", "configmap", "kube-root-ca.crt", check=False).returncode == 0, 30,
             "kube-root-ca.crt restored")
    cluster.kubectl("delete", "service", "kubernetes")
    svc = wait_for(lambda: cluster.kubectl("get", "service", "kubernetes", "-o", "json", check=False).stdout, 30,
                   "the kubernetes Service recreated")
    assert json.loads(svc)["spec"]["clusterIP"] == "10.43.0.1"


LIST_PODS = textwrap.dedent("""
    import os
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException
    config.load_incluster_config()
    ns = open("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read()
    try:
        pods = client.CoreV1Api().list_namespaced_pod(ns)
        print("STATUS 200", ns, sorted(p.metadata.name for p in pods.items), flush=True)
    except ApiException as e:
        print("STATUS", e.status, ns, flush=True)
""")


def _run_incluster(c: Any, name: str) -> str:
    """Run LIST_PODS in a pod named `name`; its logs once it has ended. The image is Debian
    (nginx's); the host's Python and .venv are mounted read-only."""
    venv = Path(sys.prefix).resolve()
    python_home = Path(os.path.realpath(sys.executable)).parents[1]
    c.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"nodeName": c.node_name, "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "py", "image": "nginx:1.14.2",
                                 "command": [str(venv / "bin" / "python"), "-c", LIST_PODS],
                                 "volumeMounts": [{"name": "venv", "mountPath": str(venv), "readOnly": True},
                                                  {"name": "python", "mountPath": str(python_home),
                                                   "readOnly": True}]}],
                 "volumes": [{"name": "venv", "hostPath": {"path": str(venv), "type": "Directory"}},
                             {"name": "python", "hostPath": {"path": str(python_home), "type": "Directory"}}]}}))
    p = wait_for(lambda: (x := c.kubectl_json("get", "pod", name))["status"].get("phase")
                 in ("Succeeded", "Failed") and x, 120, f"the in-cluster client {name} to finish")
    logs = c.kubectl("logs", name).stdout
    assert p["status"]["phase"] == "Succeeded", logs
    c.kubectl("delete", "pod", name, "--wait=true")
    return logs


@pytest.mark.root
def test_incluster_python_client_lists_pods_when_its_role_allows(agent_cluster: Any) -> None:
    """The official client inside a pod: token, ca.crt and namespace from the projected volume,
    KUBERNETES_SERVICE_HOST/PORT from the environment, https to the `kubernetes` Service. The
    default service account has no rights (403); a RoleBinding to `view` lets it list pods."""
    c = agent_cluster
    assert "STATUS 403 default" in (logs := _run_incluster(c, "incluster-denied")), logs
    c.kubectl("create", "rolebinding", "incluster-view", "--clusterrole=view", "--serviceaccount=default:default")
    try:
        logs = _run_incluster(c, "incluster")
        assert "STATUS 200 default" in logs and "'incluster'" in logs, logs
    finally:
        c.kubectl("delete", "rolebinding", "incluster-view")


def test_token_review_through_kubectl(cluster: K8pyServer) -> None:
    tok = token(cluster, "default", "--audience", "vault")
    agent = (cluster.data_dir / "pki" / "agent-token").read_text().strip()
    for spec, user in [({"token": tok, "audiences": ["vault"]}, "system:serviceaccount:default:default"),
                       ({"token": agent}, "system:bootstrap:k8py-agent"), ({"token": tok}, None)]:
        out = cluster.kubectl("create", "-o", "json", "-f", "-", input=json.dumps(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}))
        status = json.loads(out.stdout)["status"]
        assert status.get("authenticated", False) == (user is not None), status
        assert user is None or status["user"]["username"] == user
