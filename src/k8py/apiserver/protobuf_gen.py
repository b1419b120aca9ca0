"""Regenerate `protobuf_fields.json` from the protobuf descriptors inside a kubectl binary.

Kubernetes' Go types embed their gzipped FileDescriptorProtos (one per
`generated.proto`); they give the field numbers of the protobuf wire format that
kubectl's typed clients send. We keep, per message: field number -> [name, type,
label, type name], and which messages are map entries. Run:
    python -m k8py.apiserver.protobuf_gen /usr/bin/kubectl
"""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path
from typing import Any

from k8py.apiserver import wire

KEEP = ("k8s.io/api/core/v1/", "k8s.io/api/apps/v1/", "k8s.io/api/batch/v1/", "k8s.io/api/autoscaling/v1/",
        "k8s.io/api/autoscaling/v2/", "k8s.io/api/coordination/v1/", "k8s.io/api/discovery/v1/",
        "k8s.io/api/events/v1/", "k8s.io/api/storage/v1/", "k8s.io/api/policy/v1/",
        "k8s.io/api/scheduling/v1/", "k8s.io/api/node/v1/",
        "k8s.io/api/authentication/v1/", "k8s.io/api/authorization/v1/", "k8s.io/api/rbac/v1/",
        "k8s.io/api/admissionregistration/v1/",
        "k8s.io/apimachinery/pkg/apis/meta/v1/",
        "k8s.io/apimachinery/pkg/runtime/generated", "k8s.io/apimachinery/pkg/util/intstr/",
        "k8s.io/apimachinery/pkg/api/resource/")
OUT = Path(__file__).with_name("protobuf_fields.json")


def _message(buf: bytes, prefix: str, out: dict[str, Any]) -> None:
    name = ""
    flds: dict[str, list[Any]] = {}
    nested: list[bytes] = []
    map_entry = False
    for num, _, v in wire.fields(buf):
        if num == 1 and isinstance(v, bytes):
            name = v.decode()
        elif num == 2 and isinstance(v, bytes):
            f: dict[int, Any] = {}
            for fn, _, fv in wire.fields(v):
                f[fn] = fv.decode() if isinstance(fv, bytes) and fn in (1, 6, 10) else fv
            flds[str(f[3])] = [f.get(10) or f[1], f[5], f.get(4, 1), f.get(6, "").lstrip(".")]
        elif num == 3 and isinstance(v, bytes):
            nested.append(v)
        elif num == 7 and isinstance(v, bytes):
            for on, _, ov in wire.fields(v):
                if on == 7 and ov:
                    map_entry = True
    full = f"{prefix}.{name}"
    out[full] = {"fields": flds, **({"map": True} if map_entry else {})}
    for n in nested:
        _message(n, full, out)


def extract(binary: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    i = 0
    while True:
        i = binary.find(b"\x1f\x8b\x08\x00", i)
        if i < 0:
            return out
        try:
            blob = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(binary[i:i + 1_000_000])
        except zlib.error:
            i += 4
            continue
        i += 4
        if b"generated.proto" not in blob[:200]:
            continue
        fname, package, msgs = "", "", []
        try:
            for num, _, v in wire.fields(blob):
                if num == 1 and isinstance(v, bytes):
                    fname = v.decode()
                elif num == 2 and isinstance(v, bytes):
                    package = v.decode()
                elif num == 4 and isinstance(v, bytes):
                    msgs.append(v)
        except (ValueError, UnicodeDecodeError):
            continue
        if not fname.startswith(KEEP):
            continue
        for m in msgs:
            _message(m, package, out)


def main() -> None:
    table = extract(Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/bin/kubectl").read_bytes())
    OUT.write_text(json.dumps(table, separators=(",", ":"), sort_keys=True))
    print(f"{len(table)} messages -> {OUT}")


if __name__ == "__main__":
    main()
