"""The cluster DNS server: UDP and TCP on one address, wire format by dnslib.

Questions in the cluster zone (and PTRs of cluster addresses) are answered from a
`ClusterZone`; NXDOMAIN carries the zone's SOA in the authority section. Other
names go to the upstream resolvers (the host's, by default) with a short timeout,
or get SERVFAIL when none answers (NXDOMAIN when forwarding is off). Invariant: a malformed packet never stops
the server; it is dropped (UDP) or the connection closed (TCP).

Answers of the cluster zone are encoded once and kept, keyed by the query's bytes after
its ID (flags, question, additional records: a resolver asking the same name again
sends the same bytes), and served by patching in the new ID, without parsing the query.
The owner of the zone's data calls `invalidate()` on every change of it (the cluster
DNS: on each Service or EndpointSlice watch event, before any later query is read), so
a kept answer is never older than the zone. Forwarded answers are not kept.
With `workers`, that many processes (worker.py) answer UDP on the same address too
(SO_REUSEPORT), from their own kept answers, asking this server for the others.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import struct
import sys
from pathlib import Path
from typing import cast

from dnslib import AAAA, CNAME, PTR, QTYPE, RCODE, RD, RR, SOA, SRV, A, DNSRecord

from k8py.dns.records import Answer, ClusterZone, Record
from k8py.dns.worker import Generation

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


FORWARD = object()  # resolve_now's answer for a question the upstreams must answer


class DnsServer:
    def __init__(self, zone: ClusterZone, upstreams: list[str] | None = None,
                 forward_timeout: float = 2.0, max_kept: int = 10000, workers: int = 0) -> None:
        self.zone = zone
        self.upstreams = host_upstreams() if upstreams is None else upstreams
        self.forward_timeout = forward_timeout
        self.queries = 0
        self.max_kept = max_kept
        self._kept: dict[bytes, bytes] = {}  # query bytes after the ID -> reply bytes after the ID
        self.workers = workers  # extra processes answering UDP on the same address (worker.py)
        self._generation: Generation | None = None
        self.asked_by_workers = 0

    def invalidate(self) -> None:
        """Forget every kept answer (the zone's data changed), here and in the workers."""
        self._kept.clear()
        if self._generation is not None:
            self._generation.bump()

    def soa(self) -> RR:
        z = self.zone.zone + "."
        return RR(z, QTYPE.SOA, ttl=5, rdata=SOA(f"ns.dns.{z}", f"hostmaster.{z}",
                                                  (1, 7200, 1800, 86400, 5)))

    def resolve_now(self, data: bytes) -> bytes | None | object:
        """The reply to a query, without waiting: a kept answer, else one computed from
        the zone (and kept); None for a malformed query; FORWARD when only the upstreams
        can answer."""
        key = bytes(data[2:])
        kept = self._kept.get(key) if len(data) >= 12 else None
        if kept is not None:
            self.queries += 1
            return bytes(data[:2]) + kept
        try:
            req = DNSRecord.parse(data)
        except Exception:  # noqa: BLE001 - malformed input is dropped
            return None
        self.queries += 1
        reply = req.reply()
        reply.header.ra = 1
        q = req.q
        ans: Answer | None = self.zone.answer(str(q.qname), QTYPE.get(q.qtype))
        if ans is None and self.upstreams:
            return FORWARD
        if ans is None:
            # An offline cluster: nothing exists outside the cluster zone. NXDOMAIN
            # (not SERVFAIL) lets resolvers go on with the next search domain.
            reply.header.rcode = RCODE.NXDOMAIN
        else:
            reply.header.aa = 1
            for r in ans.records:
                reply.add_answer(RR(r.name, getattr(QTYPE, r.type), ttl=r.ttl, rdata=_rdata(r)))
            if ans.rcode == "NXDOMAIN":
                reply.header.rcode = RCODE.NXDOMAIN
            if not ans.records:
                reply.add_auth(self.soa())
        out = bytes(reply.pack())
        if len(self._kept) >= self.max_kept:
            self._kept.clear()
        self._kept[key] = out[2:]
        return out

    async def resolve(self, data: bytes) -> bytes | None:
        out = self.resolve_now(data)
        if out is not FORWARD:
            return cast(bytes | None, out)
        fwd = await self.forward(data)
        if fwd is not None:
            return fwd
        reply = DNSRecord.parse(data).reply()
        reply.header.ra = 1
        reply.header.rcode = RCODE.SERVFAIL
        return cast(bytes, reply.pack())

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
                now = server.resolve_now(data)  # the zone's answers go out at once, without a task
                if now is not FORWARD:
                    if now is not None:
                        self.t.sendto(cast(bytes, now), addr)
                    return

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

        transport, _ = await loop.create_datagram_endpoint(Udp, local_addr=(host, port),
                                                           reuse_port=True if self.workers else None)
        tcp_server = await asyncio.start_server(tcp, host, port)
        private: asyncio.BaseTransport | None = None
        procs: list[asyncio.subprocess.Process] = []
        try:
            if self.workers:  # the workers' questions come to a private port
                class FromWorkers(Udp):
                    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                        server.asked_by_workers += 1
                        super().datagram_received(data, addr)
                private, _ = await loop.create_datagram_endpoint(FromWorkers, local_addr=("127.0.0.1", 0))
                procs = await self._start_workers(host, port, private.get_extra_info("sockname")[1])
            await asyncio.Event().wait()
        finally:
            transport.close()
            tcp_server.close()
            if private is not None:
                private.close()
            for p in procs:
                p.kill()
                await p.wait()
            if self._generation is not None:
                self._generation.close()
                self._generation = None
            for t in list(tasks):
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _start_workers(self, host: str, port: int, main_port: int) -> list[asyncio.subprocess.Process]:
        """The worker processes (dns/worker.py) on the same address, sharing the generation."""
        if self._generation is None:
            self._generation = Generation()
        src = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])))
        return [await asyncio.create_subprocess_exec(
            sys.executable, "-m", "k8py.dns.worker", host, str(port), str(main_port), self._generation.name,
            env=env) for _ in range(self.workers)]
