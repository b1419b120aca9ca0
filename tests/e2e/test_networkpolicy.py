"""NetworkPolicy with real containers and the real kubectl on one node: a default deny
blocks a busybox pod's `wget` to an nginx pod and to its Service, an allow rule by label
lets the labelled pod through (and not the other), egress rules block DNS until a rule
allows UDP/TCP 53 to kube-dns, an ipBlock with except; `kubectl get`, `explain`, a 422."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from e2e_harness import wait_for

pytestmark = pytest.mark.root

WEB = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}},
       "spec": {"terminationGracePeriodSeconds": 0,
                "containers": [{"name": "nginx", "image": "nginx:1.14.2",
                                "ports": [{"name": "http", "containerPort": 80}],
                                # probes come from the node: they keep passing under a default deny
                                "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1}}]}}
SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}}


def client(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "bb", "image": "busybox:1.28", "command": ["sleep", "3600"]}]}}


def policy(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name}, "spec": spec}


WEB_SEL = {"matchLabels": {"app": "web"}}
DENY = policy("default-deny", podSelector={})
ALLOW = policy("allow-access", podSelector=WEB_SEL,
               ingress=[{"from": [{"podSelector": {"matchLabels": {"access": "true"}}}],
                         "ports": [{"protocol": "TCP", "port": "http"}]}])
EGRESS_WEB_ONLY = policy("egress-web-only", podSelector={"matchLabels": {"access": "true"}}, policyTypes=["Egress"],
                         egress=[{"to": [{"podSelector": WEB_SEL}], "ports": [{"protocol": "TCP", "port": 80}]}])
EGRESS_DNS = policy("egress-dns", podSelector={"matchLabels": {"access": "true"}}, policyTypes=["Egress"],
                    egress=[{"to": [{"namespaceSelector": {"matchLabels": {
                        "kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}])


def apply(c: Any, *objs: dict[str, Any]) -> None:
    c.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objs))


def reaches(c: Any, pod: str, target: str) -> bool:
    """One wget from `pod`, given 3 s (a dropped SYN never answers; this busybox's `wget -T` crashes)."""
    p = c.kubectl("exec", pod, "--", "timeout", "3", "wget", "-q", "-O", "/dev/null", f"http://{target}/",
                  check=False, timeout=60)
    return p.returncode == 0


def resolves(c: Any, pod: str, name: str) -> bool:
    """A DNS lookup from `pod`, given 4 s (under `timeout`, busybox's own nslookup runs: a full name)."""
    p = c.kubectl("exec", pod, "--", "timeout", "4", "nslookup", f"{name}.default.svc.cluster.local",
                  check=False, timeout=60)
    return p.returncode == 0


@pytest.fixture(scope="module")
def np(agent_cluster: Any) -> dict[str, Any]:
    c = agent_cluster
    apply(c, WEB, SERVICE, client("allowed", {"access": "true"}), client("blocked", {}))
    for pod in ("web", "allowed", "blocked"):
        c.kubectl("wait", "--for=condition=Ready", f"pod/{pod}", "--timeout=120s", timeout=130)
    ips = {p: c.kubectl_json("get", "pod", p)["status"]["podIP"] for p in ("web", "allowed", "blocked")}
    wait_for(lambda: reaches(c, "blocked", "web"), 60, "the web Service from a pod")
    return {"c": c, "ips": ips}


def test_default_deny_then_allow_by_label(np: dict[str, Any]) -> None:
    c, web = np["c"], np["ips"]["web"]
    assert reaches(c, "allowed", web) and reaches(c, "blocked", web)
    apply(c, DENY)
    wait_for(lambda: not reaches(c, "blocked", web), 30, "the default deny")
    assert not reaches(c, "allowed", web) and not reaches(c, "allowed", "web")  # the pod and its Service
    c.kubectl("wait", "--for=condition=Ready", "pod/web", "--timeout=5s", timeout=30)  # probes from the node pass
    apply(c, ALLOW)
    wait_for(lambda: reaches(c, "allowed", web), 30, "the allow rule")
    assert reaches(c, "allowed", "web")
    assert not reaches(c, "blocked", web) and not reaches(c, "blocked", "web")
    out = c.kubectl("get", "networkpolicy").stdout.splitlines()
    assert out[0].split() == ["NAME", "POD-SELECTOR", "AGE"]
    assert sorted(line.split()[:2] for line in out[1:]) == [["allow-access", "app=web"], ["default-deny", "<none>"]]


def test_egress_rules_block_dns_until_allowed(np: dict[str, Any]) -> None:
    c, web = np["c"], np["ips"]["web"]
    assert resolves(c, "allowed", "web")
    apply(c, EGRESS_WEB_ONLY)
    wait_for(lambda: not resolves(c, "allowed", "web"), 60, "DNS blocked by the egress rules")
    assert reaches(c, "allowed", web)  # what the egress rule allows still passes
    apply(c, EGRESS_DNS)
    wait_for(lambda: resolves(c, "allowed", "web"), 30, "DNS allowed to kube-dns")
    assert reaches(c, "allowed", "web")
    c.kubectl("delete", "networkpolicy", "egress-web-only", "egress-dns")


def test_ipblock_with_except(np: dict[str, Any]) -> None:
    c, ips = np["c"], np["ips"]
    cidr = ips["web"].rsplit(".", 1)[0] + ".0/24"
    c.kubectl("delete", "networkpolicy", "allow-access", "--ignore-not-found")
    apply(c, policy("by-block", podSelector=WEB_SEL,
                    ingress=[{"from": [{"ipBlock": {"cidr": cidr, "except": [ips["allowed"] + "/32"]}}]}]))
    wait_for(lambda: reaches(c, "blocked", ips["web"]), 30, "the ipBlock rule")
    assert not reaches(c, "allowed", ips["web"])
    c.kubectl("delete", "networkpolicy", "--all")
    wait_for(lambda: reaches(c, "allowed", ips["web"]), 30, "no policy: everything open again")


def test_kubectl_explain_and_a_bad_cidr_refused(np: dict[str, Any]) -> None:
    c = np["c"]
    assert "ipBlock" in c.kubectl("explain", "networkpolicy.spec.ingress.from").stdout
    bad = policy("bad", podSelector={}, ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.300/8"}}],
                                                 "ports": [{"port": 90, "endPort": 80}]}])
    p = c.kubectl("apply", "-f", "-", input=yaml.safe_dump(bad), check=False)
    assert p.returncode != 0
    assert 'spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "10.0.0.300/8"' in p.stderr, p.stderr
    assert "spec.ingress[0].ports[0].endPort: Invalid value: 90: must be greater than or equal to `port`" in p.stderr
    assert c.kubectl("get", "netpol", "bad", check=False).returncode != 0
