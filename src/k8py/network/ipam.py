"""Host-local IP address management for the pods of one node.

Addresses come from the node's pod CIDR; .1 is the bridge (gateway), the network
and broadcast addresses are never handed out. Each allocation is a file
`<dir>/<ip>` holding its owner's key, so allocations survive an agent restart and
two owners never get one address (the file is created with O_EXCL).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from k8py.network.errors import AddressesExhausted


class HostLocalIPAM:
    def __init__(self, cidr: str, state_dir: str | Path) -> None:
        self.net = ipaddress.ip_network(cidr, strict=False)
        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)

    @property
    def gateway(self) -> str:
        return str(self.net.network_address + 1)

    def _entries(self) -> list[Path]:
        return [f for f in self.dir.iterdir() if not f.name.startswith(".")]

    def owned_by(self, owner: str) -> str | None:
        for f in self._entries():
            try:
                if f.read_text() == owner:
                    return f.name
            except OSError:
                continue
        return None

    def allocate(self, owner: str) -> str:
        """An address for `owner` (the same one again if it already has one). Like CNI's
        host-local plugin, the search starts after the last address handed out, so a
        just-released address is not reused at once (neighbours may still cache its MAC)."""
        existing = self.owned_by(owner)
        if existing:
            return existing
        hosts = [h for h in self.net.hosts() if h != self.net.network_address + 1]
        last_file = self.dir / ".last"
        try:
            start = hosts.index(ipaddress.ip_address(last_file.read_text().strip())) + 1
        except (OSError, ValueError):
            start = 0
        for host in hosts[start:] + hosts[:start]:
            path = self.dir / str(host)
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w") as f:
                f.write(owner)
            last_file.write_text(str(host))
            return str(host)
        raise AddressesExhausted(f"no free address in {self.net}")

    def release(self, owner: str) -> None:
        for f in self._entries():
            try:
                if f.read_text() == owner:
                    f.unlink()
            except OSError:
                continue

    def allocated(self) -> dict[str, str]:
        return {f.name: f.read_text() for f in self._entries() if f.is_file()}
