"""Secrets encrypted at rest: the EncryptionConfiguration file, the providers, the
EncryptingStore under an ApiServer (memory, SQLite and a real etcd), key rotation."""

from __future__ import annotations

import base64
import json
import os
import stat
import urllib.request
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from k8py.apiserver import encryption
from k8py.apiserver.config import ApiServerConfig
from k8py.apiserver.encryption import EncryptingStore, EncryptionConfigError, Provider, TransformError
from k8py.apiserver.inprocess import InProcessTransport
from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.clock import FakeClock
from k8py.store.memory import MemoryStore
from k8py.store.protocol import Store

SECRET = "s3cr3t-Zebra-Quokka-4711"
KEY = "/registry/core/secrets/default/x"


def _config(kind: str = "aescbc", name: str = "k1", key: bytes | None = None,
            identity_first: bool = False) -> dict[str, Any]:
    k = {"name": name, "secret": base64.b64encode(key or os.urandom(32)).decode()}
    providers: list[dict[str, Any]] = [{kind: {"keys": [k]}}, {"identity": {}}]
    if identity_first:
        providers.reverse()
    return {"apiVersion": encryption.API_VERSION, "kind": encryption.KIND,
            "resources": [{"resources": ["secrets"], "providers": providers}]}


def _secret(name: str, ns: str = "default") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
            "stringData": {"password": SECRET}}


def _leaks(raw: bytes) -> bool:
    """Whether `raw` shows the secret: as itself or as Kubernetes stores it (base64)."""
    return SECRET.encode() in raw or base64.b64encode(SECRET.encode()) in raw


@asynccontextmanager
async def _api(store: Store, doc: dict[str, Any]) -> AsyncIterator[tuple[Client, EncryptingStore]]:
    enc = EncryptingStore(store, encryption.parse(doc))
    api = ApiServer(enc, ApiServerConfig(), FakeClock())
    await api.start()
    try:
        yield Client(InProcessTransport(api)), enc
    finally:
        await api.close()


# ---- providers ----

@pytest.mark.parametrize("kind", ["aescbc", "aesgcm"])
@pytest.mark.parametrize("size", [16, 24, 32])
def test_provider_round_trip_with_kube_apiserver_prefix(kind: str, size: int) -> None:
    p = Provider(kind, "mykey", os.urandom(size))
    value = p.encrypt(SECRET.encode(), KEY)
    assert value.startswith(f"k8s:enc:{kind}:v1:mykey:".encode()) and not _leaks(value)
    assert p.encrypt(SECRET.encode(), KEY) != value  # a fresh IV / nonce every time
    assert p.decrypt(value, KEY) == SECRET.encode()
    # A wrong key never yields the plaintext. aesgcm always refuses; aescbc (no authentication,
    # as kube-apiserver's) refuses on the padding, except about 1 time in 256 when the garbage
    # happens to end in valid padding: then it is garbage, never the value.
    try:
        wrong = Provider(kind, "mykey", os.urandom(size)).decrypt(value, KEY)
    except TransformError:
        pass
    else:
        assert kind == "aescbc" and wrong != SECRET.encode()


def test_aescbc_garbage_from_a_wrong_key_is_refused_even_with_valid_padding() -> None:
    """Find (by trying keys) a wrong key whose garbage ends in valid padding: still refused."""
    right = Provider("aescbc", "k", os.urandom(32))
    value = right.encrypt(b'{"kind":"Secret"}', KEY)
    for _ in range(5000):
        wrong = Provider("aescbc", "k", os.urandom(32))
        try:
            garbage = wrong.decrypt(value, KEY)
        except TransformError:
            continue
        if not garbage.startswith(b"{"):  # (1 in 256 of these could pass for an object: skip them)
            break
    else:
        pytest.skip("no wrong key with valid padding found in 5000 tries")
    with pytest.raises(TransformError, match="failed to decrypt"):
        encryption._checked(wrong, wrong.decrypt(value, KEY))


