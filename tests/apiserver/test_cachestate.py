"""CacheState: a store list at L plus the events after L, in key order."""

from __future__ import annotations

import pytest

from k8py.apiserver.cachestate import CacheState
from k8py.store.protocol import KeyValue, WatchEvent


def put(key: str, rev: int, value: bytes = b"{}") -> WatchEvent:
    return WatchEvent("PUT", KeyValue(key, value, rev, rev), None)


def delete(key: str, rev: int) -> WatchEvent:
    return WatchEvent("DELETE", KeyValue(key, b"{}", rev, 0), None)


LISTED = [KeyValue("/p/a", b"1", 3, 3), KeyValue("/p/c", b"1", 5, 5)]


@pytest.mark.parametrize("buffered,after,want", [
    ([], [], ["/p/a", "/p/c"]),
    ([put("/p/b", 4)], [], ["/p/a", "/p/c"]),  # already in the list (4 <= 5): skipped
    ([put("/p/b", 6)], [], ["/p/a", "/p/b", "/p/c"]),  # came in while listing: applied
    ([delete("/p/a", 5)], [put("/p/0", 7)], ["/p/0", "/p/a", "/p/c"]),
    ([delete("/p/a", 6)], [delete("/p/c", 7), delete("/p/zz", 8)], []),
    ([], [put("/p/c", 6, b"2"), put("/p/a\u00e9", 7), put("/p/a0", 8)], ["/p/a", "/p/a0", "/p/a\u00e9", "/p/c"]),
])
def test_load_then_follow(buffered: list[WatchEvent], after: list[WatchEvent], want: list[str]) -> None:
    s = CacheState()
    s.begin_load()
    for ev in buffered:
        s.apply(ev)
    assert not s.loaded
    s.finish_load(list(LISTED), 5)
    for ev in after:
        s.apply(ev)
    res = s.list("/p/")
    assert [kv.key for kv in res.items] == want and not res.more
    assert res.revision == max([5] + [e.kv.mod_revision for e in buffered + after])


def test_pages_and_reported_revision() -> None:
    s = CacheState()
    s.begin_load()
    s.finish_load([KeyValue(f"/p/{i}", b"", i + 1, i + 1) for i in range(6)] + [KeyValue("/q/x", b"", 9, 9)], 9)
    page = s.list("/p/", None, 4, revision=12)
    assert [kv.key for kv in page.items] == ["/p/0", "/p/1", "/p/2", "/p/3"] and page.more and page.revision == 12
    page = s.list("/p/", "/p/3", 4)
    assert [kv.key for kv in page.items] == ["/p/4", "/p/5"] and not page.more and page.revision == 9


def test_reset_forgets_until_reloaded() -> None:
    s = CacheState()
    s.begin_load()
    s.finish_load(list(LISTED), 5)
    s.reset()
    s.apply(put("/p/x", 9))
    assert not s.loaded and len(s) == 0
