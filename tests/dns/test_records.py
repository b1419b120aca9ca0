"""Cluster DNS answers (table-driven), and the server on the wire (UDP and TCP on loopback)."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from k8py.dns.records import ClusterZone
from k8py.dns.server import DnsServer

SERVICES: dict[tuple[str, str], dict[str, Any]] = {
    ("default", "kubernetes"): {"metadata": {"namespace": "default", "name": "kubernetes"},
                                "spec": {"clusterIP": "10.43.0.1", "ports": [{"name": "https", "port": 443}]}},
    ("default", "nginx"): {"metadata": {"namespace": "default", "name": "nginx"},
                           "spec": {"clusterIP": "10.43.0.50",
                                    "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}},
    ("db", "mysql"): {"metadata": {"namespace": "db", "name": "mysql"},
                      "spec": {"clusterIP": "None", "ports": [{"port": 3306}]}},
    ("default", "ext"): {"metadata": {"namespace": "default", "name": "ext"},
                         "spec": {"type": "ExternalName", "externalName": "my.database.example.com"}},
}
SLICES = {
    ("db", "mysql"): [{"endpoints": [
        {"addresses": ["10.42.0.7"], "hostname": "mysql-0", "conditions": {"ready": True}},
        {"addresses": ["10.42.0.8"], "conditions": {"ready": True}},
        {"addresses": ["10.42.0.9"], "conditions": {"ready": False}}]}],
}


def zone() -> ClusterZone:
    rev = {s["spec"]["clusterIP"]: f"{k[1]}.{k[0]}.svc.cluster.local." for k, s in SERVICES.items()
           if s["spec"].get("clusterIP") not in (None, "None")}
    return ClusterZone(lambda ns, n: SERVICES.get((ns, n)), lambda ns, n: SLICES.get((ns, n), []),
                       rev.get)


CASES = [
    ("kubernetes.default.svc.cluster.local", "A", "NOERROR", [("A", "10.43.0.1")]),
    ("nginx.default.svc.cluster.local.", "A", "NOERROR", [("A", "10.43.0.50")]),
    ("NGINX.Default.svc.cluster.local", "A", "NOERROR", [("A", "10.43.0.50")]),
    ("nginx.default.svc.cluster.local", "AAAA", "NOERROR", []),
    ("mysql.db.svc.cluster.local", "A", "NOERROR", [("A", "10.42.0.7"), ("A", "10.42.0.8")]),
    ("mysql-0.mysql.db.svc.cluster.local", "A", "NOERROR", [("A", "10.42.0.7")]),
    ("ext.default.svc.cluster.local", "A", "NOERROR", [("CNAME", "my.database.example.com.")]),
    ("_http._tcp.nginx.default.svc.cluster.local", "SRV", "NOERROR",
     [("SRV", (0, 100, 80, "nginx.default.svc.cluster.local."))]),
    ("10-42-0-3.default.pod.cluster.local", "A", "NOERROR", [("A", "10.42.0.3")]),
    ("50.0.43.10.in-addr.arpa", "PTR", "NOERROR", [("PTR", "nginx.default.svc.cluster.local.")]),
    ("nope.default.svc.cluster.local", "A", "NXDOMAIN", []),
    ("kubernetes.default.default.svc.cluster.local", "A", "NXDOMAIN", []),
    ("nginx.other.svc.cluster.local", "A", "NXDOMAIN", []),
    ("nope.svc.cluster.local", "A", "NXDOMAIN", []),
    ("svc.cluster.local", "A", "NOERROR", []),
]


@pytest.mark.parametrize("name,qtype,rcode,records", CASES)
def test_answers(name: str, qtype: str, rcode: str, records: list[tuple[str, Any]]) -> None:
    ans = zone().answer(name, qtype)
    assert ans is not None
    assert ans.rcode == rcode
    assert [(r.type, r.value) for r in ans.records] == records


def test_names_outside_the_zone_are_not_ours() -> None:
    assert zone().answer("example.com", "A") is None
    assert zone().answer("1.1.168.192.in-addr.arpa", "PTR") is None


async def test_server_on_the_wire() -> None:
    server = DnsServer(zone(), upstreams=[])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    task = asyncio.create_task(server.serve("127.0.0.1", port))
    try:
        loop = asyncio.get_running_loop()

        async def ask(query: Callable[[bytes, int], bytes], q: DNSRecord) -> DNSRecord:
            for _ in range(500):
                try:
                    data = await loop.run_in_executor(None, query, q.pack(), port)
                    return DNSRecord.parse(data)
                except (TimeoutError, ConnectionRefusedError):
                    await asyncio.sleep(0.02)  # server still binding (UDP first, then TCP): poll
            raise AssertionError("no answer")

        async def udp(q: DNSRecord) -> DNSRecord:
            return await ask(_udp_query, q)

        r = await udp(DNSRecord.question("nginx.default.svc.cluster.local", "A"))
        assert str(r.rr[0].rdata) == "10.43.0.50" and r.header.aa == 1
        r = await udp(DNSRecord.question("nope.default.svc.cluster.local", "A"))
        assert r.header.rcode == RCODE.NXDOMAIN and r.auth[0].rtype == QTYPE.SOA
        r = await udp(DNSRecord.question("example.com", "A"))  # no upstream configured
        assert r.header.rcode == RCODE.NXDOMAIN
        r = await ask(_tcp_query, DNSRecord.question("kubernetes.default.svc.cluster.local"))
        assert str(r.rr[0].rdata) == "10.43.0.1"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _udp_query(data: bytes, port: int) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1)
        s.sendto(data, ("127.0.0.1", port))
        return s.recv(4096)


def _tcp_query(data: bytes, port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(struct.pack("!H", len(data)) + data)
        n = struct.unpack("!H", s.recv(2))[0]
        return s.recv(n)


async def test_names_outside_the_cluster_are_forwarded_upstream() -> None:
    upstream_zone = ClusterZone(lambda ns, n: SERVICES.get((ns, n)), lambda ns, n: [], zone="example.test")
    up_port, our_port = _free_udp_port(), _free_udp_port()
    upstream = asyncio.create_task(DnsServer(upstream_zone, upstreams=[]).serve("127.0.0.1", up_port))
    ours = asyncio.create_task(DnsServer(zone(), upstreams=[f"127.0.0.1:{up_port}"]).serve("127.0.0.1", our_port))
    loop = asyncio.get_running_loop()
    try:
        q = DNSRecord.question("nginx.default.svc.example.test", "A").pack()
        for _ in range(100):
            try:
                r = DNSRecord.parse(await loop.run_in_executor(None, _udp_query, q, our_port))
                break
            except (TimeoutError, ConnectionRefusedError):
                await asyncio.sleep(0.02)  # servers still binding: poll
        assert str(r.rr[0].rdata) == "10.43.0.50"
    finally:
        for t in (upstream, ours):
            t.cancel()
        await asyncio.gather(upstream, ours, return_exceptions=True)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