def test_aesgcm_binds_the_value_to_its_key() -> None:
    p = Provider("aesgcm", "k", os.urandom(32))
    with pytest.raises(TransformError, match="authentication"):
        p.decrypt(p.encrypt(b"{}", KEY), KEY + "-copy")


def test_reading_picks_the_provider_whose_prefix_matches() -> None:
    old = _config(name="old")
    both = json.loads(json.dumps(old))
    new_key = {"name": "new", "secret": base64.b64encode(os.urandom(32)).decode()}
    both["resources"][0]["providers"][0]["aescbc"]["keys"].insert(0, new_key)
    c_old, c_both = encryption.parse(old), encryption.parse(both)
    v_old = c_old.write_value(KEY, b'{"payload":1}')
    assert c_both.read_value(KEY, v_old) == b'{"payload":1}'
    assert c_both.write_value(KEY, b"p").startswith(b"k8s:enc:aescbc:v1:new:")
    assert c_both.read_value(KEY, b'{"plain":1}') == b'{"plain":1}'  # identity, last, reads plaintext
    with pytest.raises(TransformError, match="identity transformer tried to read encrypted data"):
        c_old.read_value(KEY, c_both.write_value(KEY, b"{}"))
    assert c_old.write_value("/registry/core/configmaps/default/x", b"cm") == b"cm"


def test_identity_first_opts_out() -> None:
    c = encryption.parse(_config(identity_first=True))
    assert c.write_value(KEY, b"plain") == b"plain" and not c.encrypts(KEY)


@pytest.mark.parametrize(("mutate", "words"), [
    (lambda d: d.update(kind="Other"), "kind EncryptionConfiguration"),
    (lambda d: d["resources"][0]["providers"].insert(0, {"secretbox": {"keys": []}}),
     "resources[0].providers[0].secretbox: Unsupported value: XSalsa20-Poly1305"),
    (lambda d: d["resources"][0]["providers"].insert(0, {"kms": {}}), 'Unsupported value: "kms"'),
    (lambda d: d["resources"][0]["providers"][0]["aescbc"]["keys"][0].update(secret="!!notbase64"),
     "keys[0].secret: Invalid value: secrets must be base64 encoded"),
    (lambda d: d["resources"][0]["providers"][0]["aescbc"]["keys"][0].update(secret="c2hvcnQ="),
     "keys[0].secret: Invalid value: aescbc key must be 16, 24 or 32 bytes, got 5"),
    (lambda d: d["resources"][0]["providers"][0]["aescbc"]["keys"][0].pop("name"), "keys[0].name: Required value"),
    (lambda d: d["resources"][0].update(resources=["nosuchthings"]), "unknown resource 'nosuchthings'"),
    (lambda d: d["resources"][0].update(providers=[]), "resources[0].providers: Required value"),
])
def test_a_bad_config_is_refused_naming_the_field(mutate: Any, words: str) -> None:
    doc = _config()
    mutate(doc)
    with pytest.raises(EncryptionConfigError) as e:
        encryption.parse(doc)
    assert words in str(e.value)


def test_the_default_config_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    c = encryption.ensure_config(tmp_path, None)
    path = tmp_path / encryption.DEFAULT_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.kind for p in c.rules[0].providers] == ["aescbc", "identity"] and len(c.rules[0].providers[0].key) == 32
    again = encryption.ensure_config(tmp_path, None)
    assert again.rules[0].providers[0].key == c.rules[0].providers[0].key
    given = tmp_path / "given.yaml"
    encryption.write_document(given, _config("aesgcm", "mine"))
    assert encryption.ensure_config(tmp_path, str(given)).rules[0].providers[0].name == "mine"
    with pytest.raises(EncryptionConfigError, match="No such file"):
        encryption.ensure_config(tmp_path, str(tmp_path / "missing.yaml"))


# ---- through the API server ----

