"""`k8py secrets rotate` on a stopped server's data dir (SQLite)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from k8py.apiserver import encryption
from k8py.apiserver.encryption import EncryptingStore
from k8py.cli.main import main
from k8py.store.sqlite import SqliteStore

KEY = "/registry/core/secrets/default/s"


async def _put(data: Path, value: bytes) -> None:
    enc = EncryptingStore(SqliteStore(str(data / "state.db")), encryption.ensure_config(data, None))
    await enc.start()
    await enc.create(KEY, value)
    await enc.close()


async def _raw_and_plain(data: Path) -> tuple[bytes, bytes]:
    inner = SqliteStore(str(data / "state.db"))
    await inner.start()
    try:
        raw = await inner.get(KEY)
        assert raw is not None
        return raw.value, encryption.load(data / encryption.DEFAULT_FILE).read_value(KEY, raw.value)
    finally:
        await inner.close()


def _names(data: Path) -> list[str]:
    doc = json.loads((data / encryption.DEFAULT_FILE).read_text())
    return [k["name"] for k in doc["resources"][0]["providers"][0]["aescbc"]["keys"]]


async def test_rotate_rewrites_with_a_new_key_then_drops_the_old(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    await _put(data, b'{"v":"plain-words"}')
    [old] = _names(data)
    assert await asyncio_to_thread(main, ["secrets", "rotate", "--data-dir", str(data), "--keep-old-keys"]) == 0
    names = _names(data)
    assert len(names) == 2 and names[1] == old
    assert f"rotated to key {names[0]}: 1 values rewritten" in capsys.readouterr().out
    raw, plain = await _raw_and_plain(data)
    assert raw.startswith(f"k8s:enc:aescbc:v1:{names[0]}:".encode()) and plain == b'{"v":"plain-words"}'
    assert await asyncio_to_thread(main, ["secrets", "rotate", "--data-dir", str(data)]) == 0
    [last] = _names(data)
    assert last not in names
    raw, plain = await _raw_and_plain(data)
    assert raw.startswith(f"k8s:enc:aescbc:v1:{last}:".encode()) and plain == b'{"v":"plain-words"}'
    assert base64.b64encode(b"plain-words") not in raw and b"plain-words" not in raw


async def test_rotate_refuses_clearly(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert await asyncio_to_thread(main, ["secrets", "rotate", "--data-dir", str(tmp_path / "none")]) == 1
    assert "no encryption configuration at" in capsys.readouterr().err
    data = tmp_path / "data"
    data.mkdir()
    doc = encryption.default_document()
    doc["resources"][0]["providers"].reverse()  # identity first: encryption off
    encryption.write_document(data / encryption.DEFAULT_FILE, doc)
    assert await asyncio_to_thread(main, ["secrets", "rotate", "--data-dir", str(data)]) == 1
    assert "k8py: cannot rotate: resources[0].providers[0]: identity is first" in capsys.readouterr().err


async def asyncio_to_thread(fn, *args):  # type: ignore[no-untyped-def]
    """`main` runs its own event loop: call it from a thread."""
    import asyncio
    return await asyncio.to_thread(fn, *args)
