"""SPDY/3.1 framing for port-forward: dictionary, header blocks both ways, partial frames."""

from __future__ import annotations

import struct
import zlib

from k8py.kubelet import spdy


def _client_syn_stream(deflate: zlib._Compress, sid: int, headers: dict[str, str]) -> bytes:
    raw = struct.pack(">I", len(headers))
    for k, v in headers.items():
        raw += struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
    block = deflate.compress(raw) + deflate.flush(zlib.Z_SYNC_FLUSH)
    payload = struct.pack(">II", sid, 0) + b"\x00\x00" + block
    return spdy.FrameWriter.control(spdy.SYN_STREAM, 0, payload)


def test_dictionary_is_spdy3s() -> None:
    assert len(spdy.DICTIONARY) == 1423  # the size every SPDY/3 implementation has
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b",enq=0.")


def test_parse_streams_data_and_partials() -> None:
    deflate = zlib.compressobj(zdict=spdy.DICTIONARY)
    wire = (_client_syn_stream(deflate, 1, {"streamtype": "error", "port": "80", "requestid": "0"})
            + _client_syn_stream(deflate, 3, {"streamtype": "data", "port": "80", "requestid": "0"})
            + spdy.FrameWriter.data(3, b"GET / HTTP/1.0\r\n\r\n", fin=True)
            + spdy.FrameWriter.control(spdy.PING, 0, struct.pack(">I", 7)))
    p = spdy.FrameParser()
    frames = p.feed(wire[:11]) + p.feed(wire[11:40]) + p.feed(wire[40:])
    assert [(f.control, f.type, f.stream_id) for f in frames] == [
        (True, spdy.SYN_STREAM, 1), (True, spdy.SYN_STREAM, 3), (False, 0, 3), (True, spdy.PING, 0)]
    assert frames[0].headers == {"streamtype": "error", "port": "80", "requestid": "0"}
    assert frames[1].headers["streamtype"] == "data"
    assert frames[2].payload == b"GET / HTTP/1.0\r\n\r\n" and frames[2].flags & spdy.FLAG_FIN


def test_syn_reply_headers_decompress_on_the_other_side() -> None:
    w = spdy.FrameWriter()
    p = spdy.FrameParser()
    f1, f2 = p.feed(w.syn_reply(5, {"a": "b"}) + w.syn_reply(7))
    assert (f1.type, f1.stream_id, f1.headers) == (spdy.SYN_REPLY, 5, {"a": "b"})
    assert (f2.stream_id, f2.headers) == (7, {})
