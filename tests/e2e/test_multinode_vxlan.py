"""VXLAN mode (`k8py server --nodes 3 --flannel-backend vxlan`): the cross-node test of
test_multinode (a pod on node-1 fetches a page from a pod IP on node-3; ClusterIP from a
pod on every node), each node's vxlan device and its entries, pods and vxlan devices with
the node link's MTU less 50 (and a 20 MB transfer across nodes), and the course's capture
DaemonSet (test_multinode's check, through the vxlan devices). One cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_multinode import (
    CAPTURE,
    NGINX,
    NODES,
    SERVICE,
    NodesCluster,
    apply,
    capture_a_cross_node_request,
    client_pod,
    in_node,
    internal_ips,
    mtus,
    node_hosts,
    passed,
    ready_pods,
)

from e2e_harness import wait_for

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def vx(tmp_path_factory: pytest.TempPathFactory, local_registry: Any) -> Iterator[NodesCluster]:
    with node_hosts(tmp_path_factory, local_registry, "k8py-vxlan", "--flannel-backend", "vxlan") as c:
        wait_for(lambda: sorted(internal_ips(c)) == NODES, 60, "3 nodes Ready")
        apply(c, NGINX, SERVICE, CAPTURE, *(client_pod(n) for n in NODES))
        wait_for(lambda: len(ready_pods(c, "app=web")) == 6, 180, "6 ready nginx replicas")
        for n in NODES:
            c.kubectl("wait", "--for=condition=Ready", f"pod/bb-{n}", "--timeout=120s", timeout=130)
        yield c


def test_every_node_has_a_vxlan_device_and_entries_for_the_others(vx: NodesCluster) -> None:
    nodes = {n["metadata"]["name"]: n for n in vx.kubectl_json("get", "nodes")["items"]}
    macs = {name: n["metadata"].get("annotations", {}).get("k8py.io/vtep-mac", "") for name, n in nodes.items()}
    assert len(set(macs.values())) == 3 and all(macs.values()), macs
    for name in NODES:
        link = in_node(vx, name, "ip", "-d", "link", "show", "k8py.1")
        assert "vxlan id 1" in link and "dstport 8472" in link and "nolearning" in link, link
        assert macs[name] in link, (name, link)
        routes = in_node(vx, name, "ip", "route", "show", "dev", "k8py.1")
        fdb = in_node(vx, name, "bridge", "fdb", "show", "dev", "k8py.1")
        for other in set(NODES) - {name}:
            assert nodes[other]["spec"]["podCIDR"] in routes and "onlink" in routes, (name, routes)
            assert macs[other] in fdb, (name, fdb)


def test_a_pod_fetches_a_page_from_a_pod_on_another_node(vx: NodesCluster) -> None:
    far = next(p for p in ready_pods(vx, "app=web") if p["spec"]["nodeName"] == "node-3")
    r = vx.kubectl("exec", "bb-node-1", "--", "wget", "-q", "-O", "-", f"http://{far['status']['podIP']}/",
                   timeout=30)
    assert "Welcome to nginx" in r.stdout


def test_cluster_ip_round_robin_from_a_pod_on_every_node(vx: NodesCluster) -> None:
    pods = [p["metadata"]["name"] for p in ready_pods(vx, "app=web")]
    for n in NODES:
        agent = f"k8py-vx-{n}"
        script = f"i=0; while [ $i -lt 30 ]; do wget -q -O /dev/null -U {agent} http://web/ || exit 1; i=$((i+1)); done"
        vx.kubectl("exec", f"bb-{n}", "--", "sh", "-c", script, timeout=300)
        got = {p: vx.kubectl("logs", p, timeout=30).stdout.count(agent) for p in pods}
        assert sorted(got.values()) == [5] * 6, (n, got)


def test_pods_and_vxlan_devices_have_the_node_links_mtu_less_50(vx: NodesCluster) -> None:
    for n in NODES:  # as flannel's subnet.env: 1450 over a 1500-byte link, so no frame is too big to tunnel
        link = in_node(vx, n, "cat", "/sys/class/net/k8py.1/mtu")
        assert mtus(vx, n) == (int(link), int(link) + 50) and int(link) == 1450, (n, link)


def test_a_large_transfer_across_nodes(vx: NodesCluster) -> None:
    far = next(p for p in ready_pods(vx, "app=web") if p["spec"]["nodeName"] == "node-3")
    vx.kubectl("exec", far["metadata"]["name"], "--", "sh", "-c",
               "head -c 20000000 /dev/zero > /usr/share/nginx/html/big", timeout=60)
    r = vx.kubectl("exec", "bb-node-1", "--", "sh", "-c",
                   f"wget -q -O - http://{far['status']['podIP']}/big | wc -c", timeout=120)
    assert r.stdout.strip() == "20000000", r


def test_capture_daemonset_sees_a_cross_node_request_on_the_nodes_it_passes(vx: NodesCluster) -> None:
    flow, logs = capture_a_cross_node_request(vx)  # through the vxlan devices: out of node-1's, into node-3's
    assert passed(logs["node-1"], flow, "k8py.1", "Out"), logs["node-1"][-2000:]
    assert passed(logs["node-3"], flow, "k8py.1", "In"), logs["node-3"][-2000:]
