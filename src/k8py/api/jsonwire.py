"""JSON bytes as kube-apiserver and the kubelet write them (Go's encoding/json).

`marshal(obj)` is Go's `json.Marshal`: compact, non-ASCII text as UTF-8, and the HTML
characters `<`, `>`, `&` and the separators U+2028/U+2029 escaped as `\\u003c`...;
`encode(obj)` is `json.Encoder.Encode`, the same plus a trailing newline: what the API
server's JSON serializer writes for every response body (Status errors included) and
every watch event. Key order is the dict's: callers build Status bodies in metav1.Status'
field order (kind, apiVersion, metadata, status, message, reason, details, code).
Invariant: the output parses back (json.loads) to the same value.
"""

from __future__ import annotations

import json
from typing import Any

_GO_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def marshal(obj: Any) -> bytes:
    """Go's json.Marshal of `obj` (no trailing newline)."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in _GO_ESCAPES:
        if char in text:  # only inside strings: JSON's own syntax has none of them
            text = text.replace(char, escaped)
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate (from a "\\ud800" escape): keep it escaped
        return marshal_ascii(obj)


def marshal_ascii(obj: Any) -> bytes:
    text = json.dumps(obj, separators=(",", ":"))
    for char, escaped in _GO_ESCAPES[:3]:
        text = text.replace(char, escaped)
    return text.encode()


def encode(obj: Any) -> bytes:
    """Go's json.Encoder.Encode of `obj`: marshal plus a newline."""
    return marshal(obj) + b"\n"
