"""Names of node hosts: valid, k8py-prefixed, within Linux's limits, distinct per cluster."""

from __future__ import annotations

import pytest

from k8py.nodehost import NodeHostError
from k8py.nodehost.forward import rewrite
from k8py.nodehost.layout import HostNetwork, check_name


@pytest.mark.parametrize("name", ["", "Node-1", "-a", "a-", "a_b", "x" * 41, "a.b"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(NodeHostError, match="invalid node name"):
        check_name(name)


def test_names_fit_and_differ_between_clusters() -> None:
    a, b = HostNetwork("/tmp/a"), HostNetwork("/tmp/b")
    na, nb = a.node("node-1", "10.41.0.2"), b.node("node-1", "10.41.0.2")
    assert na.netns != nb.netns and na.veth != nb.veth and a.bridge != b.bridge
    for n in (na, nb):
        assert len(n.veth) <= 15 and len(n.cluster.bridge) <= 15
        assert all(x.startswith("k8py") for x in (n.netns, n.veth, n.cgroup_parent, n.netns_prefix))
    assert a.host_ip == "10.41.0.1" and a.server_url.startswith("https://10.41.0.1:")


def test_a_node_network_too_small_or_not_ipv4_is_refused() -> None:
    for net in ("10.41.0.0/31", "fd00::/64"):
        with pytest.raises(NodeHostError, match="node network"):
            _ = HostNetwork("/tmp/a", node_network=net).host_ip


def test_loopback_mirrors_move_to_the_bridge_address() -> None:
    config = {"mirrors": {"docker.io": {"endpoint": ["http://127.0.0.1:5000", "https://mirror.example"]},
                          "quay.io": {"endpoint": ["localhost:5001"]}}, "disable_default_endpoint": True}
    out, ports = rewrite(config, "10.41.0.1")
    assert ports == {5000, 5001}
    assert out["mirrors"]["docker.io"]["endpoint"] == ["http://10.41.0.1:5000", "https://mirror.example"]
    assert out["mirrors"]["quay.io"]["endpoint"] == ["http://10.41.0.1:5001"]
    assert out["disable_default_endpoint"] is True
