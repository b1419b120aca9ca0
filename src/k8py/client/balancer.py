"""A local TCP load balancer in front of the cluster's API servers (k3s's agent load balancer).

`k8py agent` talks to `https://127.0.0.1:<port>` of a `ServerBalancer` instead of one server:
each new connection is dialled to the server in use, and when that one refuses or does
not answer within `dial_timeout`, to the next (the one that answers becomes the server in
use). TLS goes through untouched, end to end: the client verifies the server's certificate
for 127.0.0.1, which every k8py serving certificate names. A connection to a server that
dies breaks; the client's next connection (an informer's relist, the next request) lands
on a live server, so the agent's pods keep running across a server's loss.

The servers: those given (`--server`, kept always, in their order) and those learned from
the `kubernetes` Endpoints (`set_learned`; loopback addresses only when a given server is
on loopback too, since another machine's 127.0.0.1 is not the server's).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

log = logging.getLogger(__name__)


def address_of(server: str) -> str:
    """`host:port` of a server URL (https://h:p, https://h -> port 443) or of `host:port`."""
    u = urlsplit(server if "://" in server else f"https://{server}")
    if not u.hostname:
        raise ValueError(f"--server {server!r}: want https://HOST:PORT")
    host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
    return f"{host}:{u.port or 443}"


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _loopback(address: str) -> bool:
    host = _split(address)[0]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class ServerBalancer:
    """Forwards each accepted connection to the first server that takes it, from the one in use."""

    def __init__(self, servers: Sequence[str], *, dial_timeout: float = 3.0) -> None:
        if not servers:
            raise ValueError("at least one server")
        self.given = list(dict.fromkeys(address_of(s) for s in servers))
        self.servers = list(self.given)
        self.current = self.servers[0]
        self.dial_timeout = dial_timeout
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen; returns the URL clients use."""
        self._server = await asyncio.start_server(self._accept, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.url

    def set_learned(self, addresses: Iterable[str]) -> None:
        """The servers the cluster names now (host:port), after the given ones."""
        allow_loopback = any(_loopback(a) for a in self.given)
        learned = [a for a in addresses if allow_loopback or not _loopback(a)]
        servers = list(dict.fromkeys([*self.given, *learned]))
        if servers != self.servers:
            log.info("API servers: %s", ", ".join(servers))
            self.servers = servers

    def _order(self) -> list[str]:
        s = self.servers
        i = s.index(self.current) if self.current in s else 0
        return s[i:] + s[:i]

    async def _dial(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for address in self._order():
            try:
                conn = await asyncio.wait_for(asyncio.open_connection(*_split(address)), self.dial_timeout)
            except (OSError, TimeoutError) as e:
                log.info("API server %s did not answer: %s", address, e)
                continue
            if address != self.current:
                log.warning("API server %s did not answer: now using %s", self.current, address)
                self.current = address
            return conn
        log.warning("no API server answers (%s)", ", ".join(self.servers))
        return None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            upstream = await self._dial()
            if upstream is None:
                return
            up_reader, up_writer = upstream
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
        except asyncio.CancelledError:
            pass  # closing: asyncio's server callback would log a cancelled handler as an error
        finally:
            writer.close()
            self._conns.discard(task)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for t in list(self._conns):
            t.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF or an error, then close `writer` (so the other direction ends too)."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
