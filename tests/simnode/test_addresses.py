"""Addresses of simulated nodes and pods: TEST-NET node IPs, pod CIDRs carved top-down, pod IPs."""

from __future__ import annotations

import ipaddress

import pytest

from k8py.simnode.addresses import PodIPs, documentation_address, top_down_cidrs


def test_documentation_addresses_stay_in_test_nets() -> None:
    assert documentation_address(0) == "192.0.2.1"
    assert documentation_address(253) == "192.0.2.254"
    assert documentation_address(254) == "198.51.100.1"
    assert documentation_address(762) is None


@pytest.mark.parametrize("n,first,last", [
    (201, "10.42.255.0/24", "10.42.55.0/24"),
    (1000, "10.42.255.192/26", "10.42.6.0/26"),
])
def test_top_down_cidrs_for_many_nodes(n: int, first: str, last: str) -> None:
    cidrs = top_down_cidrs("10.42.0.0/16", n)
    assert (cidrs[0], cidrs[-1], len(set(cidrs))) == (first, last, n)
    nets = [ipaddress.ip_network(c) for c in cidrs]
    assert all(net.subnet_of(ipaddress.ip_network("10.42.0.0/16")) for net in nets)  # type: ignore[arg-type]


def test_pod_ips_are_handed_out_once_until_released() -> None:
    ips = PodIPs("10.42.7.0/30")  # .0 network, .1 gateway, .2 the one pod address, .3 broadcast
    assert ips.allocate("a") == "10.42.7.2"
    assert ips.allocate("a") == "10.42.7.2"  # the same pod keeps its address
    assert ips.allocate("b") is None
    ips.release("a")
    assert ips.allocate("b") == "10.42.7.2"
