"""The machine's loopback registry, lent to node hosts.

A node host's 127.0.0.1 is its own, so a registry mirror at `http://127.0.0.1:5000` (what
`scripts/up` and the tests configure) is out of its reach. `k8py server --nodes N` starts,
for every mirror endpoint on loopback, a TCP forward from the host bridge address (same
port) to it, and gives the nodes a registries.yaml naming the bridge address instead.

Invariants: forwards listen on the host bridge address only (reachable from the node hosts
and this machine, nothing else) and connect to loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

log = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "localhost")


def rewrite(config: dict[str, object], host_ip: str) -> tuple[dict[str, object], set[int]]:
    """The registries.yaml for nodes: loopback mirror endpoints moved to `host_ip`; and the
    ports to forward."""
    ports: set[int] = set()
    mirrors = config.get("mirrors")
    out_mirrors = {}
    for reg, m in (mirrors if isinstance(mirrors, dict) else {}).items():
        eps = []
        for ep in (m or {}).get("endpoint") or []:
            u = urlsplit(ep if "://" in ep else f"http://{ep}")  # no scheme on loopback: plain http
            if u.hostname in LOOPBACK and u.port:
                ports.add(u.port)
                ep = urlunsplit((u.scheme, f"{host_ip}:{u.port}", u.path, u.query, u.fragment))
            eps.append(ep)
        out_mirrors[reg] = {**(m or {}), "endpoint": eps}
    return {**config, "mirrors": out_mirrors}, ports


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _serve(port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        writer.close()
        return
    await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer))


async def start(registries: str, host_ip: str, out: Path) -> list[asyncio.Server]:
    """Write the nodes' registries.yaml to `out` and start the forwards it needs."""
    try:
        config = yaml.safe_load(Path(registries).read_text()) or {}
    except OSError:
        return []
    node_config, ports = rewrite(config, host_ip)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(node_config))
    servers = []
    for port in sorted(ports):
        try:
            servers.append(await asyncio.start_server(functools.partial(_serve, port), host_ip, port))
        except OSError as e:
            log.warning("no registry forward %s:%d: %s", host_ip, port, e)
    return servers
