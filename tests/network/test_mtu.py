"""The pods' MTU from the backend: the node link's MTU for host-gw, 50 bytes less for vxlan
(flannel's subnet.env), the kernel's default without a backend or a link."""

from __future__ import annotations

import pytest

from k8py.network.mtu import VXLAN_OVERHEAD, link_mtu, mtu_for

LISTING: list[dict[str, object]] = [
    {"ifname": "lo", "mtu": 65536, "addr_info": [{"family": "inet", "local": "127.0.0.1"}]},
    {"ifname": "eth0", "mtu": 9000, "addr_info": [{"family": "inet", "local": "10.41.0.2"}]},
    {"ifname": "k8py0", "mtu": 1500, "addr_info": []},
]


@pytest.mark.parametrize(("backend", "link", "want"), [
    pytest.param("vxlan", 1500, 1450, id="vxlan: the link less the encapsulation"),
    pytest.param("vxlan", 9000, 9000 - VXLAN_OVERHEAD, id="vxlan on jumbo frames"),
    pytest.param("host-gw", 1500, 1500, id="host-gw: the link's own"),
    pytest.param("none", 1500, 0, id="no backend: the kernel's default"),
    pytest.param("", 1500, 0, id="the embedded node"),
    pytest.param("vxlan", 0, 0, id="no link found"),
])
def test_mtu_for(backend: str, link: int, want: int) -> None:
    assert mtu_for(backend, link) == want


@pytest.mark.parametrize(("address", "want"), [("10.41.0.2", 9000), ("127.0.0.1", 65536), ("10.41.0.9", 0)])
def test_link_mtu_is_the_mtu_of_the_link_holding_the_address(address: str, want: int) -> None:
    assert link_mtu(LISTING, address) == want
