"""The framing of Kubernetes' WebSocket channel protocols (`v5.channel.k8s.io`,
`v4.channel.k8s.io`, and port-forward's plain `v4.channel.k8s.io`).

Every message is one channel byte then the payload. Clients send both binary and text
frames: the official Python client sends a `str` written to stdin (and a resize) as a text
frame whose first character is the channel (`"\\x00echo hi\\n"`), so a text frame is read as
its UTF-8 bytes. Port-forward gives each requested port a data channel (2i) and an error
channel (2i+1); the server opens each channel with the port as 2 little-endian bytes.
Invariant: pure functions of their arguments (no I/O).
"""

from __future__ import annotations

import struct

from aiohttp import WSMessage, WSMsgType


def decode(msg: WSMessage) -> tuple[int, bytes] | None:
    """(channel, payload) of a binary or text message; None for others and for empty ones."""
    if msg.type == WSMsgType.BINARY:
        data = bytes(msg.data)
    elif msg.type == WSMsgType.TEXT:
        data = str(msg.data).encode()
    else:
        return None
    if not data:
        return None
    return data[0], data[1:]


def frame(channel: int, payload: bytes = b"") -> bytes:
    """A message of `channel` carrying `payload`."""
    return bytes([channel]) + payload


def port_prefix(port: int) -> bytes:
    """The first bytes the server writes on a port-forward port's data and error channels."""
    return struct.pack("<H", port)


def parse_ports(values: list[str]) -> list[int] | str:
    """The ports of a port-forward request (`ports=80,443`, repeatable), or why they are bad."""
    if not values:
        return 'query parameter "ports" is required'
    out: list[int] = []
    for v in values:
        if not v:
            return 'query parameter "ports" cannot be empty'
        for p in v.split(","):
            if not p.strip().isdigit() or not 0 < int(p) < 65536:
                return f'unable to parse "{v}" as a port: a port must be a number in 1-65535'
            out.append(int(p))
    return out


def data_channel(index: int) -> int:
    return 2 * index


def error_channel(index: int) -> int:
    return 2 * index + 1
