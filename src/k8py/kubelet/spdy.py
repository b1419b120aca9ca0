"""Just enough SPDY/3.1 for the server side of `kubectl port-forward`.

kubectl 1.32 tunnels SPDY through a WebSocket (subprotocol `SPDY/3.1+portforward.k8s.io`):
the binary messages carry the raw SPDY byte stream. The client opens streams with
SYN_STREAM (headers streamType=error|data, port, requestID), waits for our SYN_REPLY,
then sends DATA; FIN half-closes a stream; PING must be echoed. Header blocks are
zlib-compressed with one context per direction and SPDY/3's dictionary.
Invariant: `FrameParser.feed` returns only whole frames and keeps any partial rest.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01

_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language accept-ranges age "
    "allow authorization cache-control connection content-base content-encoding content-language content-length "
    "content-location content-md5 content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location max-forwards pragma "
    "proxy-authenticate proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status 200_OK version HTTP/1.1 url public set-cookie "
    "keep-alive origin")
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")


def _dictionary() -> bytes:
    """SPDY/3's header compression dictionary: length-prefixed words, then a plain tail."""
    words = [w.replace("_", " ") for w in _WORDS.split(" ")]
    return b"".join(struct.pack(">I", len(w)) + w.encode() for w in words) + _TAIL.encode()


DICTIONARY = _dictionary()


@dataclass
class Frame:
    control: bool
    type: int  # control frame type; 0 for data
    flags: int
    stream_id: int  # data frames and stream-scoped control frames
    payload: bytes
    headers: dict[str, str] = field(default_factory=dict)


class FrameParser:
    def __init__(self) -> None:
        self._buf = b""
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)

    def _headers(self, block: bytes) -> dict[str, str]:
        raw = self._inflate.decompress(block)
        out: dict[str, str] = {}
        (n,), pos = struct.unpack_from(">I", raw, 0), 4
        for _ in range(n):
            (ln,) = struct.unpack_from(">I", raw, pos)
            name = raw[pos + 4:pos + 4 + ln].decode(errors="replace").lower()
            pos += 4 + ln
            (lv,) = struct.unpack_from(">I", raw, pos)
            value = raw[pos + 4:pos + 4 + lv].decode(errors="replace")
            pos += 4 + lv
            out[name] = value.split("\x00")[0]
        return out

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out = []
        while len(self._buf) >= 8:
            w1, w2 = struct.unpack_from(">II", self._buf, 0)
            length = w2 & 0xFFFFFF
            if len(self._buf) < 8 + length:
                break
            payload = self._buf[8:8 + length]
            self._buf = self._buf[8 + length:]
            flags = w2 >> 24
            if w1 & 0x80000000:
                ftype = w1 & 0xFFFF
                f = Frame(True, ftype, flags, 0, payload)
                if ftype in (SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS, WINDOW_UPDATE) and len(payload) >= 4:
                    f.stream_id = struct.unpack_from(">I", payload, 0)[0] & 0x7FFFFFFF
                if ftype == SYN_STREAM:
                    f.headers = self._headers(payload[10:])
                elif ftype in (SYN_REPLY, HEADERS):
                    f.headers = self._headers(payload[4:])
                out.append(f)
            else:
                out.append(Frame(False, 0, flags, w1 & 0x7FFFFFFF, payload))
        return out


class FrameWriter:
    def __init__(self) -> None:
        self._deflate = zlib.compressobj(zdict=DICTIONARY)

    def _block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers))
        for k, v in headers.items():
            raw += struct.pack(">I", len(k)) + k.lower().encode() + struct.pack(">I", len(v)) + v.encode()
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    @staticmethod
    def control(ftype: int, flags: int, payload: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(payload)) + payload

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, fin: bool = False) -> bytes:
        return self.control(SYN_REPLY, FLAG_FIN if fin else 0,
                            struct.pack(">I", stream_id) + self._block(headers or {}))

    @staticmethod
    def data(stream_id: int, payload: bytes, fin: bool = False) -> bytes:
        return struct.pack(">II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(payload)) + payload

    @classmethod
    def rst(cls, stream_id: int, status: int = 5) -> bytes:  # 5 = CANCEL
        return cls.control(RST_STREAM, 0, struct.pack(">II", stream_id, status))

    @classmethod
    def goaway(cls, last_stream: int = 0) -> bytes:
        return cls.control(GOAWAY, 0, struct.pack(">II", last_stream, 0))
