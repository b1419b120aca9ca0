"""JsonFileCache: a changed file is re-read, an unchanged one is served from the cache."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from k8py.runtime.jsoncache import JsonFileCache


def replace_atomically(p: Path, data: object) -> None:
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, p)


def rewrite_in_place(p: Path, data: object) -> None:
    p.write_text(json.dumps(data))


@pytest.mark.parametrize("change", [replace_atomically, rewrite_in_place])
def test_a_changed_file_is_read_again(tmp_path: Path, change) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "rec.json"
    replace_atomically(p, {"state": "created"})
    cache = JsonFileCache()
    assert cache.read(p) == {"state": "created"}
    change(p, {"state": "running", "pid": 42})
    assert cache.read(p) == {"state": "running", "pid": 42}


def test_an_unchanged_file_is_not_parsed_again(tmp_path: Path) -> None:
    p = tmp_path / "rec.json"
    replace_atomically(p, {"a": [1, 2]})
    cache = JsonFileCache()
    first = cache.read(p)
    assert cache.read(p) is first


def test_errors_are_those_of_reading_the_file(tmp_path: Path) -> None:
    cache = JsonFileCache()
    with pytest.raises(OSError):
        cache.read(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError):
        cache.read(bad)


def test_the_cache_stays_bounded(tmp_path: Path) -> None:
    cache = JsonFileCache(max_entries=3)
    for i in range(10):
        replace_atomically(tmp_path / f"{i}.json", i)
        assert cache.read(tmp_path / f"{i}.json") == i
    assert len(cache._entries) <= 3
