"""The agent's load balancer: new connections go to the server in use, and to the next one
when it stops answering; learned servers join the list (another machine's loopback not)."""

from __future__ import annotations

import asyncio

import pytest

from k8py.client.balancer import ServerBalancer, address_of


class Named:
    """A TCP server on loopback that answers every connection with its name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self, port: int = 0) -> Named:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def _serve(self, _r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.writers.append(w)
        w.write(self.name.encode())
        await w.drain()

    async def kill(self) -> None:
        """As kill -9: stop listening and drop every open connection."""
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.transport.abort()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


async def _ask(b: ServerBalancer) -> tuple[bytes, asyncio.StreamWriter]:
    r, w = await asyncio.open_connection("127.0.0.1", b.port)
    return await asyncio.wait_for(r.read(10), 5), w


async def test_connections_move_to_the_next_server_when_the_one_in_use_dies() -> None:
    a, b = await Named("A").start(), await Named("B").start()
    lb = ServerBalancer([a.url, b.url], dial_timeout=1.0)
    await lb.start()
    try:
        got, held = await _ask(lb)
        assert got == b"A"
        await a.kill()
        assert await _eof(held)
        got, _ = await _ask(lb)
        assert got == b"B" and lb.current == f"127.0.0.1:{b.port}"
        again = await Named("A2").start(a.port)  # A comes back: the balancer stays on B
        got, _ = await _ask(lb)
        assert got == b"B"
        await b.kill()
        got, _ = await _ask(lb)
        assert got == b"A2"
        await again.kill()
    finally:
        await lb.close()


async def _eof(w: asyncio.StreamWriter) -> bool:
    """The balancer closed the client's side of a connection whose server died."""
    for _ in range(100):
        if w.transport.is_closing():
            return True
        try:
            w.write(b"x")
            await w.drain()
        except (ConnectionError, OSError):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_no_server_answers_closes_the_connection() -> None:
    a = await Named("A").start()
    await a.kill()
    lb = ServerBalancer([a.url], dial_timeout=1.0)
    await lb.start()
    try:
        r, _ = await asyncio.open_connection("127.0.0.1", lb.port)
        assert await asyncio.wait_for(r.read(10), 5) == b""
    finally:
        await lb.close()


@pytest.mark.parametrize("given, learned, want", [
    (["https://127.0.0.1:6443"], ["127.0.0.1:6444", "127.0.0.1:6443"], ["127.0.0.1:6443", "127.0.0.1:6444"]),
    (["https://10.0.0.1:6443"], ["127.0.0.1:6443", "10.0.0.2:6443"], ["10.0.0.1:6443", "10.0.0.2:6443"]),
    (["https://10.0.0.1:6443,https://10.0.0.2"], [], "error"),
    (["10.0.0.1:6443", "https://[::1]:7443"], [], ["10.0.0.1:6443", "[::1]:7443"]),
])
def test_the_server_list(given: list[str], learned: list[str], want: list[str] | str) -> None:
    if want == "error":
        with pytest.raises(ValueError):
            ServerBalancer(given)
        return
    lb = ServerBalancer(given)
    lb.set_learned(learned)
    assert lb.servers == want


def test_address_of() -> None:
    assert address_of("https://h.example") == "h.example:443"
    assert address_of("https://10.0.0.1:6443/") == "10.0.0.1:6443"


def test_agent_server_flags_repeat_and_comma_lists() -> None:
    from k8py.cli.agent import server_urls
    from k8py.cli.main import build_parser

    ns = build_parser().parse_args(["agent", "--server", "https://a:1, https://b:2", "--server", "https://c:3",
                                    "--token", "t"])
    assert server_urls(ns.server) == ["https://a:1", "https://b:2", "https://c:3"]
    assert ServerBalancer(server_urls(ns.server)).servers == ["a:1", "b:2", "c:3"]
