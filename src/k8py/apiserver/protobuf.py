"""Kubernetes' protobuf wire format, read-only: decode `application/vnd.kubernetes.protobuf` bodies to JSON.

kubectl 1.32's typed clients (`kubectl create namespace|secret|configmap|deployment`,
`drain`'s evictions, ...) send protobuf bodies. The HTTP front turns such a body
into the JSON object Kubernetes' JSON encoding would give, so the API server
only ever sees JSON. Responses stay JSON (every client that asks for protobuf
also accepts JSON).

Wire format: the 4 magic bytes `k8s\\0`, then a `runtime.Unknown` message
{1: typeMeta {1: apiVersion, 2: kind}, 2: raw (the object's message),
3: contentEncoding, 4: contentType}. The object's messages are described by a
field table (`protobuf_fields.json`, written by `protobuf_gen.py` from the
protobuf descriptors that Kubernetes' Go binaries embed).
Invariants: decoding never evaluates anything; unknown fields are skipped;
well-known Kubernetes types map to their JSON forms (Time -> RFC 3339 string,
Quantity -> string, IntOrString -> int|string, RawExtension/FieldsV1 -> embedded
JSON, bytes -> base64); zero Time and empty strings are omitted as Go's
`omitempty` would.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import struct
from importlib import resources as ilr
from typing import Any

from k8py.apiserver import wire
from k8py.apiserver.errors import ProtobufError

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
TABLE_FILE = "protobuf_fields.json"  # written by protobuf_gen.py

# descriptor field types
T_DOUBLE, T_FLOAT, T_INT64, T_UINT64, T_INT32, T_FIXED64, T_FIXED32, T_BOOL, T_STRING = 1, 2, 3, 4, 5, 6, 7, 8, 9
T_MESSAGE, T_BYTES, T_UINT32, T_ENUM, T_SFIXED32, T_SFIXED64, T_SINT32, T_SINT64 = 11, 12, 13, 14, 15, 16, 17, 18

META = "k8s.io.apimachinery.pkg.apis.meta.v1."
# API group -> protobuf package segment under k8s.io.api.
_GROUP_PKG = {"": "core"}


def fields(b: bytes) -> list[tuple[int, int, Any]]:
    """(number, wire type, value) of each field (see wire.fields); ProtobufError on malformed input."""
    try:
        return list(wire.fields(b))
    except ValueError as e:
        raise ProtobufError(str(e)) from None


def _signed(v: int, bits: int) -> int:
    v &= (1 << 64) - 1
    if bits == 32:
        v &= 0xFFFFFFFF
        return v - (1 << 32) if v >= 1 << 31 else v
    return v - (1 << 64) if v >= 1 << 63 else v


def _scalar(t: int, wt: int, v: Any) -> Any:
    if t in (T_INT64, T_SFIXED64):
        return _signed(v, 64)
    if t in (T_INT32, T_SFIXED32, T_ENUM):
        return _signed(v, 32)
    if t in (T_UINT64, T_UINT32, T_FIXED64, T_FIXED32):
        return v
    if t == T_SINT32 or t == T_SINT64:
        return (v >> 1) ^ -(v & 1)
    if t == T_BOOL:
        return bool(v)
    if t == T_DOUBLE:
        return struct.unpack("<d", v.to_bytes(8, "little"))[0]
    if t == T_FLOAT:
        return struct.unpack("<f", v.to_bytes(4, "little"))[0]
    if t == T_STRING:
        return v.decode("utf-8")
    if t == T_BYTES:
        return base64.b64encode(v).decode()
    raise ProtobufError(f"unsupported field type {t}")


# -- the field table -----------------------------------------------------------------
@functools.cache
def table() -> dict[str, dict[str, Any]]:
    """message full name (no leading dot) -> {"f": {number: [name, type, repeated, type_name]}, "m": map entry?}."""
    raw = json.loads((ilr.files("k8py.apiserver") / TABLE_FILE).read_text())
    out: dict[str, dict[str, Any]] = {}
    for name, m in raw.items():
        out[name] = {"f": {int(num): [f[0], f[1], 1 if f[2] == 3 else 0, f[3]]
                           for num, f in m["fields"].items()},
                     "m": bool(m.get("map"))}
    return out


def message_for(api_version: str, kind: str) -> str | None:
    group, _, version = api_version.rpartition("/")
    pkg = _GROUP_PKG.get(group, group.split(".")[0])
    for cand in (f"k8s.io.api.{pkg}.{version}.{kind}", f"{META}{kind}"):
        if cand in table():
            return cand
    return None


# -- decoding ------------------------------------------------------------------------
def _time(m: dict[int, Any], micro: bool) -> str | None:
    secs = _signed(m.get(1, 0), 64)
    nanos = _signed(m.get(2, 0), 32)
    if secs == 0 and nanos == 0:
        return None
    t = dt.datetime.fromtimestamp(secs, dt.UTC)
    if micro:
        return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(ns: int) -> str:
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    h, rem = divmod(ns, 3600 * 10**9)
    m, rem = divmod(rem, 60 * 10**9)
    s = rem / 10**9
    out = (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + (f"{s:g}s" if s else "")
    return sign + (out or "0s")


def _special(name: str, b: bytes) -> tuple[bool, Any]:
    """Well-known messages whose JSON form is not an object."""
    if name in (META + "Time", META + "MicroTime"):
        return True, _time({n: v for n, _, v in fields(b)}, micro=name.endswith("MicroTime"))
    if name == "k8s.io.apimachinery.pkg.api.resource.Quantity":
        for n, _, v in fields(b):
            if n == 1:
                return True, v.decode()
        return True, "0"
    if name == "k8s.io.apimachinery.pkg.util.intstr.IntOrString":
        f = {n: v for n, _, v in fields(b)}
        if f.get(1, 0) == 1:
            return True, f.get(3, b"").decode()
        return True, _signed(f.get(2, 0), 32)
    if name in ("k8s.io.apimachinery.pkg.runtime.RawExtension", META + "FieldsV1"):
        for n, _, v in fields(b):
            if n == 1:
                return True, json.loads(v) if v else None
        return True, None
    if name == META + "Duration":
        for n, _, v in fields(b):
            if n == 1:
                return True, _duration(_signed(v, 64))
        return True, "0s"
    return False, None


def decode_message(name: str, b: bytes) -> Any:
    """The JSON form of message `name` (full name, no leading dot) encoded in `b`."""
    special, value = _special(name, b)
    if special:
        return value
    spec = table().get(name)
    if spec is None:
        raise ProtobufError(f"unknown protobuf message {name}")
    out: dict[str, Any] = {}
    fmap = spec["f"]
    for num, wt, v in fields(b):
        f = fmap.get(num)
        if f is None:
            continue  # unknown field (a newer client): skip, as protobuf does
        fname, ftype, repeated, tname = f
        if ftype == T_MESSAGE:
            sub = tname.lstrip(".")
            subspec = table().get(sub)
            if subspec is not None and subspec["m"]:
                entry = {n: (w, x) for n, w, x in fields(v)}
                kf, vf = subspec["f"].get(1), subspec["f"].get(2)
                key = _entry_value(kf, entry.get(1))
                val = _entry_value(vf, entry.get(2))
                out.setdefault(fname, {})[key] = val
                continue
            val = decode_message(sub, v)
        elif wt == 2 and ftype not in (T_STRING, T_BYTES):
            # packed repeated scalars
            vals = []
            for _pn, pw, pv in _packed(ftype, v):
                vals.append(_scalar(ftype, pw, pv))
            out.setdefault(fname, []).extend(vals)
            continue
        else:
            val = _scalar(ftype, wt, v)
        if repeated:
            out.setdefault(fname, []).append(val)
        elif val is None or (val == "" and ftype == T_STRING):
            continue  # Go's omitempty
        else:
            out[fname] = val
    return out


def _entry_value(f: list[Any] | None, wv: tuple[int, Any] | None) -> Any:
    if f is None:
        return None
    _, ftype, _, tname = f
    if wv is None:
        return "" if ftype in (T_STRING, T_BYTES) else ({} if ftype == T_MESSAGE else 0)
    wt, v = wv
    if ftype == T_MESSAGE:
        return decode_message(tname.lstrip("."), v)
    return _scalar(ftype, wt, v)


def _packed(ftype: int, b: bytes) -> list[tuple[int, int, int]]:
    out = []
    i = 0
    while i < len(b):
        if ftype in (T_DOUBLE, T_FIXED64, T_SFIXED64):
            out.append((0, 1, int.from_bytes(b[i:i + 8], "little")))
            i += 8
        elif ftype in (T_FLOAT, T_FIXED32, T_SFIXED32):
            out.append((0, 5, int.from_bytes(b[i:i + 4], "little")))
            i += 4
        else:
            v, i = wire.varint(b, i)
            out.append((0, 0, v))
    return out


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf request body (magic + runtime.Unknown) -> the object as JSON would carry it."""
    if not body.startswith(MAGIC):
        raise ProtobufError("not a Kubernetes protobuf body (missing the k8s\\0 prefix)")
    api_version = kind = ""
    raw = b""
    encoding = ""
    for n, _, v in fields(body[len(MAGIC):]):
        if n == 1:
            for tn, _, tv in fields(v):
                if tn == 1:
                    api_version = tv.decode()
                elif tn == 2:
                    kind = tv.decode()
        elif n == 2:
            raw = v
        elif n == 3:
            encoding = v.decode()
    if encoding:
        raise ProtobufError(f"unsupported contentEncoding {encoding!r}")
    name = message_for(api_version, kind)
    if name is None:
        raise ProtobufError(f"no protobuf schema for {api_version} {kind}")
    obj = decode_message(name, raw)
    assert isinstance(obj, dict)
    out: dict[str, Any] = {}
    if api_version:
        out["apiVersion"] = api_version
    if kind:
        out["kind"] = kind
    out.update(obj)
    return out
