"""open_store: store URLs to implementations."""

from __future__ import annotations

from pathlib import Path

import pytest

from k8py.store import Store, open_store
from k8py.store.etcd import EtcdStore
from k8py.store.memory import MemoryStore
from k8py.store.sqlite import SqliteStore


@pytest.mark.parametrize("url, cls, where", [
    (None, SqliteStore, "{data}/state.db"),
    ("", SqliteStore, "{data}/state.db"),
    ("sqlite://", SqliteStore, "{data}/state.db"),
    ("sqlite:///var/lib/x/y.db", SqliteStore, "/var/lib/x/y.db"),
    ("etcd://127.0.0.1:2379", EtcdStore, "http://127.0.0.1:2379"),
    ("etcd://localhost:12379/", EtcdStore, "http://localhost:12379"),
    ("etcd://127.0.0.1:1,127.0.0.2:2,h3:3", EtcdStore, "http://127.0.0.1:1,http://127.0.0.2:2,http://h3:3"),
    ("memory://", MemoryStore, None),
])
def test_open_store(tmp_path: Path, url: str | None, cls: type, where: str | None) -> None:
    s = open_store(url, str(tmp_path))
    assert isinstance(s, cls) and isinstance(s, Store)
    if isinstance(s, SqliteStore):
        assert s.path == (where or "").format(data=tmp_path)
    if isinstance(s, EtcdStore):
        assert s.urls == where.split(",") if where else False


@pytest.mark.parametrize("url", ["postgres://db", "sqlite://relative.db", "etcd://", "etcd://h:1/x", "etcd://h:1,,h:2", "etcd://h:1,",
                                 "memory", "http://127.0.0.1:2379"])
def test_open_store_rejects_unknown_urls(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValueError, match="store URL"):
        open_store(url, str(tmp_path))


async def test_open_store_default_is_usable(tmp_path: Path) -> None:
    s = open_store(None, str(tmp_path / "data"))
    await s.start()
    try:
        kv = await s.create("/x", b"1")
        assert await s.get("/x") == kv
    finally:
        await s.close()
    assert (tmp_path / "data" / "state.db").exists()
