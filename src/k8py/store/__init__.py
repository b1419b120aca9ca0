"""k8py.store: a revisioned key-value store with compare-and-swap and watch.

`open_store(url, data_dir)` picks the implementation from a URL:
- None, "" or "sqlite://"      -> SqliteStore(<data_dir>/state.db)  (the default)
- "sqlite:///abs/path.db"      -> SqliteStore("/abs/path.db")
- "etcd://host:port"           -> EtcdStore("http://host:port")
- "etcd://h1:p1,h2:p2,h3:p3"   -> EtcdStore(["http://h1:p1", ...]): the members of one etcd
                                  cluster; the store fails over among them
- "memory://"                  -> MemoryStore() (nothing survives the process)
The store is returned unstarted: call `await store.start()`.
"""

from __future__ import annotations

import os

from k8py.store.protocol import KeyValue, ListResult, Store, WatchEvent

__all__ = ["KeyValue", "ListResult", "Store", "WatchEvent", "open_store"]


def open_store(url: str | None, data_dir: str) -> Store:
    if not url or url == "sqlite://":
        from k8py.store.sqlite import SqliteStore
        return SqliteStore(os.path.join(data_dir, "state.db"))
    if url.startswith("sqlite://"):
        path = url[len("sqlite://"):]
        if not path.startswith("/") or path == "/":
            raise ValueError(f"store URL {url!r}: expected sqlite:///absolute/path.db")
        from k8py.store.sqlite import SqliteStore
        return SqliteStore(path)
    if url.startswith("etcd://"):
        members = url[len("etcd://"):].rstrip("/").split(",")
        if any(not m or "/" in m for m in members):
            raise ValueError(f"store URL {url!r}: expected etcd://host:port or etcd://h1:p1,h2:p2,...")
        from k8py.store.etcd import EtcdStore
        return EtcdStore(["http://" + m for m in members])
    if url == "memory://":
        from k8py.store.memory import MemoryStore
        return MemoryStore()
    raise ValueError(f"unsupported store URL {url!r}: use sqlite://, sqlite:///abs/path.db, "
                     "etcd://host:port[,host:port...] or memory://")
