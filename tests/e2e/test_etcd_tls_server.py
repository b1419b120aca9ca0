"""`k8py server` on an etcd that speaks only TLS and requires client certificates
(--etcd-cafile/--etcd-certfile/--etcd-keyfile): kubectl creates and reads a Secret; a
client certificate of another CA stops the server at start with a clear error."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.request
from pathlib import Path

import pytest

from e2e_harness import K8pyServer, ServerFailed

pytestmark = pytest.mark.e2e


def _flags(pki, cert: str = "client") -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    return ("--etcd-cafile", str(pki.ca), "--etcd-certfile", str(getattr(pki, f"{cert}_cert")),
            "--etcd-keyfile", str(getattr(pki, f"{cert}_key")))


def _etcd_keys(etcd, prefix: bytes) -> list[bytes]:  # type: ignore[no-untyped-def]
    ctx = ssl.create_default_context(cafile=str(etcd.pki.ca))
    ctx.load_cert_chain(str(etcd.pki.client_cert), str(etcd.pki.client_key))
    body = json.dumps({"key": base64.b64encode(prefix).decode(),
                       "range_end": base64.b64encode(prefix[:-1] + bytes([prefix[-1] + 1])).decode(),
                       "keys_only": True}).encode()
    req = urllib.request.Request(etcd.url + "/v3/kv/range", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30, context=ctx) as r:  # noqa: S310 - our own etcd on loopback
        return [base64.b64decode(kv["key"]) for kv in json.load(r).get("kvs", [])]


def test_server_on_etcd_over_tls(etcd_tls, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = "etcd://" + etcd_tls.url.split("://", 1)[1]
    s = K8pyServer(tmp_path / "data", store=store, extra_args=_flags(etcd_tls.pki))
    s.start()
    try:
        assert "store etcd" in s.ready_line
        s.kubectl("create", "secret", "generic", "over-tls", "--from-literal=k=v")
        got = s.kubectl_json("get", "secret", "over-tls")
        assert base64.b64decode(got["data"]["k"]) == b"v"
        assert b"/registry/core/secrets/default/over-tls" in _etcd_keys(etcd_tls, b"/registry/core/secrets/")
    finally:
        s.stop()


def test_server_with_a_stranger_client_cert_does_not_start(etcd_tls, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = "etcd://" + etcd_tls.url.split("://", 1)[1]
    s = K8pyServer(tmp_path / "data", store=store, extra_args=_flags(etcd_tls.pki, "stranger"))
    with pytest.raises(ServerFailed) as failed:
        s.start()
    assert "cannot start" in str(failed.value) and "TLS handshake failed" in str(failed.value)
