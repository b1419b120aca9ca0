"""jsonfast: the same JSON meaning as the standard library, compact bytes, key order kept."""

from __future__ import annotations

import json
from typing import Any

import pytest

from k8py.api import jsonfast
from k8py.apiserver import codec, storage

POD: dict[str, Any] = {
    "kind": "Pod", "apiVersion": "v1",
    "metadata": {"name": "p", "namespace": "default", "labels": {"z": "1", "a": "2"},
                 "annotations": {"note": "é ✓ 😀 \u2028 <>&"}},
    "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"limits": {"cpu": "250m"}}}],
             "priority": 0, "terminationGracePeriodSeconds": 30},
    "status": {"phase": "Pending", "conditions": []},
}

VALUES: list[Any] = [
    POD,
    {"b": 1, "a": 2},  # key order kept, not sorted
    {"int64 max": 2**63 - 1, "int64 min": -2**63, "uint64 max": 2**64 - 1},
    {"beyond 64 bits": 2**64, "negative": -2**63 - 1, "huge": 10**30},
    {"floats": [0.1, 1.5, -2.25, 1e-7, 1e16, 1.7976931348623157e308, 5e-324, 0.0, -0.0]},
    {"unicode": "é\u00e9 ✓ 😀 \u2028\u2029 \x7f", "control": "\x00\x01\x1f\t\n\"\\/"},
    {"empty": {}, "list": [], "null": None, "t": True, "f": False, "s": ""},
    [1, "two", [3.0], {"four": 4}],
    "a string", 0, -1, 2.5, None, True,
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_dumps_means_what_json_wrote(value: Any) -> None:
    data = jsonfast.dumps(value)
    assert json.loads(data) == value
    assert jsonfast.loads(data) == value
    assert b": " not in data and b", " not in data.replace(b'", ', b"")  # compact


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_bytes_equal_json_compact_output_except_float_spelling(value: Any) -> None:
    data = jsonfast.dumps(value)
    old = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    if "floats" in (value if isinstance(value, dict) else {}):
        assert json.loads(data) == json.loads(old)
    else:
        assert data == old


@pytest.mark.parametrize("text", [
    b'{"a":18446744073709551616}', b'{"a":-9223372036854775809}', b"123456789012345678901234567890",
    b'{"n":1e400}', b'{"n":-1e400}', b'{"s":"\\ud83d\\ude00"}', b'{"a":1,"a":2}', b' [1 , 2] ',
    b'{"a":0.30000000000000004}', b"-0", b"1.0", b"1E2",
])
def test_loads_reads_as_json_does(text: bytes) -> None:
    assert repr(jsonfast.loads(text)) == repr(json.loads(text))
    assert repr(jsonfast.loads(text.decode())) == repr(json.loads(text))


def test_big_integers_are_exact_both_ways() -> None:
    v = {"x": 2**64 + 1, "y": [-(2**70)]}
    assert jsonfast.loads(jsonfast.dumps(v)) == v
    assert type(jsonfast.loads(jsonfast.dumps(v))["x"]) is int


def test_non_string_keys_as_json_writes_them() -> None:
    assert jsonfast.dumps({1: 2, 2.5: 3}) == json.dumps({1: 2, 2.5: 3}, separators=(",", ":")).encode()


def test_bad_input_raises_value_error() -> None:
    for bad in (b"{", b"[1,]", b"\xff", b"NaN?"):
        with pytest.raises(ValueError):
            jsonfast.loads(bad)


@pytest.mark.parametrize("body,fast", [
    (jsonfast.dumps(POD), True),
    (json.dumps(POD).encode(), False),  # spaces, ASCII escapes: the exact slow path
    (b'{"a":1,"a":2}', False),  # a duplicate key: must be found
    (b'{"a":{"b":1,"b":1}}', False),
    (b'{"n":18446744073709551616}', False),
    (b'{"n":1.0E2}', False),
])
def test_loads_unique_answers_only_for_canonical_bodies(body: bytes, fast: bool) -> None:
    if fast:
        assert jsonfast.loads_unique(body) == json.loads(body)
    else:
        with pytest.raises(jsonfast.NotCanonical):
            jsonfast.loads_unique(body)


@pytest.mark.parametrize("body,dups", [
    (b'{"a":1,"a":2}', ["a"]),
    (b'{"m":{"x":1,"y":2,"x":3}}', ["x"]),
    (jsonfast.dumps(POD), []),
])
def test_request_decoding_still_reports_duplicates(body: bytes, dups: list[str]) -> None:
    d = codec.decode(body, "application/json")
    assert d.duplicates == dups
    assert d.value == json.loads(body)


def test_stored_objects_round_trip_with_the_same_meaning() -> None:
    from k8py.api import resources
    r = resources.lookup("", "pods")
    assert r is not None
    data = storage.encode(r, POD)
    assert json.loads(data) == POD
    back = storage.decode(r, data, 7)
    assert back["metadata"].pop("resourceVersion") == "7"
    assert back == POD and list(back) == list(POD)
    c = storage.clone(POD)
    assert c == POD and c is not POD and c["metadata"] is not POD["metadata"]
