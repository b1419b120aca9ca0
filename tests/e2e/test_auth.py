"""Authentication as a stranger sees it: no credentials, no access (except health and version)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from e2e_harness import K8pyServer, wait_for

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


def test_agent_token_only_bootstraps(cluster: K8pyServer) -> None:
    """The shared agent token is a bootstrap identity: no reads, only its node's credentials."""
    token = (cluster.data_dir / "pki" / "agent-token").read_text().strip()
    status, body = _get(cluster, "/api/v1/namespaces", {"Authorization": f"Bearer {token}"})
    assert status == 403, body
    assert _get(cluster, "/api/v1/namespaces", {"Authorization": "Bearer nope"})[0] == 401
    req = urllib.request.Request(cluster.url + "/k8py/v1/node-credentials", method="POST",
                                 data=json.dumps({"nodeName": "joiner"}).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ssl.create_default_context(
            cafile=str(cluster.data_dir / "pki" / "ca.crt"))) as r:
        creds = json.loads(r.read())
    assert creds["user"] == "system:node:joiner" and "BEGIN CERTIFICATE" in creds["clientCert"]
    sa = cluster.kubectl("create", "token", "default").stdout.strip()  # nobody else gets node credentials
    req = urllib.request.Request(cluster.url + "/k8py/v1/node-credentials", method="POST",
                                 data=json.dumps({"nodeName": "joiner"}).encode(),
                                 headers={"Authorization": f"Bearer {sa}", "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, context=ssl.create_default_context(
            cafile=str(cluster.data_dir / "pki" / "ca.crt")))
    assert e.value.code == 403


def test_cacerts_is_public_and_pinned_by_its_hash(cluster: K8pyServer) -> None:
    from k8py.apiserver.certs import ca_cert_hash
    status, body = _get(cluster, "/cacerts")
    assert status == 200 and body == (cluster.data_dir / "pki" / "ca.crt").read_bytes()
    assert ca_cert_hash(body) == (cluster.data_dir / "pki" / "ca-cert-hash").read_text()


def test_an_agent_refuses_a_server_whose_ca_is_not_the_pinned_one(cluster: K8pyServer, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    p = subprocess.run([sys.executable, "-m", "k8py.cli.main", "agent", "--server", cluster.url, "--token", "x",
                        "--ca-cert-hash", "sha256:" + "0" * 64, "--node-name", "pinned"], capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, K8PY_AGENT_ROOT=str(tmp_path)))
    assert p.returncode != 0 and "not the pinned sha256:000" in p.stderr, p.stderr
    assert not (tmp_path / "pki").exists()


def _node_kubeconfig(cluster: K8pyServer, tmp_path: Path, node: str) -> str:
    """A kubeconfig for system:node:<node>, its certificate minted through the data dir's CA."""
    from k8py.apiserver.certs import mint_node_credentials
    c = mint_node_credentials(cluster.data_dir / "pki", node)
    (tmp_path / "n.crt").write_bytes(c.client_cert)
    (tmp_path / "n.key").write_bytes(c.client_key)
    cfg = yaml.safe_load(cluster.kubeconfig.read_text())
    cfg["users"] = [{"name": cfg["users"][0]["name"], "user": {"client-certificate": str(tmp_path / "n.crt"),
                                                                "client-key": str(tmp_path / "n.key")}}]
    kc = tmp_path / f"node-{node}"
    kc.write_text(yaml.safe_dump(cfg))
    return str(kc)


def _node(cluster: K8pyServer) -> str:
    """A Node (no agent behind it: the tests only need the object)."""
    if cluster.kubectl("get", "node", "nodeauth-n", check=False).returncode != 0:
        cluster.kubectl("create", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "nodeauth-n"}}))
    return "nodeauth-n"


