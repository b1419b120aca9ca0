"""Service ClusterIP and NodePort allocation, as Kubernetes' service registry does it.

What is allocated is derived from the stored Services (read once, then kept
current from every write and delete, so deleting a Service releases its
addresses, and a restart loses nothing);
`lock` serializes allocate-then-store so that concurrent creates never share an
address. Reserved: the network and broadcast addresses; the first host address
(the `kubernetes` Service) and the cluster DNS address are handed out only when
requested explicitly. Errors are 422 causes with Kubernetes' wording.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random

from k8py.api.types import Obj
from k8py.apiserver.config import ApiServerConfig
from k8py.apiserver.machinery import cause
from k8py.store.protocol import Store

SERVICES_PREFIX = "/registry/core/services/"


class Allocation:
    """Addresses in use, by every stored Service except the one being written."""

    def __init__(self, ips: set[str], ports: set[int]) -> None:
        self.ips = ips
        self.ports = ports


class ServiceAllocator:
    def __init__(self, store: Store, config: ApiServerConfig, rng: random.Random | None = None) -> None:
        self.store = store
        self.network = ipaddress.ip_network(config.service_cidr, strict=False)
        self.port_lo, self.port_hi = config.node_port_range
        self.reserved = {str(self.network.network_address + 1), config.cluster_dns}
        self.lock = asyncio.Lock()
        self.rng = rng or random.Random()
        # key -> (revision, cluster IPs, node ports) of every Service; None until first used.
        self._index: dict[str, tuple[int, set[str], set[int]]] | None = None

    async def in_use(self, except_key: str | None) -> Allocation:
        """What every stored Service but `except_key` holds. Read from the store once,
        then kept current by `observe` (called by the registry for its own writes and
        by the services watch for everyone's)."""
        if self._index is None:
            index: dict[str, tuple[int, set[str], set[int]]] = {}
            start_after: str | None = None
            while True:
                res = await self.store.list(SERVICES_PREFIX, start_after=start_after, limit=1000)
                for kv in res.items:
                    index[kv.key] = (kv.mod_revision, *_held(kv.value))
                if not res.more or not res.items:
                    break
                start_after = res.items[-1].key
            if self._index is None:
                self._index = index
        ips: set[str] = set()
        ports: set[int] = set()
        for key, (_, kips, kports) in self._index.items():
            if key != except_key:
                ips |= kips
                ports |= kports
        return Allocation(ips, ports)

    def observe(self, key: str, revision: int, value: bytes | None) -> None:
        """A Service was written (value) or deleted (None) at `revision`. Out-of-order
        reports (a watch event older than what the registry recorded) are ignored."""
        if self._index is None or not key.startswith(SERVICES_PREFIX):
            return
        cur = self._index.get(key)
        if cur is not None and cur[0] >= revision:
            return
        if value is None:
            self._index[key] = (revision, set(), set())  # a tombstone keeps the revision
        else:
            self._index[key] = (revision, *_held(value))

    def _random_ip(self, used: set[str]) -> str | None:
        size = self.network.num_addresses
        first, last = 1, size - 2  # skip the network and broadcast addresses
        if last < first:
            return None
        start = self.rng.randint(first, last)
        for i in range(last - first + 1):
            off = first + (start - first + i) % (last - first + 1)
            ip = str(self.network.network_address + off)
            if ip not in used and ip not in self.reserved:
                return ip
        return None

    def _random_port(self, used: set[int]) -> int | None:
        n = self.port_hi - self.port_lo + 1
        start = self.rng.randint(0, n - 1)
        for i in range(n):
            p = self.port_lo + (start + i) % n
            if p not in used:
                return p
        return None

    def allocate(self, svc: Obj, old: Obj | None, used: Allocation) -> list[dict[str, str]]:
        """Fill spec.clusterIP(s) and nodePorts of `svc` in place; returns 422 causes."""
        spec = svc.get("spec")
        if not isinstance(spec, dict):
            return []
        causes: list[dict[str, str]] = []
        ospec = (old or {}).get("spec") or {}
        stype = spec.get("type") or "ClusterIP"
        causes += self._cluster_ip(spec, ospec, stype, used)
        causes += self._node_ports(spec, ospec, stype, used)
        return causes

    def _cluster_ip(self, spec: Obj, ospec: Obj, stype: str, used: Allocation) -> list[dict[str, str]]:
        if stype == "ExternalName":
            if spec.get("clusterIP") in ("", None):
                spec.pop("clusterIP", None)
                spec.pop("clusterIPs", None)
            return []
        want = spec.get("clusterIP")
        if not want and isinstance(spec.get("clusterIPs"), list) and spec["clusterIPs"]:
            want = spec["clusterIPs"][0]
        old_ip = ospec.get("clusterIP")
        if old_ip and ospec.get("type") != "ExternalName":
            if not want:
                want = old_ip  # unspecified on update: keep what was allocated
            if want != old_ip:
                return [cause("FieldValueInvalid", "spec.clusterIPs[0]",
                              f'Invalid value: "{want}": may not change once set')]
            spec["clusterIP"] = old_ip
            spec["clusterIPs"] = ospec.get("clusterIPs") or [old_ip]
            return []
        if want == "None":
            spec["clusterIP"] = "None"
            spec["clusterIPs"] = ["None"]
            return []
        if want:
            try:
                addr = ipaddress.ip_address(want)
            except ValueError:
                return [cause("FieldValueInvalid", "spec.clusterIPs[0]",
                              f'Invalid value: "{want}": must be a valid IP address, '
                              "(e.g. 10.9.8.7 or 2001:db8::ffff)")]
            if addr not in self.network or addr in (self.network.network_address, self.network.broadcast_address):
                return [cause("FieldValueInvalid", "spec.clusterIPs",
                              f'Invalid value: ["{want}"]: failed to allocate IP {want}: provided IP is not '
                              f"in the valid range. The range of valid IPs is {self.network}")]
            if want in used.ips:
                return [cause("FieldValueInvalid", "spec.clusterIPs",
                              f'Invalid value: ["{want}"]: failed to allocate IP {want}: '
                              "provided IP is already allocated")]
            ip = want
        else:
            got = self._random_ip(used.ips)
            if got is None:
                return [cause("InternalError", "spec.clusterIPs",
                              "Internal error: failed to allocate a serviceIP: range is full")]
            ip = got
        used.ips.add(ip)
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]
        return []

    def _node_ports(self, spec: Obj, ospec: Obj, stype: str, used: Allocation) -> list[dict[str, str]]:
        ports = spec.get("ports")
        if not isinstance(ports, list):
            return []
        wants_ports = stype == "NodePort" or (
            stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True) is not False)
        old_ports = [p for p in ospec.get("ports") or [] if isinstance(p, dict)] \
            if ospec.get("type") in ("NodePort", "LoadBalancer") else []
        causes: list[dict[str, str]] = []
        mine: set[int] = set()
        for i, p in enumerate(ports):
            if not isinstance(p, dict):
                continue
            np = p.get("nodePort")
            if not wants_ports:
                if np not in (None, 0) and stype == "ClusterIP":
                    causes.append(cause("FieldValueForbidden", f"spec.ports[{i}].nodePort",
                                        "Forbidden: may not be used when `type` is 'ClusterIP'"))
                p.pop("nodePort", None) if np in (None, 0) else None
                continue
            if np in (None, 0):
                for op in old_ports:  # keep what this port had (matched by name, then number)
                    if op.get("nodePort") and (op.get("name") or "") == (p.get("name") or "") \
                            and op.get("port") == p.get("port"):
                        np = op["nodePort"]
                        break
                if np in (None, 0):
                    got = self._random_port(used.ports | mine)
                    if got is None:
                        causes.append(cause("InternalError", f"spec.ports[{i}].nodePort",
                                            "Internal error: failed to allocate a nodePort: range is full"))
                        continue
                    np = got
            elif not isinstance(np, int) or not self.port_lo <= np <= self.port_hi:
                causes.append(cause("FieldValueInvalid", f"spec.ports[{i}].nodePort",
                                    f"Invalid value: {np}: provided port is not in the valid range. "
                                    f"The range of valid ports is {self.port_lo}-{self.port_hi}"))
                continue
            elif np in used.ports:
                causes.append(cause("FieldValueInvalid", f"spec.ports[{i}].nodePort",
                                    f"Invalid value: {np}: provided port is already allocated"))
                continue
            p["nodePort"] = np
            mine.add(np)
        used.ports |= mine
        return causes


def _held(value: bytes) -> tuple[set[str], set[int]]:
    """The ClusterIPs and NodePorts a stored Service holds."""
    try:
        spec = json.loads(value).get("spec") or {}
    except (ValueError, AttributeError):
        return set(), set()
    if not isinstance(spec, dict):
        return set(), set()
    ips = {ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]
           if isinstance(ip, str) and ip and ip != "None"}
    ports = {p["nodePort"] for p in spec.get("ports") or []
             if isinstance(p, dict) and isinstance(p.get("nodePort"), int)}
    return ips, ports
