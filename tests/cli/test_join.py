"""`--join-data-dir`: a second server's data dir takes the first's PKI and encryption config."""

from __future__ import annotations

from pathlib import Path

import pytest

from k8py.apiserver import certs
from k8py.apiserver.encryption import DEFAULT_FILE, ensure_config
from k8py.apiserver.tokens import KEY_FILE
from k8py.cli.join import join


def _first(d: Path) -> Path:
    certs.ensure_pki(d)
    ensure_config(d, None)
    return d


def test_join_copies_the_pki_the_signing_key_and_the_encryption_config(tmp_path: Path) -> None:
    a, b = _first(tmp_path / "a"), tmp_path / "b"
    b.mkdir()
    join(b, a, copy_encryption_config=True)
    for name in ("ca.crt", "ca.key", "admin.crt", "agent-token"):
        assert (b / "pki" / name).read_bytes() == (a / "pki" / name).read_bytes()
    assert (b / "pki" / KEY_FILE).read_bytes() == (a / "pki" / KEY_FILE).read_bytes()  # made for the join
    assert sorted(p.name for p in (b / "pki").iterdir()) == sorted(p.name for p in (a / "pki").iterdir())
    assert (b / DEFAULT_FILE).read_bytes() == (a / DEFAULT_FILE).read_bytes()
    assert (b / "pki").stat().st_mode & 0o777 == 0o700
    join(b, a, copy_encryption_config=True)  # again: they match, nothing to do
    pki = certs.ensure_pki(b)
    assert pki.agent_token == (a / "pki" / "agent-token").read_text().strip()


@pytest.mark.parametrize("case, message", [
    ("no pki", "no PKI there"),
    ("other ca", "a PKI of another CA"),
    ("other encryption", "differs"),
])
def test_join_refuses_what_does_not_match(tmp_path: Path, case: str, message: str) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    b.mkdir()
    a.mkdir()
    if case != "no pki":
        _first(a)
    if case == "other ca":
        certs.ensure_pki(b)
    if case == "other encryption":
        ensure_config(b, None)
    with pytest.raises(ValueError, match=message):
        join(b, a, copy_encryption_config=True)