def test_a_node_identity_is_confined_to_its_node(cluster: K8pyServer, tmp_path: Path) -> None:
    node = _node(cluster)
    cluster.kubectl("run", "nodeauth-p", "--image=busybox", "--restart=Never",
                    f"--overrides={json.dumps({'spec': {'nodeName': node}})}", "--", "sleep", "3600")
    try:
        kc = _node_kubeconfig(cluster, tmp_path, "other")
        p = cluster.kubectl("--kubeconfig", kc, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
        assert p.stdout == "system:node:other"
        p = cluster.kubectl("--kubeconfig", kc, "get", "pod", "nodeauth-p", check=False)
        assert p.returncode != 0 and "no relationship found between node 'other' and this object" in p.stderr, p
        p = cluster.kubectl("--kubeconfig", kc, "label", "node", node, "x=y", check=False)
        assert p.returncode != 0 and f'node "other" is not allowed to modify node "{node}"' in p.stderr, p
        p = cluster.kubectl("--kubeconfig", kc, "get", "pods", "-A", check=False)
        assert p.returncode != 0 and "can only list/watch pods with spec.nodeName field selector" in p.stderr, p
        p = cluster.kubectl("--kubeconfig", kc, "get", "pods", "-A", "--field-selector=spec.nodeName=other")
        assert p.returncode == 0, p
    finally:
        cluster.kubectl("delete", "pod", "nodeauth-p", "--wait=false")


def test_a_service_account_may_not_patch_a_node_status(cluster: K8pyServer, tmp_path: Path) -> None:
    node = _node(cluster)
    tok = cluster.kubectl("create", "token", "default").stdout.strip()
    kc = _as_token(cluster, tmp_path, tok)
    p = cluster.kubectl("--kubeconfig", kc, "patch", "node", node, "--subresource=status", "--type=merge", "-p",
                        '{"status":{"addresses":[{"type":"InternalIP","address":"127.0.0.9"}]}}', check=False)
    assert p.returncode != 0 and f'nodes "{node}" is forbidden' in p.stderr, p


def test_kubectl_without_credentials(cluster: K8pyServer, tmp_path: Path) -> None:
    cfg = yaml.safe_load(cluster.kubeconfig.read_text())
    cfg["users"] = [{"name": "admin", "user": {"token": "not-a-valid-token"}}]
    kc = tmp_path / "anon"
    kc.write_text(yaml.safe_dump(cfg))
    p = cluster.kubectl("--kubeconfig", str(kc), "get", "pods", check=False)
    assert p.returncode != 0
    assert "You must be logged in to the server" in p.stderr, p.stderr


# ---- authorization (RBAC) through the real kubectl ----

SA = "system:serviceaccount:default:default"


def _as_token(cluster: K8pyServer, tmp_path: Path, token: str) -> str:
    """A kubeconfig of the cluster whose user is `token`."""
    cfg = yaml.safe_load(cluster.kubeconfig.read_text())
    cfg["users"] = [{"name": u["name"], "user": {"token": token}} for u in cfg["users"]]
    kc = tmp_path / "token-kubeconfig"
    kc.write_text(yaml.safe_dump(cfg))
    return str(kc)


def test_whoami_and_can_i_as_admin(cluster: K8pyServer) -> None:
    me = cluster.kubectl_json("auth", "whoami")
    assert me["kind"] == "SelfSubjectReview" and "system:masters" in me["status"]["userInfo"]["groups"]
    assert cluster.kubectl("auth", "can-i", "create", "pods").stdout.strip() == "yes"
    listing = cluster.kubectl("auth", "can-i", "--list").stdout
    assert "*.*" in listing and "[*]" in listing, listing


def test_default_service_account_is_refused_until_bound(cluster: K8pyServer, tmp_path: Path) -> None:
    token = cluster.kubectl("create", "token", "default").stdout.strip()
    kc = _as_token(cluster, tmp_path, token)
    assert cluster.kubectl("--kubeconfig", kc, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"
                           ).stdout == SA
    refused = {
        ("get", "secrets"): f'secrets is forbidden: User "{SA}" cannot list resource "secrets" in API group "" '
                            'in the namespace "default"',
        ("get", "nodes"): f'nodes is forbidden: User "{SA}" cannot list resource "nodes" in API group "" at the '
                          "cluster scope",
        ("get", "namespaces"): f'namespaces is forbidden: User "{SA}" cannot list resource "namespaces" in API '
                               'group "" at the cluster scope',
    }
    for args, message in refused.items():
        p = cluster.kubectl("--kubeconfig", kc, *args, check=False)
        assert p.returncode != 0 and f"Error from server (Forbidden): {message}" in p.stderr, p.stderr
    p = cluster.kubectl("auth", "can-i", "list", "secrets", "--as", SA, check=False)
    assert p.stdout.strip() == "no"
    p = cluster.kubectl("--kubeconfig", kc, "get", "pods", "--as", "jane", check=False)
    assert (f'users "jane" is forbidden: User "{SA}" cannot impersonate resource "users" in API group "" at the '
            "cluster scope") in p.stderr, p.stderr

    cluster.kubectl("create", "role", "secret-reader", "--verb=get,list", "--resource=secrets")
    cluster.kubectl("create", "rolebinding", "sa-secrets", "--role=secret-reader", "--serviceaccount=default:default")
    cluster.kubectl("create", "clusterrole", "cluster-reader", "--verb=get,list", "--resource=nodes,namespaces")
    cluster.kubectl("create", "clusterrolebinding", "sa-cluster-reader", "--clusterrole=cluster-reader",
                    "--serviceaccount=default:default")
    for args in refused:
        wait_for(lambda args=args: cluster.kubectl("--kubeconfig", kc, *args, check=False).returncode == 0,
                 what=f"{args} allowed after the bindings")
    assert cluster.kubectl("auth", "can-i", "list", "secrets", "--as", SA).stdout.strip() == "yes"
    assert cluster.kubectl("auth", "can-i", "delete", "secrets", "--as", SA, check=False).stdout.strip() == "no"
    listing = cluster.kubectl("--kubeconfig", kc, "auth", "can-i", "--list").stdout
    assert "secrets" in listing and "selfsubjectaccessreviews.authorization.k8s.io" in listing, listing
    table = cluster.kubectl("get", "rolebinding", "sa-secrets", "-o", "wide").stdout
    assert "Role/secret-reader" in table and "default/default" in table, table


def test_impersonation_for_those_allowed(cluster: K8pyServer, tmp_path: Path) -> None:
    cluster.kubectl("create", "serviceaccount", "ops")
    kc = _as_token(cluster, tmp_path, cluster.kubectl("create", "token", "ops").stdout.strip())
    p = cluster.kubectl("--kubeconfig", kc, "get", "pods", "--as", "jane", check=False)
    assert 'cannot impersonate resource "users"' in p.stderr, p.stderr
    cluster.kubectl("create", "clusterrole", "impersonator", "--verb=impersonate", "--resource=users,groups")
    cluster.kubectl("create", "clusterrolebinding", "ops-impersonates", "--clusterrole=impersonator",
                    "--serviceaccount=default:ops")
    me = wait_for(lambda: cluster.kubectl("--kubeconfig", kc, "auth", "whoami", "--as", "jane", "--as-group", "devs",
                                          "-o", "json", check=False).stdout, what="impersonation allowed")
    info = json.loads(me)["status"]["userInfo"]
    assert info["username"] == "jane" and info["groups"] == ["devs", "system:authenticated"]
