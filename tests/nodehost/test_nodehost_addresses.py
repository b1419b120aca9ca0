"""Node host addresses: two adds at once (in one event loop, or in two threads as two
`k8py node add` processes would) get distinct addresses, and an address held by a
record (running, stopped or still being created) is never given again. The links and
the agent are stubbed: only the allocation (the records) is real, in a temp dir."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from k8py.nodehost import NodeHostError, NodeHosts, layout, manager
from k8py.nodehost.layout import HostNetwork, write_record


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HostNetwork:
    async def slow_bridge(_: Any) -> None:
        await asyncio.sleep(0.02)  # `ip` runs as a subprocess: other adds run meanwhile

    async def nothing(*_: Any) -> None:
        return None

    monkeypatch.setattr(layout, "RECORDS", tmp_path / "records")
    monkeypatch.setattr(manager.hostnet, "ensure_bridge", slow_bridge)
    monkeypatch.setattr(manager.hostnet, "create_netns", nothing)
    monkeypatch.setattr(manager.hostnet, "set_link", nothing)
    monkeypatch.setattr(manager.hostnet, "delete_netns", nothing)
    monkeypatch.setattr(manager.agent, "spawn", lambda node: 0)
    monkeypatch.setattr(NodeHosts, "_power_off", nothing)  # no agent, containers or cgroups to stop
    return HostNetwork(str(tmp_path / "data"), node_network="10.41.9.0/24")


def ips(cluster: HostNetwork) -> dict[str, str]:
    return {name: str(r["ip"]) for name, r in NodeHosts(cluster).records().items()}


async def test_concurrent_adds_in_one_loop_get_distinct_addresses(cluster: HostNetwork) -> None:
    nodes = await asyncio.gather(*(NodeHosts(cluster).add(f"node-{i}") for i in range(1, 5)))
    got = sorted(n.ip for n in nodes)
    assert got == ["10.41.9.2", "10.41.9.3", "10.41.9.4", "10.41.9.5"], got
    assert sorted(ips(cluster).values()) == got


def test_concurrent_adds_from_two_threads_get_distinct_addresses(cluster: HostNetwork,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def slow_write(*args: Any) -> None:  # a slow disk: the record lands well after the address was chosen
        time.sleep(0.05)
        write_record(*args)

    monkeypatch.setattr(manager, "write_record", slow_write)
    errors: list[BaseException] = []

    def add(name: str) -> None:  # each thread its own loop and NodeHosts, as a `k8py node add` process
        try:
            asyncio.run(NodeHosts(cluster).add(name))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=add, args=(f"node-{i}",)) for i in range(1, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sorted(ips(cluster).values()) == ["10.41.9.2", "10.41.9.3", "10.41.9.4"], ips(cluster)


async def test_an_address_in_use_is_never_given_again(cluster: HostNetwork) -> None:
    hosts = NodeHosts(cluster)
    write_record(cluster.node("old", "10.41.9.2"), 0, "stopped")
    write_record(cluster.node("half", "10.41.9.3"), 0, "creating")  # an add that has not finished (or died)
    assert (await hosts.add("node-1")).ip == "10.41.9.4"
    for taken in ("10.41.9.1", "10.41.9.3", "10.41.9.4", "10.41.8.7"):  # host bridge, records, outside
        with pytest.raises(NodeHostError, match=f"address {taken} is not free"):
            await hosts.add("node-2", taken)
    with pytest.raises(NodeHostError, match="already exists"):
        await hosts.add("half")
    assert ips(cluster) == {"old": "10.41.9.2", "half": "10.41.9.3", "node-1": "10.41.9.4"}
    await hosts.remove("old")  # a removed node's address is free again
    assert (await hosts.add("node-2")).ip == "10.41.9.2"
