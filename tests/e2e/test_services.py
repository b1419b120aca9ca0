"""Services and cluster DNS with real containers and the real kubectl (the course's
services lesson): round robin through a ClusterIP counted in each nginx replica's
log, NodePort on 127.0.0.1, LoadBalancer addresses, endpoints following readiness,
no failed request after a replica's endpoint is gone, and DNS from a busybox pod.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from typing import Any

import pytest
import yaml

from e2e_harness import wait_for

pytestmark = pytest.mark.root

NGINX = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "nginx", "labels": {"app": "nginx"}},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "nginx"}},
             "template": {"metadata": {"labels": {"app": "nginx"}},
                          "spec": {"terminationGracePeriodSeconds": 5,
                                   "containers": [{"name": "nginx", "image": "nginx:1.14.2",
                                                   "ports": [{"name": "http", "containerPort": 80}],
                                                   # traffic only once nginx answers, as one should run it
                                                   "readinessProbe": {"httpGet": {"path": "/", "port": 80},
                                                                      "periodSeconds": 1}}]}}},
}
SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx"},
           "spec": {"selector": {"app": "nginx"}, "ports": [{"port": 80, "targetPort": "http"}]}}
CLIENT = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
          "spec": {"terminationGracePeriodSeconds": 0,
                   "containers": [{"name": "bb", "image": "busybox:1.28", "command": ["sleep", "3600"]}]}}


def apply(c: Any, *objs: dict) -> None:  # type: ignore[type-arg]
    c.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objs))


def ready_pods(c: Any, selector: str) -> list[str]:
    pods = c.kubectl_json("get", "pods", "-l", selector)["items"]
    out = []
    for p in pods:
        conds = {x["type"]: x["status"] for x in p["status"].get("conditions") or []}
        if conds.get("Ready") == "True" and not p["metadata"].get("deletionTimestamp"):
            out.append(p["metadata"]["name"])
    return out


def endpoint_ips(c: Any, name: str) -> list[str]:
    ep = c.kubectl_json("get", "endpoints", name)
    return sorted(a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or [])


def proxy_rules(c: Any) -> str:
    """The node's service rules: the nftables table of this cluster's service proxy."""
    out = subprocess.run(["nft", "list", "table", "ip", f"k8py-{c.ident}"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def ready_slice_ips(c: Any, service: str) -> list[str]:
    slices = c.kubectl_json("get", "endpointslices", "-l", f"kubernetes.io/service-name={service}")["items"]
    return sorted(a for s in slices for e in s.get("endpoints") or []
                  if (e.get("conditions") or {}).get("ready") is not False for a in e.get("addresses") or [])


def wget_count(c: Any, n: int, url: str = "http://nginx/") -> None:
    """n requests from the client pod, each a new connection, through the service name."""
    script = f"i=0; while [ $i -lt {n} ]; do wget -q -O /dev/null -U k8py-rr {url} || exit 1; i=$((i+1)); done"
    c.kubectl("exec", "client", "--", "sh", "-c", script, timeout=300)


def requests_seen(c: Any, pod: str) -> int:
    return c.kubectl("logs", pod).stdout.count("k8py-rr")


@pytest.fixture(scope="module")
def svc_cluster(agent_cluster: Any) -> Any:
    c = agent_cluster
    apply(c, NGINX, SERVICE, CLIENT)
    wait_for(lambda: len(ready_pods(c, "app=nginx")) == 3, 120, "3 ready nginx replicas")
    wait_for(lambda: len(endpoint_ips(c, "nginx")) == 3, 30, "3 endpoints")
    c.kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=90s", timeout=100)
    return c


def test_round_robin_through_the_service_name(svc_cluster: Any) -> None:
    c = svc_cluster
    pods = ready_pods(c, "app=nginx")
    before = {p: requests_seen(c, p) for p in pods}
    wget_count(c, 300)
    got = {p: requests_seen(c, p) - before[p] for p in pods}
    assert sorted(got.values()) == [100, 100, 100], got


def test_scaling_up_gives_new_pods_their_share_and_unready_pods_none(svc_cluster: Any) -> None:
    c = svc_cluster
    unready = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nginx-unready", "labels": {"app": "nginx"}},
               "spec": {"terminationGracePeriodSeconds": 0,
                        "containers": [{"name": "nginx", "image": "nginx:1.14.2",
                                        "ports": [{"name": "http", "containerPort": 80}],
                                        "readinessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1}}]}}
    apply(c, unready)
    c.kubectl("scale", "deployment/nginx", "--replicas=5")
    wait_for(lambda: len(ready_pods(c, "app=nginx")) == 5, 120, "5 ready replicas")
    wait_for(lambda: len(endpoint_ips(c, "nginx")) == 5, 30, "5 ready endpoints")
    pod_status = c.kubectl_json("get", "pod", "nginx-unready")["status"]
    assert pod_status.get("phase") == "Running"
    assert pod_status.get("podIP") not in endpoint_ips(c, "nginx")
    pods = ready_pods(c, "app=nginx")
    before = {p: requests_seen(c, p) for p in pods + ["nginx-unready"]}
    wget_count(c, 500)
    got = {p: requests_seen(c, p) - before[p] for p in pods}
    assert sorted(got.values()) == [100] * 5, got
    assert requests_seen(c, "nginx-unready") == before["nginx-unready"] == 0
    c.kubectl("delete", "pod", "nginx-unready", "--wait=true")
    c.kubectl("scale", "deployment/nginx", "--replicas=3")
    wait_for(lambda: len(endpoint_ips(c, "nginx")) == 3, 60, "back to 3 endpoints")


def _http(url: str, timeout: float = 3) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback / our service range
        return r.read().decode()


def test_node_port_and_load_balancers_from_the_host(svc_cluster: Any) -> None:
    c = svc_cluster
    c.kubectl("expose", "deployment", "nginx", "--name=nginx-np", "--type=NodePort", "--port=80")
    np = c.kubectl_json("get", "svc", "nginx-np")["spec"]["ports"][0]["nodePort"]
    assert 30000 <= np <= 32767
    wait_for(lambda: "Welcome to nginx" in _try(f"http://127.0.0.1:{np}/"), 30, "NodePort on 127.0.0.1")
    c.kubectl("expose", "deployment", "nginx", "--name=lb-a", "--type=LoadBalancer", "--port=80")
    c.kubectl("expose", "deployment", "nginx", "--name=lb-b", "--type=LoadBalancer", "--port=80")
    ips = []
    for name in ("lb-a", "lb-b"):
        ip = wait_for(lambda n=name: (c.kubectl_json("get", "svc", n).get("status", {}).get("loadBalancer", {})
                                      .get("ingress") or [{}])[0].get("ip"), 30, f"{name} external IP")
        ips.append(ip)
        assert ip in c.kubectl("get", "svc", name).stdout  # the EXTERNAL-IP column
    assert ips[0] != ips[1]
    for ip in ips:
        wait_for(lambda i=ip: "Welcome to nginx" in _try(f"http://{i}/"), 30, f"LoadBalancer {ip}:80")
    # the same round robin from the host, through the NodePort and a LoadBalancer address
    pods = ready_pods(c, "app=nginx")
    for url in (f"http://127.0.0.1:{np}/", f"http://{ips[0]}/"):
        before = {p: requests_seen(c, p) for p in pods}
        for _ in range(30):
            req = urllib.request.Request(url, headers={"User-Agent": "k8py-rr"})
            with urllib.request.urlopen(req, timeout=3) as r:  # noqa: S310 - loopback
                r.read()
        got = sorted(requests_seen(c, p) - before[p] for p in pods)
        assert got == [10, 10, 10], (url, got)


def _try(url: str) -> str:
    try:
        return _http(url)
    except OSError:
        return ""


def test_deleting_a_replica_fails_no_request_after_its_endpoint_is_gone(svc_cluster: Any) -> None:
    c = svc_cluster
    cluster_ip = c.kubectl_json("get", "svc", "nginx")["spec"]["clusterIP"]
    results: list[tuple[float, bool]] = []
    stop = threading.Event()

    def loop() -> None:
        deadline = time.monotonic() + 120  # bounded, whatever happens
        while not stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()  # a request counts from when it was sent
            try:
                _http(f"http://{cluster_ip}/", timeout=2)
                results.append((started, True))
            except OSError:
                results.append((started, False))

    t = threading.Thread(target=loop)
    t.start()
    try:
        wait_for(lambda: len(results) > 20, 30, "the client loop running")
        victim = ready_pods(c, "app=nginx")[0]
        victim_ip = c.kubectl_json("get", "pod", victim)["status"]["podIP"]
        c.kubectl("delete", "pod", victim, "--wait=false")
        # The change is complete when the EndpointSlice (what the service proxy follows)
        # no longer offers the victim as ready and the proxy has taken it out of the node's
        # nftables rules (the proxy reprograms a few ms after the slice changes, as
        # kube-proxy does; kubectl may see the slice first on a loaded machine).
        wait_for(lambda: victim_ip not in ready_slice_ips(c, "nginx"), 30, "the endpoint removed")
        wait_for(lambda: victim_ip not in proxy_rules(c), 30, "the endpoint out of the proxy's rules")
        gone_at = time.monotonic()
        wait_for(lambda: len([r for r in results if r[0] > gone_at]) > 50, 60, "requests after the change")
    finally:
        stop.set()
        t.join()
    during = [ok for ts, ok in results if ts <= gone_at]
    after = [ok for ts, ok in results if ts > gone_at]
    print(f"replica deletion: {during.count(False)} of {len(during)} requests failed before the endpoint "
          f"was gone, {after.count(False)} of {len(after)} after "
          f"(at {[round(ts - gone_at, 3) for ts, ok in results if ts > gone_at and not ok]} s)")
    assert after.count(False) == 0
    wait_for(lambda: len(endpoint_ips(c, "nginx")) == 3, 120, "the replacement replica ready")


def test_cluster_dns_from_a_busybox_pod(svc_cluster: Any) -> None:
    c = svc_cluster
    headless = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx-headless"},
                "spec": {"clusterIP": "None", "selector": {"app": "nginx"}, "ports": [{"port": 80}]}}
    apply(c, headless)
    c.kubectl("create", "service", "externalname", "ext", "--external-name", "db.example.com")
    resolv = c.kubectl("exec", "client", "--", "cat", "/etc/resolv.conf").stdout
    assert f"nameserver {c.cluster_dns}" in resolv and "search default.svc.cluster.local" in resolv
    assert "ndots:5" in resolv
    assert c.kubectl_json("get", "svc", "kube-dns", "-n", "kube-system")["spec"]["clusterIP"] == c.cluster_dns
    kube = c.kubectl("exec", "client", "--", "nslookup", "kubernetes.default").stdout
    assert c.kubectl_json("get", "svc", "kubernetes")["spec"]["clusterIP"] in kube
    svc_ip = c.kubectl_json("get", "svc", "nginx")["spec"]["clusterIP"]
    out = c.kubectl("exec", "client", "--", "nslookup", "nginx.default.svc.cluster.local").stdout
    assert svc_ip in out
    assert "Welcome to nginx" in c.kubectl("exec", "client", "--", "wget", "-qO-", "http://nginx").stdout
    ext = c.kubectl("exec", "client", "--", "nslookup", "ext.default.svc.cluster.local", check=False).stdout
    assert "db.example.com" in ext
    pod_ips = sorted(json.loads(c.kubectl("get", "pods", "-l", "app=nginx", "-o",
                                          "jsonpath={.items[*].status.podIP}").stdout.replace(" ", "\",\"")
                                .join(["[\"", "\"]"])))
    wait_for(lambda: sorted(endpoint_ips(c, "nginx-headless")) == pod_ips, 30, "headless endpoints")
    out = c.kubectl("exec", "client", "--", "nslookup", "nginx-headless.default.svc.cluster.local").stdout
    assert all(ip in out for ip in pod_ips), out


def test_packet_capture_daemonset_sees_service_traffic(svc_cluster: Any) -> None:
    """The course's packet-capture DaemonSet: tcpdump in a hostNetwork pod with
    NET_ADMIN/NET_RAW on every node sees the traffic to the service."""
    c = svc_cluster
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "capture"},
          "spec": {"selector": {"matchLabels": {"app": "capture"}},
                   "template": {"metadata": {"labels": {"app": "capture"}},
                                "spec": {"hostNetwork": True, "terminationGracePeriodSeconds": 0,
                                         "containers": [{
                                             "name": "tcpdump", "image": "tcpdump",
                                             "args": ["-i", "any", "-n", "-l", "tcp port 80"],
                                             "securityContext": {
                                                 "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}}}]}}}}
    apply(c, ds)
    wait_for(lambda: ready_pods(c, "app=capture"), 90, "the capture pod ready")
    cluster_ip = c.kubectl_json("get", "svc", "nginx")["spec"]["clusterIP"]

    def seen() -> bool:
        wget_count(c, 3)
        return f"{cluster_ip}.80" in c.kubectl("logs", "ds/capture").stdout
    wait_for(seen, 60, "tcpdump output showing the service address")
    c.kubectl("delete", "daemonset", "capture", "--wait=true")
