"""JSON bytes as Go's encoding/json writes them (api/jsonwire.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from k8py.api import jsonwire


@pytest.mark.parametrize(("obj", "want"), [
    ({"b": 1, "a": [True, None, 1.5]}, b'{"b":1,"a":[true,null,1.5]}'),  # compact, the dict's order
    ({"m": "a<b>&c"}, b'{"m":"a\\u003cb\\u003e\\u0026c"}'),  # HTML characters escaped
    ({"<k>": "x"}, b'{"\\u003ck\\u003e":"x"}'),
    ({"m": "caf\u00e9 \u2603"}, '{"m":"caf\u00e9 \u2603"}'.encode()),  # UTF-8, not \\u escapes
    ({"m": "a\u2028b\u2029"}, b'{"m":"a\\u2028b\\u2029"}'),
    ({"m": 'q"\\\n\t'}, b'{"m":"q\\"\\\\\\n\\t"}'),
    ({"m": "\ud800"}, b'{"m":"\\ud800"}'),  # a lone surrogate stays escaped, never a 500
])
def test_marshal(obj: Any, want: bytes) -> None:
    assert jsonwire.marshal(obj) == want
    assert json.loads(jsonwire.marshal(obj)) == obj
    assert jsonwire.encode(obj) == want + b"\n"
