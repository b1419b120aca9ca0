"""Several real nodes on one machine (`k8py server --nodes 3`): node hosts with their own
network namespace, address and agent, pods spread on them, pod to pod across nodes
(host-gw, pods with the node link's MTU), Services and NodePorts reaching endpoints on
every node in round robin, cluster DNS from every node, logs and exec on every node, the
course's capture DaemonSet (a request between pods of node-1 and node-3 in the captures
of node-1 and node-3, not node-2's), and a node powered off and on. One cluster for the
whole module; teardown checks that no node host is left. The capture and MTU helpers are
shared with test_multinode_vxlan.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e_harness import K8PY, K8pyServer, wait_for

pytestmark = pytest.mark.root
NODES = ["node-1", "node-2", "node-3"]

NGINX = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
    "spec": {"replicas": 6, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"terminationGracePeriodSeconds": 1,
                                   "containers": [{"name": "nginx", "image": "nginx:1.14.2",
                                                   "ports": [{"name": "http", "containerPort": 80}],
                                                   "readinessProbe": {"httpGet": {"path": "/", "port": 80},
                                                                      "periodSeconds": 1}}]}}}}
SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}}
CAPTURE = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "capture"},
           "spec": {"selector": {"matchLabels": {"app": "capture"}},
                    "template": {"metadata": {"labels": {"app": "capture"}},
                                 "spec": {"hostNetwork": True, "terminationGracePeriodSeconds": 0,
                                          "containers": [{"name": "tcpdump", "image": "tcpdump",
                                                          "args": ["-i", "any", "-n", "-l", "tcp port 80"],
                                                          "securityContext": {"capabilities": {
                                                              "add": ["NET_ADMIN", "NET_RAW"]}}}]}}}}


def client_pod(node: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"bb-{node}"},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "bb", "image": "busybox:1.28", "command": ["sleep", "3600"]}]}}


class NodesCluster(K8pyServer):
    """A `k8py server --nodes N` (3) on its own node network, pod and service ranges."""

    def __init__(self, tmp: Path, registries: Path, n: int = 3) -> None:
        self.node_network = f"10.41.{random.randint(0, 255)}.0/24"
        self.cluster_cidr = f"10.{random.randint(250, 254)}.0.0/16"
        service_cidr = f"10.{random.randint(100, 199)}.0.0/16"
        lb_pool = f"127.{random.randint(101, 250)}.{random.randint(0, 255)}.0/24"
        env = {"K8PY_REGISTRIES": str(registries), "K8PY_DNS_UPSTREAM": "none", "K8PY_AGENT_BACKOFF_BASE": "1",
               "K8PY_LOG": os.environ.get("K8PY_LOG", "INFO")}
        super().__init__(tmp / "data", env=env, extra_args=(
            "--nodes", str(n), "--node-network", self.node_network, "--cluster-cidr", self.cluster_cidr,
            "--service-cidr", service_cidr, "--service-lb-pool", lb_pool))

    def node_cmd(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*K8PY, "node", *args, "--data-dir", str(self.data_dir)], capture_output=True,
                              text=True, timeout=120)

    def node_host(self, name: str) -> Any:
        from k8py.nodehost import NodeHosts
        return NodeHosts.of(self.data_dir).get(name)[0]

    def leftovers(self) -> list[str]:
        from k8py.nodehost.layout import RECORDS, HostNetwork

        cid = HostNetwork(str(self.data_dir.resolve())).cid
        out = [f"netns {n}" for n in os.listdir("/run/netns") if n.startswith(f"k8py-n{cid}-")] \
            if Path("/run/netns").exists() else []
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
        out += [f"link {w}" for w in links.split() if w.rstrip(":").startswith(f"k8pyh{cid}")]
        out += [f"record {p.name}" for p in RECORDS.glob(f"{cid}-*")] if RECORDS.exists() else []
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        out += [f"nftables {t}" for t in tables.split() if t == f"k8py-h{cid}"]
        routes = subprocess.run(["ip", "route", "show", "proto", "77"], capture_output=True, text=True).stdout
        out += [f"route {r}" for r in routes.splitlines() if r.startswith(self.cluster_cidr.rsplit(".", 2)[0] + ".")]
        return out


@contextlib.contextmanager
def node_hosts(tmp_path_factory: pytest.TempPathFactory, local_registry: Any, name: str,
               *extra_args: str) -> Iterator[NodesCluster]:
    """A started `k8py server --nodes 3` (with `extra_args`) for a module; on the way out the
    server is stopped, its node hosts removed, and nothing of them may be left on the machine."""
    if os.geteuid() != 0 or shutil.which("runc") is None or shutil.which("nsenter") is None:
        pytest.skip("node hosts need root, runc and nsenter")
    tmp = tmp_path_factory.mktemp(name)
    c = NodesCluster(tmp, local_registry.write_registries_yaml(tmp / "registries.yaml"))
    c.extra_args = (*c.extra_args, *extra_args)
    c.start()
    try:
        yield c
    finally:
        c.stop()
        c.node_cmd("rm", "--all")  # the server removes them on SIGTERM; this covers a server that died
    left = c.leftovers()
    assert not left, f"node hosts left behind: {left}"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, local_registry: Any) -> Iterator[NodesCluster]:
    with node_hosts(tmp_path_factory, local_registry, "k8py-nodes") as c:
        yield c


def apply(c: K8pyServer, *objs: dict[str, Any]) -> None:
    c.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objs))


def internal_ips(c: K8pyServer) -> dict[str, str]:
    out = {}
    for n in c.kubectl_json("get", "nodes")["items"]:
        ready = any(x["type"] == "Ready" and x["status"] == "True" for x in n["status"].get("conditions") or [])
        ips = [a["address"] for a in n["status"].get("addresses") or [] if a["type"] == "InternalIP"]
        if ready and ips:
            out[n["metadata"]["name"]] = ips[0]
    return out


def ready_pods(c: K8pyServer, selector: str) -> list[dict[str, Any]]:
    pods = c.kubectl_json("get", "pods", "-l", selector)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp") and any(
        x["type"] == "Ready" and x["status"] == "True" for x in p["status"].get("conditions") or [])]


def in_node(c: NodesCluster, node: str, *argv: str) -> str:
    return subprocess.run(["ip", "netns", "exec", c.node_host(node).netns, *argv], capture_output=True,
                          text=True, timeout=30).stdout


def mtus(c: NodesCluster, node: str) -> tuple[int, int]:
    """The MTU of pod bb-<node>'s eth0 and of the node's own eth0 (its link)."""
    pod = c.kubectl("exec", f"bb-{node}", "--", "cat", "/sys/class/net/eth0/mtu", timeout=30).stdout
    return int(pod), int(in_node(c, node, "cat", "/sys/class/net/eth0/mtu"))


def capture_logs(c: NodesCluster) -> dict[str, str]:
    return {p["spec"]["nodeName"]: c.kubectl("logs", p["metadata"]["name"], timeout=30).stdout
            for p in ready_pods(c, "app=capture")}


def capture_a_cross_node_request(c: NodesCluster) -> tuple[str, dict[str, str]]:
    """The course's capture DaemonSet (tcpdump in a hostNetwork pod on every node): a request
    from bb-node-1 to an nginx pod of node-3 shows in node-1's and node-3's captures and not in
    node-2's. Returns the flow's prefix (the client's address) and the captures."""
    wait_for(lambda: len(ready_pods(c, "app=capture")) == 3, 120, "3 ready capture pods")
    capture = ready_pods(c, "app=capture")
    assert sorted(p["spec"]["nodeName"] for p in capture) == NODES
    assert {p["status"]["podIP"] for p in capture} == set(internal_ips(c).values())  # the node's own address
    client = c.kubectl_json("get", "pod", "bb-node-1")["status"]["podIP"]
    far = next(p for p in ready_pods(c, "app=web") if p["spec"]["nodeName"] == "node-3")["status"]["podIP"]
    c.kubectl("exec", "bb-node-1", "--", "wget", "-q", "-O", "/dev/null", f"http://{far}/", timeout=30)
    flow = f"{client}."  # the client's address and port, then > the server's
    seen = lambda node: any(flow in line and f"> {far}.80:" in line for line in capture_logs(c)[node].splitlines())  # noqa: E731
    wait_for(lambda: seen("node-1") and seen("node-3"), 30, "the request in node-1's and node-3's captures")
    assert not seen("node-2"), capture_logs(c)["node-2"][-2000:]
    return flow, capture_logs(c)


def passed(log: str, flow: str, dev: str, direction: str) -> bool:
    """Whether a `tcpdump -i any` log shows a packet of `flow` on `dev` going `direction`."""
    return any(line.split()[1:3] == [dev, direction] and flow in line for line in log.splitlines())


def _http(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:  # noqa: S310 - node hosts made by this test
            return str(r.read().decode())
    except OSError:
        return ""


@pytest.fixture(scope="module")
def web(nodes: NodesCluster) -> NodesCluster:
    wait_for(lambda: sorted(internal_ips(nodes)) == NODES, 60, "3 nodes Ready")
    apply(nodes, NGINX, SERVICE, CAPTURE, *(client_pod(n) for n in NODES))
    try:
        wait_for(lambda: len(ready_pods(nodes, "app=web")) == 6, 180, "6 ready nginx replicas")
    except AssertionError as e:
        state = nodes.kubectl("get", "pods,nodes", "-o", "wide", check=False).stdout
        events = nodes.kubectl("get", "events", "--sort-by=.lastTimestamp", check=False).stdout[-3000:]
        raise AssertionError(f"{e}\n{state}\n{events}") from None
    for n in NODES:
        nodes.kubectl("wait", "--for=condition=Ready", f"pod/bb-{n}", "--timeout=120s", timeout=130)
    return nodes


def test_nodes_are_ready_with_their_own_addresses(nodes: NodesCluster) -> None:
    wait_for(lambda: sorted(internal_ips(nodes)) == NODES, 60, "3 nodes Ready")
    ips = internal_ips(nodes)
    net = ipaddress.ip_network(nodes.node_network)
    assert len(set(ips.values())) == 3 and all(ipaddress.ip_address(ip) in net for ip in ips.values()), ips
    wide = nodes.kubectl("get", "nodes", "-o", "wide").stdout
    assert all(ip in wide for ip in ips.values()), wide
    cidrs = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in nodes.kubectl_json("get", "nodes")["items"]}
    assert len(set(cidrs.values())) == 3, cidrs


def test_replicas_spread_and_run_on_every_node(web: NodesCluster) -> None:
    placed = {p["spec"]["nodeName"] for p in ready_pods(web, "app=web")}
    assert placed == set(NODES), placed
    cidrs = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in web.kubectl_json("get", "nodes")["items"]}
    for p in ready_pods(web, "app=web"):  # each pod's address is of its node's podCIDR
        assert ipaddress.ip_address(p["status"]["podIP"]) in ipaddress.ip_network(cidrs[p["spec"]["nodeName"]])


