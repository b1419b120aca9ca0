"""The cluster DNS server: UDP and TCP on one address, wire format by dnslib.

Questions in the cluster zone (and PTRs of cluster addresses) are answered from a
`ClusterZone`; NXDOMAIN carries the zone's SOA in the authority section. Other
names go to the upstream resolvers (the host's, by default) with a short timeout,
or get SERVFAIL when none answers (NXDOMAIN when forwarding is off). Invariant: a malformed packet never stops
the server; it is dropped (UDP) or the connection closed (TCP).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import struct
from pathlib import Path
from typing import cast

from dnslib import AAAA, CNAME, PTR, QTYPE, RCODE, RD, RR, SOA, SRV, A, DNSRecord

from k8py.dns.records import Answer, ClusterZone, Record

log = logging.getLogger(__name__)


class _Reply(asyncio.DatagramProtocol):
    """An upstream's side of one forwarded question: the first datagram is the reply."""

    def __init__(self, reply: asyncio.Future[bytes]) -> None:
        self.reply = reply

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.reply.done():
            self.reply.set_result(data)


def host_upstreams(path: str = "/etc/resolv.conf") -> list[str]:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    return [ln.split()[1] for ln in lines if ln.startswith("nameserver") and len(ln.split()) > 1]


def _rdata(r: Record) -> RD:
    """The dnslib record data of a zone record."""
    if r.type == "A":
        return A(str(r.value))
    if r.type == "AAAA":
        return AAAA(str(r.value))
    if r.type == "CNAME":
        return CNAME(str(r.value))
    if r.type == "PTR":
        return PTR(str(r.value))
    if isinstance(r.value, str):
        raise TypeError(f"SRV record {r.name}: value {r.value!r} is not (priority, weight, port, target)")
    prio, weight, port, target = r.value
    return SRV(prio, weight, port, target)


class DnsServer:
    def __init__(self, zone: ClusterZone, upstreams: list[str] | None = None,
                 forward_timeout: float = 2.0) -> None:
        self.zone = zone
        self.upstreams = host_upstreams() if upstreams is None else upstreams
        self.forward_timeout = forward_timeout
        self.queries = 0

    def soa(self) -> RR:
        z = self.zone.zone + "."
        return RR(z, QTYPE.SOA, ttl=5, rdata=SOA(f"ns.dns.{z}", f"hostmaster.{z}",
                                                  (1, 7200, 1800, 86400, 5)))

    async def resolve(self, data: bytes) -> bytes | None:
        try:
            req = DNSRecord.parse(data)
        except Exception:  # noqa: BLE001 - malformed input is dropped
            return None
        self.queries += 1
        reply = req.reply()
        reply.header.ra = 1
        q = req.q
        ans: Answer | None = self.zone.answer(str(q.qname), QTYPE.get(q.qtype))
        if ans is None:
            if not self.upstreams:
                # An offline cluster: nothing exists outside the cluster zone. NXDOMAIN
                # (not SERVFAIL) lets resolvers go on with the next search domain.
                reply.header.rcode = RCODE.NXDOMAIN
                return reply.pack()
            fwd = await self.forward(data)
            if fwd is not None:
                return fwd
            reply.header.rcode = RCODE.SERVFAIL
            return reply.pack()
        reply.header.aa = 1
        for r in ans.records:
            reply.add_answer(RR(r.name, getattr(QTYPE, r.type), ttl=r.ttl, rdata=_rdata(r)))
        if ans.rcode == "NXDOMAIN":
            reply.header.rcode = RCODE.NXDOMAIN
        if not ans.records:
            reply.add_auth(self.soa())
        return reply.pack()

    async def forward(self, data: bytes) -> bytes | None:
        loop = asyncio.get_running_loop()
        for up in self.upstreams:
            fut: asyncio.Future[bytes] = loop.create_future()
            host, _, port = up.partition(":")  # "ip" or "ip:port"
            try:
                transport, _ = await loop.create_datagram_endpoint(functools.partial(_Reply, fut),
                                                                   remote_addr=(host, int(port or 53)))
            except OSError:
                continue
            try:
                transport.sendto(data)
                return await asyncio.wait_for(fut, self.forward_timeout)
            except (TimeoutError, OSError):
                continue
            finally:
                transport.close()
        return None

    async def serve(self, host: str, port: int) -> None:
        """Serve until cancelled."""
        loop = asyncio.get_running_loop()
        server = self
        tasks: set[asyncio.Task[None]] = set()

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                # create_datagram_endpoint gives its protocol a datagram transport.
                self.t = cast(asyncio.DatagramTransport, transport)

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                async def answer() -> None:
                    out = await server.resolve(data)
                    if out is not None:
                        self.t.sendto(out, addr)
                task = loop.create_task(answer())
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    n = struct.unpack("!H", await reader.readexactly(2))[0]
                    out = await server.resolve(await reader.readexactly(n))
                    if out is None:
                        break
                    writer.write(struct.pack("!H", len(out)) + out)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        transport, _ = await loop.create_datagram_endpoint(Udp, local_addr=(host, port))
        tcp_server = await asyncio.start_server(tcp, host, port)
        try:
            await asyncio.Event().wait()
        finally:
            transport.close()
            tcp_server.close()
            for t in list(tasks):
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