@pytest.mark.parametrize("kind", ["aescbc", "aesgcm"])
async def test_a_secret_is_stored_encrypted_and_served_in_clear(kind: str) -> None:
    inner = MemoryStore()
    await inner.start()
    async with _api(inner, _config(kind, "k1")) as (client, _):
        await client.create("secrets", _secret("x"))
        await client.create("configmaps", {"metadata": {"name": "cm", "namespace": "default"}, "data": {"a": "b"}})
        raw = await inner.get(KEY)
        assert raw is not None and raw.value.startswith(f"k8s:enc:{kind}:v1:k1:".encode()) and not _leaks(raw.value)
        cm = await inner.get("/registry/core/configmaps/default/cm")
        assert cm is not None and cm.value.startswith(b"{")
        got = await client.get("secrets", "x", "default")
        assert base64.b64decode(got["data"]["password"]).decode() == SECRET
        listed = await client.list("secrets", "default")
        assert [base64.b64decode(s["data"]["password"]).decode() for s in listed["items"]] == [SECRET]
        got["data"]["more"] = base64.b64encode(b"x").decode()
        await client.update("secrets", got)
        raw = await inner.get(KEY)
        assert raw is not None and raw.value.startswith(b"k8s:enc:") and not _leaks(raw.value)
    await inner.close()


async def test_a_watch_sees_secrets_in_clear() -> None:
    inner = MemoryStore()
    await inner.start()
    enc = EncryptingStore(inner, encryption.parse(_config()))
    rev = await enc.current_revision()
    await enc.create(KEY, b'{"a":1}')
    await enc.delete(KEY)
    events = []
    async for ev in enc.watch("/registry/core/secrets/", rev):
        events.append(ev)
        if len(events) == 2:
            break
    assert [(e.type, e.kv.value) for e in events] == [("PUT", b'{"a":1}'), ("DELETE", b'{"a":1}')]
    await inner.close()


async def test_a_watch_skips_what_it_cannot_decrypt_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    inner = MemoryStore()
    await inner.start()
    rev = await inner.current_revision()
    await EncryptingStore(inner, encryption.parse(_config(name="a"))).create(KEY, b'{"lost":1}')
    enc = EncryptingStore(inner, encryption.parse(_config(name="a")))  # same name, another key
    await enc.create(KEY + "2", b'{"seen":1}')
    async for ev in enc.watch("/registry/core/secrets/", rev):
        assert ev.kv.value == b'{"seen":1}'
        break
    assert f'unable to transform key "{KEY}"' in caplog.text
    await inner.close()


async def test_a_wrong_key_answers_a_clear_500_status_not_a_traceback() -> None:
    inner = MemoryStore()
    await inner.start()
    async with _api(inner, _config(name="right")) as (client, _):
        await client.create("secrets", _secret("x"))
    async with _api(inner, _config(name="right")) as (client, _):  # same name, another key
        with pytest.raises(ApiError) as e:
            await client.get("secrets", "x", "default")
        assert e.value.status == 500 and e.value.reason == "InternalError"
        assert f'unable to transform key "{KEY}": key \'right\' failed to decrypt' in e.value.body["message"]
        with pytest.raises(ApiError) as e:
            await client.list("secrets", "default")
        assert e.value.status == 500 and "unable to transform key" in e.value.body["message"]
        assert (await client.get("namespaces", "default"))["metadata"]["name"] == "default"  # the rest still serves
    async with _api(inner, _config(name="other")) as (client, _):  # no provider for the stored key name
        with pytest.raises(ApiError) as e:
            await client.get("secrets", "x", "default")
        assert e.value.status == 500 and "identity transformer tried to read encrypted data" in e.value.body["message"]
    await inner.close()


async def test_plaintext_secrets_from_before_still_read_and_get_encrypted_on_write() -> None:
    inner = MemoryStore()
    await inner.start()
    async with _api(inner, _config(identity_first=True)) as (client, _):
        await client.create("secrets", _secret("x"))
    assert _leaks((await inner.get(KEY)).value)  # type: ignore[union-attr] - created just above
    doc = encryption.default_document()
    async with _api(inner, doc) as (client, enc):
        got = await client.get("secrets", "x", "default")
        assert base64.b64decode(got["data"]["password"]).decode() == SECRET
        assert await encryption.rewrite_all(inner, enc.config) >= 1
        raw = await inner.get(KEY)
        assert raw is not None and raw.value.startswith(b"k8s:enc:aescbc:v1:key-") and not _leaks(raw.value)
        assert (await client.get("secrets", "x", "default"))["data"] == got["data"]
    await inner.close()


