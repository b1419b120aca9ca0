"""Extra processes answering the cluster DNS's UDP queries on the same address
(SO_REUSEPORT: the kernel spreads the askers over the sockets), so that a second core
can answer; `python -m k8py.dns.worker IP PORT MAIN_PORT GENERATION`.

A worker has no zone of its own: it answers from the answers it keeps, and asks the
main server (its private UDP port on 127.0.0.1) for the others, keeping only
authoritative (cluster zone) replies. The main server bumps a generation counter in
shared memory whenever its zone changes; a worker drops its kept answers as soon as it
sees a new generation, and never keeps a reply asked for under an older one, so it
is never staler than the main server. A worker exits when its parent does.
"""

from __future__ import annotations

import asyncio
import os
import struct
import sys
from multiprocessing import resource_tracker, shared_memory
from typing import cast

AA = 0x04  # the authoritative-answer bit of the header's third byte


class Generation:
    """A 64-bit counter in shared memory: the main server writes, workers read."""

    def __init__(self, name: str | None = None) -> None:
        self.shm = shared_memory.SharedMemory(name=name, create=name is None, size=8)
        self.owner = name is None
        buf = self.shm.buf
        assert buf is not None
        self.buf = buf
        if self.owner:
            struct.pack_into("Q", self.buf, 0, 0)
        else:  # only the owner removes it (Python's tracker would, when a reader exits)
            resource_tracker.unregister(self.shm._name, "shared_memory")  # type: ignore[attr-defined]

    @property
    def name(self) -> str:
        return self.shm.name

    def get(self) -> int:
        return int(struct.unpack_from("Q", self.buf, 0)[0])

    def bump(self) -> None:
        struct.pack_into("Q", self.buf, 0, self.get() + 1)

    def close(self) -> None:
        self.buf.release()
        self.shm.close()
        if self.owner:
            self.shm.unlink()


class _Main(asyncio.DatagramProtocol):
    """The worker's side of its questions to the main server (one socket, IDs rewritten)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.worker.from_main(data)


class Worker(asyncio.DatagramProtocol):
    def __init__(self, gen: Generation) -> None:
        self.gen = gen
        self.seen = gen.get()
        self.kept: dict[bytes, bytes] = {}
        self.pending: dict[int, tuple[bytes, tuple[str, int], int]] = {}
        self.next_id = 0
        self.t: asyncio.DatagramTransport | None = None
        self.main: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12 or self.t is None or self.main is None:
            return
        g = self.gen.get()
        if g != self.seen:
            self.kept.clear()
            self.seen = g
        kept = self.kept.get(data[2:])
        if kept is not None:
            self.t.sendto(data[:2] + kept, addr)
            return
        self.next_id = (self.next_id + 1) % 65536
        self.pending[self.next_id] = (data, addr, g)
        if len(self.pending) > 4096:  # lost replies: forget the oldest questions
            for k in list(self.pending)[:1024]:
                del self.pending[k]
        self.main.sendto(struct.pack("!H", self.next_id) + data[2:])

    def from_main(self, reply: bytes) -> None:
        asked = self.pending.pop(struct.unpack("!H", reply[:2])[0], None) if len(reply) >= 12 else None
        if asked is None or self.t is None:
            return
        data, addr, g = asked
        if reply[2] & AA and g == self.gen.get() and len(self.kept) < 10000:
            self.kept[data[2:]] = reply[2:]
        self.t.sendto(data[:2] + reply[2:], addr)


async def serve(ip: str, port: int, main_port: int, gen_name: str) -> None:
    loop = asyncio.get_running_loop()
    gen = Generation(gen_name)
    worker = Worker(gen)
    parent = os.getppid()
    main, _ = await loop.create_datagram_endpoint(lambda: _Main(worker), remote_addr=("127.0.0.1", main_port))
    worker.main = main
    transport, _ = await loop.create_datagram_endpoint(lambda: worker, local_addr=(ip, port), reuse_port=True)
    try:
        while os.getppid() == parent:
            await asyncio.sleep(1)
    finally:
        transport.close()
        main.close()
        gen.close()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
