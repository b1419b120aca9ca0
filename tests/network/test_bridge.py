"""BridgeNetwork on the real kernel: two pod namespaces on a test bridge reach each
other and the host; service and cluster ranges route to the bridge, never the
default route; teardown leaves nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from k8py.network.bridge import BridgeNetwork, cleanup_links, veth_name

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"),
                                reason="needs root and iproute2")

BR = "k8pyt0"
NS = ("k8py-nettest-a", "k8py-nettest-b")


@dataclass(frozen=True)
class Pod:
    """A network.podref.PodRef (the runtime passes its PodSandboxConfig)."""

    name: str
    namespace: str
    uid: str


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


@pytest.fixture
async def net(tmp_path: Path):  # type: ignore[no-untyped-def]
    n = BridgeNetwork("10.244.7.0/24", "10.244.0.0/16", "10.245.0.0/16", tmp_path, bridge=BR)
    for ns in NS:
        subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
    try:
        yield n
    finally:
        for ns in NS:
            await n.teardown(f"/run/netns/{ns}", Pod(name=ns, namespace="t", uid=ns))
            subprocess.run(["ip", "netns", "del", ns], check=False)
        await cleanup_links(BR)


async def test_pods_reach_each_other_and_host(net: BridgeNetwork) -> None:
    await net.ensure_node()
    ips = [await net.setup(f"/run/netns/{ns}", Pod(name=ns, namespace="t", uid=ns)) for ns in NS]
    assert ips[0] != ips[1]
    assert all(i.startswith("10.244.7.") and i != "10.244.7.1" for i in ips)
    # pod a -> pod b, pod -> gateway, host -> pod
    sh("ip", "netns", "exec", NS[0], "ping", "-c1", "-W2", ips[1])
    sh("ip", "netns", "exec", NS[1], "ping", "-c1", "-W2", net.gateway)
    sh("ping", "-c1", "-W2", ips[0])
    # idempotent setup keeps the address
    assert await net.setup(f"/run/netns/{NS[0]}", Pod(name="a", namespace="t", uid="a")) == ips[0]


async def test_service_and_cluster_ranges_stay_local(net: BridgeNetwork) -> None:
    await net.ensure_node()
    for addr in ("10.245.0.99", "10.244.200.3"):
        assert f"dev {BR}" in sh("ip", "route", "get", addr)


async def test_teardown_releases_address_and_link(net: BridgeNetwork) -> None:
    await net.ensure_node()
    path = f"/run/netns/{NS[0]}"
    cfg = Pod(name="a", namespace="t", uid="a")
    await net.setup(path, cfg)
    await net.teardown(path, cfg)
    assert veth_name(path) not in sh("ip", "-o", "link", "show")
    assert net.ipam.allocated() == {}
    await net.teardown(path, cfg)  # idempotent


def test_ipam_never_hands_out_one_address_twice(tmp_path: Path) -> None:
    from k8py.network.ipam import HostLocalIPAM
    ipam = HostLocalIPAM("10.9.0.0/29", tmp_path)
    got = [ipam.allocate(f"o{i}") for i in range(5)]  # .2 .. .6
    assert len(set(got)) == 5 and "10.9.0.1" not in got
    from k8py.network.errors import AddressesExhausted
    with pytest.raises(AddressesExhausted):
        ipam.allocate("extra")
    ipam.release("o0")
    assert ipam.allocate("again") == got[0]  # the only free one
    assert ipam.allocate("o1") == got[1]


def test_ipam_does_not_reuse_a_released_address_at_once(tmp_path: Path) -> None:
    from k8py.network.ipam import HostLocalIPAM
    ipam = HostLocalIPAM("10.9.0.0/24", tmp_path)
    a = ipam.allocate("a")
    ipam.release("a")
    b = ipam.allocate("b")
    assert b != a
    # the rotation survives a restart (state is on disk)
    assert HostLocalIPAM("10.9.0.0/24", tmp_path).allocate("c") not in (a, b)


async def test_an_mtu_reaches_the_bridge_and_both_ends_of_a_pods_veth(net: BridgeNetwork) -> None:
    net.mtu = 1450  # vxlan over a 1500-byte link (network.mtu)
    await net.ensure_node()
    path = f"/run/netns/{NS[0]}"
    await net.setup(path, Pod(name="a", namespace="t", uid="a"))
    assert " mtu 1450 " in sh("ip", "netns", "exec", NS[0], "ip", "link", "show", "eth0")
    assert " mtu 1450 " in sh("ip", "link", "show", veth_name(path))
    assert " mtu 1450 " in sh("ip", "link", "show", BR)
