"""`NodeHosts`: add, stop (power cut), start and remove the node hosts of one cluster.

A node host is made of: its record, its network namespace on the host bridge
(`hostnet`), its agent process (`agent`). `stop` is a power cut: the agent is killed,
every container of the node with it (its runc state is wiped, as /run is at a reboot),
and its cable is pulled (host-side veth down); `start` plugs the cable back and boots
the agent, which finds no containers and starts its pods again. `remove` does all of
`stop`, then deletes the namespace, the record and the node's cgroups.

Invariants: a name is taken while its record exists (a clear one-line error, nothing
made); an address is never given to two nodes of the cluster: `reserve` checks the name,
picks the address and writes the record in one step under `layout.records_lock()`, so two
adds at once (two `k8py node add`, or one while the server adds its nodes) never read the
same free address; everything removed is named by `layout`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
from pathlib import Path

from k8py.nodehost import agent, hostnet
from k8py.nodehost.errors import NodeHostError
from k8py.nodehost.layout import (
    HostNetwork,
    NodeHost,
    check_name,
    node_from_record,
    read_record,
    records_lock,
    write_record,
)


def _pid(rec: dict[str, object]) -> int:
    pid = rec.get("pid")
    return pid if isinstance(pid, int) else 0


class NodeHosts:
    def __init__(self, cluster: HostNetwork) -> None:
        self.cluster = cluster

    @classmethod
    def of(cls, data_dir: str | Path) -> NodeHosts:
        return cls(HostNetwork.load(data_dir))

    def records(self) -> dict[str, dict[str, object]]:
        out = {}
        for path in self.cluster.record_paths():
            rec = read_record(path)
            cluster = rec.get("cluster")
            if isinstance(cluster, dict) and cluster.get("data_dir") == self.cluster.data_dir:
                out[str(rec.get("name"))] = rec
        return out

    def get(self, name: str) -> tuple[NodeHost, dict[str, object]]:
        rec = self.records().get(name)
        if rec is None:
            raise NodeHostError(f"no node host named {name!r} in this cluster")
        return node_from_record(rec), rec

    def _used_ips(self) -> set[str]:
        """Every address of a record of this cluster (whatever its state), and the host's."""
        return {str(read_record(p).get("ip")) for p in self.cluster.record_paths()} | {self.cluster.host_ip}

    def reserve(self, name: str, ip: str = "") -> NodeHost:
        """Take `name` and an address (`ip`, else the lowest free one): its record is written
        ("creating") before the lock is released. Blocks while another process reserves."""
        with records_lock():
            if name in self.records():
                raise NodeHostError(f"node {name!r} already exists in this cluster")
            used, net = self._used_ips(), self.cluster.net
            if ip and (ipaddress.ip_address(ip) not in net or ip in used):
                raise NodeHostError(f"address {ip} is not free in the node network {net}")
            ip = ip or next((str(h) for h in net.hosts() if str(h) not in used), "")
            if not ip:
                raise NodeHostError(f"no free address left in the node network {net}")
            node = self.cluster.node(name, ip)
            write_record(node, 0, "creating")  # the name and the address are taken from here on
            return node

    async def add(self, name: str, ip: str = "") -> NodeHost:
        check_name(name)  # before anything is made
        await hostnet.ensure_bridge(self.cluster)
        node = await asyncio.to_thread(self.reserve, name, ip)
        try:
            await hostnet.create_netns(node)
            write_record(node, agent.spawn(node), "running")
        except BaseException:
            await self._tear_down(node, 0)
            raise
        return node

    async def stop(self, name: str) -> NodeHost:
        node, rec = self.get(name)
        await self._power_off(node, _pid(rec))
        write_record(node, 0, "stopped")
        return node

    async def start(self, name: str) -> NodeHost:
        node, rec = self.get(name)
        if rec.get("state") == "running" and agent.alive(_pid(rec)):
            raise NodeHostError(f"node {name!r} is already running")
        await hostnet.ensure_bridge(self.cluster)
        if not Path("/run/netns", node.netns).exists():
            await hostnet.create_netns(node)
        await hostnet.set_link(node, True)
        write_record(node, agent.spawn(node), "running")
        return node

    async def remove(self, name: str) -> NodeHost:
        node, rec = self.get(name)
        await self._tear_down(node, _pid(rec))
        return node

    async def remove_all(self) -> list[str]:
        names = sorted(self.records())
        for name in names:
            await self.remove(name)
        await hostnet.remove_bridge(self.cluster)
        return names

    async def _power_off(self, node: NodeHost, pid: int) -> None:
        from k8py.runtime.cleanup import cleanup

        await asyncio.to_thread(agent.kill, pid)
        await hostnet.set_link(node, False)
        await cleanup(node.state_dir, node.root_dir, cgroup_parent=node.cgroup_parent,
                      netns_prefix=node.netns_prefix)
        # the pods' addresses went with their namespaces: as /run at a reboot, forget them
        shutil.rmtree(node.root_dir / "network" / "ipam", ignore_errors=True)

    async def _tear_down(self, node: NodeHost, pid: int) -> None:
        await self._power_off(node, pid)
        await hostnet.delete_netns(node)
        node.record.unlink(missing_ok=True)


async def cleanup() -> None:
    """Remove every node host of every cluster on this machine (for `k8py reset`)."""
    from k8py.nodehost.layout import RECORDS

    clusters = {}
    for path in sorted(RECORDS.glob("*.json")) if RECORDS.is_dir() else []:
        rec = read_record(path)
        try:
            node = node_from_record(rec)
        except (NodeHostError, KeyError, TypeError):
            continue
        clusters[node.cluster.data_dir] = node.cluster
        await NodeHosts(node.cluster)._tear_down(node, _pid(rec))
    for cluster in clusters.values():
        await hostnet.remove_bridge(cluster)
