"""VXLAN peers from Node objects: route, neighbour and FDB entries for every other node."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.network.vxlan import (
    VTEP_MAC_ANNOTATION,
    Peer,
    commands,
    desired_peers,
    device_commands,
    fdb_commands,
    stale,
)


def node(name: str, cidr: str | None, ip: str | None, mac: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if mac:
        meta["annotations"] = {VTEP_MAC_ANNOTATION: mac}
    return {"metadata": meta, "spec": {"podCIDR": cidr} if cidr else {},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}] if ip else []}}


A = node("a", "10.42.0.0/24", "10.41.0.2", "aa:aa:aa:aa:aa:01")
B = node("b", "10.42.1.0/24", "10.41.0.3", "AA:AA:AA:AA:AA:02")
PB = Peer("b", "10.42.1.0/24", "10.42.1.0", "aa:aa:aa:aa:aa:02", "10.41.0.3")


@pytest.mark.parametrize(("nodes", "own", "want"), [
    pytest.param([A, B], "a", [PB], id="every other node, not my own; MAC lower-cased"),
    pytest.param([node("b", "10.42.1.0/24", "10.41.0.3", None)], "a", [], id="no VTEP MAC published yet"),
    pytest.param([node("b", None, "10.41.0.3", "aa:aa:aa:aa:aa:02")], "a", [], id="no podCIDR yet"),
    pytest.param([node("b", "10.42.1.0/24", None, "aa:aa:aa:aa:aa:02")], "a", [], id="no InternalIP yet"),
    pytest.param([node("b", "10.42.1.0/24", "10.41.0.3", "not-a-mac")], "a", [], id="malformed MAC"),
    pytest.param([B, node("c", "10.42.1.0/25", "10.41.0.4", "aa:aa:aa:aa:aa:03")], "a", [],
                 id="overlapping podCIDRs: neither"),
])
def test_desired_peers(nodes: list[dict[str, Any]], own: str, want: list[Peer]) -> None:
    assert desired_peers(nodes, own) == want


def test_commands() -> None:
    assert commands([PB], "k8py.1") == [
        ["neigh", "replace", "10.42.1.0", "lladdr", "aa:aa:aa:aa:aa:02", "dev", "k8py.1", "nud", "permanent"],
        ["route", "replace", "10.42.1.0/24", "via", "10.42.1.0", "dev", "k8py.1", "onlink"]]
    assert fdb_commands([PB], "k8py.1") == [
        ["fdb", "replace", "aa:aa:aa:aa:aa:02", "dev", "k8py.1", "dst", "10.41.0.3", "self", "permanent"]]


def test_device_commands() -> None:
    add, addr, up = device_commands("10.42.0.0/24", "10.41.0.2", "k8py.1")  # mtu 0: the kernel's
    assert device_commands("10.42.0.0/24", "10.41.0.2", "k8py.1", 1450)[1] == ["link", "set", "k8py.1", "mtu", "1450"]
    assert add[:4] == ["link", "add", "k8py.1", "type"] and "nolearning" in add
    assert add[add.index("id") + 1] == "1" and add[add.index("dstport") + 1] == "8472"
    assert add[add.index("local") + 1] == "10.41.0.2"
    assert addr == ["addr", "replace", "10.42.0.0/32", "dev", "k8py.1"] and up[-1] == "up"


def test_stale() -> None:
    current = [{"dst": "10.42.1.0/24"}, {"dst": "10.42.2.0/24"}, {"mac": "x"}]
    assert stale(current, "dst", {"10.42.1.0/24"}) == ["10.42.2.0/24"]
