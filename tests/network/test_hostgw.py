"""host-gw routes from Node objects: which podCIDRs are routed through which address."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.network.hostgw import desired_routes, route_changes

LINK = "10.41.0.0/24"


def node(name: str, cidr: str | None, ip: str | None) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr} if cidr else {},
            "status": {"addresses": ([{"type": "InternalIP", "address": ip}] if ip else [])
                       + [{"type": "Hostname", "address": name}]}}


@pytest.mark.parametrize(("nodes", "own", "want"), [
    pytest.param([node("a", "10.42.0.0/24", "10.41.0.2"), node("b", "10.42.1.0/24", "10.41.0.3")], "a",
                 {"10.42.1.0/24": "10.41.0.3"}, id="every other node, not my own"),
    pytest.param([node("a", "10.42.0.0/24", "10.41.0.2"), node("b", "10.42.1.0/24", "10.41.0.3")], "",
                 {"10.42.0.0/24": "10.41.0.2", "10.42.1.0/24": "10.41.0.3"}, id="the machine: all nodes"),
    pytest.param([node("b", "10.42.1.0/24", None), node("c", None, "10.41.0.4")], "a", {},
                 id="no address or no podCIDR yet: no route"),
    pytest.param([node("b", "10.42.1.0/24", "192.168.1.7")], "a", {},
                 id="an address off the node link is never a next hop"),
    pytest.param([node("b", "10.42.1.0/24", "10.41.0.0"), node("c", "10.42.2.0/24", "10.41.0.255")], "a", {},
                 id="network and broadcast addresses are no next hop"),
    pytest.param([node("b", "10.41.0.0/25", "10.41.0.3")], "a", {}, id="a podCIDR overlapping the link"),
    pytest.param([node("b", "10.42.1.0/24", "10.41.0.3"), node("c", "10.42.1.0/25", "10.41.0.4"),
                  node("d", "10.42.2.0/24", "10.41.0.5")], "a", {"10.42.2.0/24": "10.41.0.5"},
                 id="overlapping podCIDRs: neither is routed"),
    pytest.param([node("b", "garbage", "10.41.0.3"), node("c", "10.42.2.0/24", "not-an-ip")], "a", {},
                 id="malformed values are skipped"),
])
def test_desired_routes(nodes: list[dict[str, Any]], own: str, want: dict[str, str]) -> None:
    assert desired_routes(nodes, own, LINK) == want


@pytest.mark.parametrize(("current", "want", "put", "delete"), [
    ({}, {"10.42.1.0/24": "10.41.0.3"}, {"10.42.1.0/24": "10.41.0.3"}, []),
    ({"10.42.1.0/24": "10.41.0.3"}, {"10.42.1.0/24": "10.41.0.3"}, {}, []),
    ({"10.42.1.0/24": "10.41.0.3"}, {"10.42.1.0/24": "10.41.0.9"}, {"10.42.1.0/24": "10.41.0.9"}, []),
    ({"10.42.1.0/24": "10.41.0.3", "10.42.2.0/24": "10.41.0.4"}, {}, {}, ["10.42.1.0/24", "10.42.2.0/24"]),
])
def test_route_changes(current: dict[str, str], want: dict[str, str], put: dict[str, str],
                       delete: list[str]) -> None:
    assert route_changes(current, want) == (put, delete)
