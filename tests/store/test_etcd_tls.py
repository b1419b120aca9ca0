"""The etcd store over TLS with client certificates (kube-apiserver's --etcd-cafile,
--etcd-certfile, --etcd-keyfile), against a real etcd run with --client-cert-auth."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from k8py.store import open_store
from k8py.store.errors import EtcdTLSError
from k8py.store.etcd import EtcdStore, EtcdTLS


def _tls(etcd_tls, cert: str = "client") -> EtcdTLS:  # type: ignore[no-untyped-def]
    pki = etcd_tls.pki
    return EtcdTLS(str(pki.ca), str(getattr(pki, f"{cert}_cert")), str(getattr(pki, f"{cert}_key")))


async def test_put_get_watch_over_tls(etcd_tls, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert etcd_tls.url.startswith("https://")
    store = open_store("etcd://" + etcd_tls.url.split("://", 1)[1], str(tmp_path), etcd_tls=_tls(etcd_tls))
    assert isinstance(store, EtcdStore) and store.urls == [etcd_tls.url]
    pfx = f"/k8py-tls/{uuid.uuid4().hex[:8]}/"
    await store.start()
    try:
        start = await store.current_revision()
        events = store.watch(pfx, start)
        kv = await store.create(pfx + "a", b"one")
        await store.update(pfx + "a", b"two", kv.mod_revision)
        got = await store.get(pfx + "a")
        assert got is not None and got.value == b"two"
        seen = [await asyncio.wait_for(events.__anext__(), 30) for _ in range(2)]
        assert [e.kv.value for e in seen] == [b"one", b"two"]
        await events.aclose()  # type: ignore[attr-defined]
    finally:
        await store.close()


@pytest.mark.parametrize("tls", [
    pytest.param("stranger", id="client-cert-of-another-ca"),
    pytest.param("none", id="no-client-cert"),
    pytest.param("no-ca", id="server-not-trusted"),
])
async def test_refused_handshake_is_a_clear_error(etcd_tls, tls: str) -> None:  # type: ignore[no-untyped-def]
    pki = etcd_tls.pki
    config = {"stranger": _tls(etcd_tls, "stranger"), "none": EtcdTLS(str(pki.ca)),
              "no-ca": EtcdTLS(None, str(pki.client_cert), str(pki.client_key))}[tls]
    store = EtcdStore(etcd_tls.url, tls=config, timeout=60)
    await store.start()
    try:
        with pytest.raises(EtcdTLSError, match="TLS handshake failed.*--etcd-certfile"):
            await asyncio.wait_for(store.get("/k8py-tls/x"), 20)  # refused at once, not retried for 60 s
        with pytest.raises(EtcdTLSError):
            await asyncio.wait_for(store.watch("/k8py-tls/", 1).__anext__(), 20)
    finally:
        await store.close()


def test_open_store_tls_forms(tmp_path: Path) -> None:
    tls = EtcdTLS()
    s = open_store("etcd://h1:1,h2:2", str(tmp_path), etcd_tls=tls)
    assert isinstance(s, EtcdStore) and s.urls == ["https://h1:1", "https://h2:2"]
    s = open_store("etcds://h1:1", str(tmp_path))
    assert isinstance(s, EtcdStore) and s.urls == ["https://h1:1"]
    with pytest.raises(ValueError, match="etcd://"):
        open_store("sqlite://", str(tmp_path), etcd_tls=tls)
    with pytest.raises(ValueError, match="go together"):
        EtcdTLS(None, "/x.crt", None)
