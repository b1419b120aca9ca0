"""k8py.store: a revisioned key-value store with compare-and-swap and watch.

`open_store(url, data_dir)` picks the implementation from a URL:
- None, "" or "sqlite://"      -> SqliteStore(<data_dir>/state.db)  (the default)
- "sqlite:///abs/path.db"      -> SqliteStore("/abs/path.db")
- "etcd://host:port"           -> EtcdStore("http://host:port")
- "etcd://h1:p1,h2:p2,h3:p3"   -> EtcdStore(["http://h1:p1", ...]): the members of one etcd
                                  cluster; the store fails over among them
- "memory://"                  -> MemoryStore() (nothing survives the process)
An etcd URL with `etcd_tls` (kube-apiserver's --etcd-cafile/--etcd-certfile/--etcd-keyfile)
speaks https to every member; "etcds://..." asks for https with the system's CAs.
The store is returned unstarted: call `await store.start()`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from k8py.store.protocol import KeyValue, ListResult, Store, WatchEvent

if TYPE_CHECKING:
    from k8py.store.etcd import EtcdTLS

__all__ = ["KeyValue", "ListResult", "Store", "WatchEvent", "open_store"]


def open_store(url: str | None, data_dir: str, *, etcd_tls: EtcdTLS | None = None) -> Store:
    if etcd_tls is not None and not (url or "").startswith(("etcd://", "etcds://")):
        raise ValueError("--etcd-cafile/--etcd-certfile/--etcd-keyfile need an etcd:// store URL")
    if not url or url == "sqlite://":
        from k8py.store.sqlite import SqliteStore
        return SqliteStore(os.path.join(data_dir, "state.db"))
    if url.startswith("sqlite://"):
        path = url[len("sqlite://"):]
        if not path.startswith("/") or path == "/":
            raise ValueError(f"store URL {url!r}: expected sqlite:///absolute/path.db")
        from k8py.store.sqlite import SqliteStore
        return SqliteStore(path)
    if url.startswith(("etcd://", "etcds://")):
        scheme, _, rest = url.partition("://")
        members = rest.rstrip("/").split(",")
        if any(not m or "/" in m for m in members):
            raise ValueError(f"store URL {url!r}: expected etcd://host:port or etcd://h1:p1,h2:p2,...")
        from k8py.store.etcd import EtcdStore, EtcdTLS
        if scheme == "etcds" and etcd_tls is None:
            etcd_tls = EtcdTLS()
        http = "https://" if etcd_tls is not None else "http://"
        return EtcdStore([http + m for m in members], tls=etcd_tls)

    if url == "memory://":
        from k8py.store.memory import MemoryStore
        return MemoryStore()
    raise ValueError(f"unsupported store URL {url!r}: use sqlite://, sqlite:///abs/path.db, "
                     "etcd://host:port[,host:port...] or memory://")