async def test_rotation_rewrites_everything_with_the_new_key_and_the_old_one_can_go() -> None:
    inner = MemoryStore()
    await inner.start()
    doc = _config(name="old")
    async with _api(inner, doc) as (client, _):
        for i in range(3):
            await client.create("secrets", _secret(f"s{i}"))
    rotated, name = encryption.rotated_document(doc)
    assert [k["name"] for k in rotated["resources"][0]["providers"][0]["aescbc"]["keys"]] == [name, "old"]
    assert await encryption.rewrite_all(inner, encryption.parse(rotated)) == 3
    final = encryption.without_old_keys(rotated)
    assert final["resources"][0]["providers"] == [{"aescbc": {"keys": [rotated["resources"][0]["providers"][0]
                                                                         ["aescbc"]["keys"][0]]}}, {"identity": {}}]
    async with _api(inner, final) as (client, _):
        items = (await client.list("secrets", "default"))["items"]
        assert sorted(s["metadata"]["name"] for s in items) == ["s0", "s1", "s2"]
        assert {base64.b64decode(s["data"]["password"]).decode() for s in items} == {SECRET}
    for i in range(3):
        raw = await inner.get(f"/registry/core/secrets/default/s{i}")
        assert raw is not None and raw.value.startswith(f"k8s:enc:aescbc:v1:{name}:".encode())
    with pytest.raises(EncryptionConfigError, match="identity is first"):
        encryption.rotated_document(_config(identity_first=True))
    await inner.close()


# ---- the bytes at rest: SQLite files, etcd ----

async def test_no_file_of_the_sqlite_data_dir_holds_the_value(tmp_path: Path) -> None:
    from k8py.store.sqlite import SqliteStore
    data = tmp_path / "data"
    inner = SqliteStore(str(data / "state.db"))
    await inner.start()
    canary = b"canary-Plain-ConfigMap-9921"
    try:
        async with _api(inner, _config()) as (client, _):
            for i in range(20):
                s = await client.create("secrets", _secret(f"s{i}"))
                await client.update("secrets", s)  # history too
            await client.create("configmaps", {"metadata": {"name": "canary", "namespace": "default"},
                                               "data": {"v": canary.decode()}})
            for name in ("state.db", "state.db-wal", "state.db-shm"):
                assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
            files = [p for p in data.rglob("*") if p.is_file()]
            assert {p.name for p in files} >= {"state.db", "state.db-wal"}
            # the same grep finds a value that is not encrypted: this check can fail
            assert any(canary in p.read_bytes() for p in files)
            assert [p.name for p in files if _leaks(p.read_bytes())] == []
    finally:
        await inner.close()
    assert [p.name for p in data.rglob("*") if p.is_file() and _leaks(p.read_bytes())] == []


async def test_etcd_holds_no_plaintext_of_the_value(etcd_url: str) -> None:
    from k8py.store.etcd import EtcdStore
    inner = EtcdStore(etcd_url)
    await inner.start()
    ns = f"enc-{uuid.uuid4().hex[:8]}"
    try:
        async with _api(inner, _config("aesgcm", "etcdkey")) as (client, _):
            await client.create("namespaces", {"metadata": {"name": ns}})
            await client.create("secrets", _secret("x", ns))
            got = await client.get("secrets", "x", ns)
            assert base64.b64decode(got["data"]["password"]).decode() == SECRET
    finally:
        await inner.close()
    key = f"/registry/core/secrets/{ns}/x".encode()
    body = json.dumps({"key": base64.b64encode(key).decode()}).encode()
    req = urllib.request.Request(etcd_url + "/v3/kv/range", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        kvs = json.loads(resp.read())["kvs"]
    raw = base64.b64decode(kvs[0]["value"])
    assert raw.startswith(b"k8s:enc:aesgcm:v1:etcdkey:") and not _leaks(raw)