def test_a_pod_fetches_a_page_from_a_pod_on_another_node(web: NodesCluster) -> None:
    far = next(p for p in ready_pods(web, "app=web") if p["spec"]["nodeName"] == "node-3")
    r = web.kubectl("exec", "bb-node-1", "--", "wget", "-q", "-O", "-", f"http://{far['status']['podIP']}/",
                    timeout=30)
    assert "Welcome to nginx" in r.stdout


def test_logs_and_exec_reach_pods_on_every_node(web: NodesCluster) -> None:
    for n in NODES:
        r = web.kubectl("exec", f"bb-{n}", "--", "hostname", timeout=30)
        assert r.stdout.strip() == f"bb-{n}"
    for p in ready_pods(web, "app=web"):
        web.kubectl("logs", p["metadata"]["name"], "--tail=1", timeout=30)


def test_port_forward_reaches_a_pod_on_another_node(web: NodesCluster) -> None:
    far = next(p for p in ready_pods(web, "app=web") if p["spec"]["nodeName"] == "node-3")
    pf = subprocess.Popen([web.kubectl_bin, "port-forward", f"pod/{far['metadata']['name']}", ":80"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=web.env())
    try:
        assert pf.stdout is not None
        line = pf.stdout.readline()  # Forwarding from 127.0.0.1:PORT -> 80
        assert "Forwarding from 127.0.0.1:" in line, line
        port = line.split("127.0.0.1:", 1)[1].split()[0]
        wait_for(lambda: "Welcome to nginx" in _http(f"http://127.0.0.1:{port}/"), 30, "port-forward")
    finally:
        pf.terminate()
        pf.wait(10)


def test_pods_on_every_node_reach_the_api_server(web: NodesCluster) -> None:
    for n in NODES:  # the `kubernetes` Service leads to the host bridge address, not to a node's own loopback
        r = web.kubectl("exec", f"bb-{n}", "--", "sh", "-c", "nc kubernetes.default 443 </dev/null && echo ok",
                        timeout=60)
        assert r.stdout.strip() == "ok", (n, r)


def requests_seen(c: K8pyServer, pod: str, agent: str) -> int:
    return c.kubectl("logs", pod, timeout=30).stdout.count(agent)


def test_cluster_ip_round_robin_from_a_pod_on_every_node(web: NodesCluster) -> None:
    pods = [p["metadata"]["name"] for p in ready_pods(web, "app=web")]
    for n in NODES:
        agent = f"k8py-rr-{n}"
        script = f"i=0; while [ $i -lt 30 ]; do wget -q -O /dev/null -U {agent} http://web/ || exit 1; i=$((i+1)); done"
        web.kubectl("exec", f"bb-{n}", "--", "sh", "-c", script, timeout=300)
        got = {p: requests_seen(web, p, agent) for p in pods}
        assert sorted(got.values()) == [5] * 6, (n, got)


def test_node_port_on_every_node_address_and_on_loopback(web: NodesCluster) -> None:
    port = web.kubectl_json("get", "svc", "web")["spec"]["ports"][0]["nodePort"]
    for ip in [*internal_ips(web).values(), "127.0.0.1"]:
        wait_for(lambda ip=ip: "Welcome to nginx" in _http(f"http://{ip}:{port}/"), 30, f"NodePort on {ip}")


def test_cluster_dns_from_every_node(web: NodesCluster) -> None:
    ip = web.kubectl_json("get", "svc", "web")["spec"]["clusterIP"]
    for n in NODES:
        r = web.kubectl("exec", f"bb-{n}", "--", "nslookup", "web.default", timeout=60)
        assert ip in r.stdout, (n, r.stdout)


def test_pods_have_the_node_links_mtu(web: NodesCluster) -> None:
    for n in NODES:  # host-gw: packets cross the nodes' link as they are
        assert mtus(web, n) == (1500, 1500), n


def test_capture_daemonset_sees_a_cross_node_request_on_the_nodes_it_passes(web: NodesCluster) -> None:
    flow, logs = capture_a_cross_node_request(web)  # routed by the nodes: out of node-1's link, into node-3's
    assert passed(logs["node-1"], flow, "eth0", "Out"), logs["node-1"][-2000:]
    assert passed(logs["node-3"], flow, "eth0", "In"), logs["node-3"][-2000:]


def container_ids(c: K8pyServer, node: str) -> dict[str, str]:
    return {p["metadata"]["name"]: p["status"]["containerStatuses"][0].get("containerID", "")
            for p in ready_pods(c, "app=web") if p["spec"]["nodeName"] == node}


def test_a_node_powered_off_and_on_again(web: NodesCluster) -> None:
    before = container_ids(web, "node-2")
    ips = [p["status"]["podIP"] for p in ready_pods(web, "app=web") if p["spec"]["nodeName"] == "node-2"]
    assert before and ips
    r = web.node_cmd("stop", "node-2")
    assert r.returncode == 0, r
    host = NodesCluster.node_host(web, "node-2")
    assert not host.state_dir.exists() and not any(Path("/sys/fs/cgroup").glob(f"*/{host.cgroup_parent}/*/"))
    assert all(_http(f"http://{ip}/") == "" for ip in ips)  # its pods are gone with the power
    assert "node-2\t" in web.node_cmd("ls").stdout and "stopped" in web.node_cmd("ls").stdout
    r = web.node_cmd("start", "node-2")
    assert r.returncode == 0, r

    def restarted() -> bool:  # Ready again in new containers, none of the old ones
        after = container_ids(web, "node-2")
        return len(after) == len(before) and not set(before.values()) & set(after.values())
    wait_for(restarted, 120, "node-2's pods Ready again in new containers")
    for p in ready_pods(web, "app=web"):
        if p["spec"]["nodeName"] == "node-2":
            wait_for(lambda ip=p["status"]["podIP"]: "Welcome to nginx" in _http(f"http://{ip}/"), 30, "pod served")


def test_node_cli_refuses_a_taken_name_and_an_unknown_node(nodes: NodesCluster) -> None:
    r = nodes.node_cmd("add", "node-1")
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0 and "already exists" in r.stderr, r
    r = nodes.node_cmd("stop", "node-9")
    assert r.returncode == 1 and "no node host named 'node-9'" in r.stderr, r


def test_a_node_added_later_goes_ready(nodes: NodesCluster) -> None:
    r = nodes.node_cmd("add", "node-4")
    assert r.returncode == 0, r
    wait_for(lambda: "node-4" in internal_ips(nodes), 60, "node-4 Ready")
    r = nodes.node_cmd("rm", "node-4")
    assert r.returncode == 0, r
    wait_for(lambda: "node-4" not in nodes.kubectl("get", "nodes").stdout, 30, "node-4 gone")
