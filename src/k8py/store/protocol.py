"""The Store protocol: a revisioned key-value store with watch (etcd's model).

Invariants every implementation keeps (tests/store/ checks them on each one):
- One global revision counter; every successful write (create, update, delete)
  increments it by exactly one and stamps the key with that `mod_revision`.
- `update`/`delete` with `expected_revision` are compare-and-swap: they succeed
  only if the key's current `mod_revision` equals it, else raise `Conflict`.
- `watch(prefix, revision)` yields, in revision order, every event with
  revision > `revision` for keys under `prefix`, then live events, without gaps.
  A revision older than the last compaction raises `Compacted` (HTTP 410).
- A write that returned has been made durable (fsync'd / committed by etcd).
Values are opaque bytes (the API server stores JSON).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int


@dataclass(frozen=True)
class WatchEvent:
    type: Literal["PUT", "DELETE"]
    kv: KeyValue  # for DELETE: the key with the deleted value and the delete's revision
    prev: KeyValue | None  # the previous value (None on create)
    created: bool = False  # True when this PUT created the key


@dataclass(frozen=True)
class ListResult:
    items: list[KeyValue]
    revision: int  # the store revision the list was read at
    more: bool  # True if `limit` cut the list short


@runtime_checkable
class Store(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def current_revision(self) -> int: ...

    async def get(self, key: str) -> KeyValue | None: ...

    async def list(self, prefix: str, *, start_after: str | None = None,
                   limit: int = 0) -> ListResult:
        """Keys under `prefix` in key order, after `start_after` (exclusive) if given;
        at most `limit` items when limit > 0."""
        ...

    async def count(self, prefix: str) -> int: ...

    async def create(self, key: str, value: bytes) -> KeyValue:
        """Raises KeyExists if the key exists."""
        ...

    async def update(self, key: str, value: bytes, expected_revision: int) -> KeyValue:
        """CAS. Raises NotFound if absent, Conflict if mod_revision differs."""
        ...

    async def delete(self, key: str, expected_revision: int | None = None) -> KeyValue:
        """Returns the deleted key (with the delete's revision as mod_revision).
        Raises NotFound if absent, Conflict if expected_revision is given and differs."""
        ...

    def watch(self, prefix: str, revision: int) -> AsyncIterator[WatchEvent]:
        """Events with revision > `revision` under prefix. Raises Compacted."""
        ...

    async def compact(self, revision: int) -> None:
        """Forget history at or before `revision` (latest values are kept)."""
        ...

    @property
    def compacted_revision(self) -> int: ...
