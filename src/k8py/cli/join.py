"""A further server of one cluster takes the first server's CA and keys, so every server
serves with the same CA, admin credentials, agent and join tokens and service-account
signing key (one kubeconfig's credentials work against all of them) and reads the
others' Secrets.

`k8py server --join https://ADDR:PORT --token TOKEN` (as k3s's): the token
`K10<sha256 of the CA bundle>::server:<secret>` (the first server's DATA_DIR/token) pins
the CA. `fetch` gets `/cacerts` unverified, checks its hash against the token BEFORE the
secret is sent, then gets `serverbootstrap.PATH` over TLS verified with that CA, with the
secret. `--join-data-dir DIR` copies the files from a data dir on the same machine instead.

Invariants: nothing is half-created: the PKI is written to a temporary directory and
renamed into place, after everything was fetched; a data dir that already has a PKI of
another CA, or an encryption configuration that differs, is refused; every failure is a
one-line ValueError (unreachable server, a CA that does not match the token, a refused
token).
"""

from __future__ import annotations

import base64
import os
import shutil
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any

PKI = "pki"
CA_CERT = "ca.crt"


def join(data_dir: Path, join_dir: Path, *, copy_encryption_config: bool) -> None:
    """Copy `join_dir`'s PKI (and its encryption config) into `data_dir`, or check they match."""
    from k8py.apiserver.encryption import DEFAULT_FILE
    from k8py.apiserver.tokens import TokenIssuer

    src = join_dir / PKI
    if not (src / CA_CERT).exists():
        raise ValueError(f"--join-data-dir {join_dir}: no PKI there (start the first server first)")
    TokenIssuer(src, time.time)._private_key()  # the signing key exists before it is copied (made lazily)
    _copy_pki(src, data_dir / PKI)
    if copy_encryption_config:
        _copy_file(join_dir / DEFAULT_FILE, data_dir / DEFAULT_FILE)


def _copy_pki(src: Path, dst: Path) -> None:
    if (dst / CA_CERT).exists():
        if (dst / CA_CERT).read_bytes() != (src / CA_CERT).read_bytes():
            raise ValueError(f"{dst}: a PKI of another CA is already there; use a fresh --data-dir to join")
        return
    tmp = dst.with_name(dst.name + ".joining")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    os.chmod(tmp, 0o700)
    shutil.rmtree(dst, ignore_errors=True)  # an incomplete PKI without a CA
    os.replace(tmp, dst)


def _copy_file(src: Path, dst: Path) -> None:
    if not src.exists():
        raise ValueError(f"--join-data-dir: {src} is missing (the first server makes it on its first start)")
    if dst.exists():
        if dst.read_bytes() != src.read_bytes():
            raise ValueError(f"{dst} differs from {src}: the servers of one cluster need the same keys")
        return
    tmp = dst.with_name(dst.name + ".joining")
    shutil.copyfile(src, tmp)
    os.chmod(tmp, 0o600)
    os.replace(tmp, dst)


async def fetch(url: str, token_text: str, timeout: float = 10.0) -> dict[str, Any]:
    """The join payload of the server at `url` (see the module doc); ValueError when the
    server is unreachable, its CA does not match the token, or it refuses the token."""
    import aiohttp

    from k8py.apiserver import serverbootstrap

    token = serverbootstrap.parse_token(token_text)
    base = url.rstrip("/")
    if not base.startswith("https://"):
        raise ValueError(f"--join {url}: want https://ADDR:PORT")
    t = aiohttp.ClientTimeout(total=timeout)
    try:
        async with aiohttp.ClientSession(timeout=t) as s:
            async with s.get(base + "/cacerts", ssl=False) as r:
                bundle = await r.read()
            got = serverbootstrap.ca_bundle_hash(bundle)
            if r.status != 200 or not hmac_equal(got, token.ca_hash):
                raise ValueError(f"--join {url}: the server's CA (sha256 {got}) is not the one the token pins "
                                 f"({token.ca_hash}): refusing to send the token")
            ctx = ssl.create_default_context(cadata=bundle.decode())
            async with s.get(base + serverbootstrap.PATH, ssl=ctx,
                             headers={"Authorization": f"Bearer {token.secret}"}) as r:
                if r.status != 200:
                    raise ValueError(f"--join {url}: the server refused the join token ({r.status})")
                body = await r.json()
    except (aiohttp.ClientError, TimeoutError, ssl.SSLError, UnicodeDecodeError) as e:
        raise ValueError(f"--join {url}: cannot join: {type(e).__name__}: {e}".rstrip(": ")) from None
    if not isinstance(body, dict) or not isinstance(body.get("pki"), dict) or CA_CERT not in body["pki"]:
        raise ValueError(f"--join {url}: the server's answer holds no PKI")
    return body


def already_joined(data_dir: Path, token_text: str) -> bool:
    """True when `data_dir` has the PKI of the CA the token pins (a restart of a joined server:
    nothing to fetch); ValueError when it has another CA's; False when it has none."""
    from k8py.apiserver import serverbootstrap

    token = serverbootstrap.parse_token(token_text)
    ca = data_dir / PKI / CA_CERT
    if not ca.exists():
        return False
    if not hmac_equal(serverbootstrap.ca_bundle_hash(ca.read_bytes()), token.ca_hash):
        raise ValueError(f"{data_dir}: a PKI of another CA is already there; use a fresh --data-dir to join")
    return True


def hmac_equal(a: str, b: str) -> bool:
    import hmac
    return hmac.compare_digest(a.encode(), b.encode())


def install(data_dir: Path, body: dict[str, Any], *, copy_encryption_config: bool) -> None:
    """Write a fetched payload into `data_dir` (made 0700 if missing), as `join` copies files."""
    from k8py.apiserver.encryption import DEFAULT_FILE

    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".join-") as tmp:
        src = Path(tmp) / PKI
        src.mkdir(mode=0o700)
        for name, data in body["pki"].items():
            if "/" in name or name.startswith("."):
                raise ValueError(f"--join: the server sent a bad file name {name!r}")
            fd = os.open(src / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(base64.b64decode(data))
        enc = Path(tmp) / DEFAULT_FILE
        enc.write_bytes(base64.b64decode(body.get("encryptionConfig") or ""))
        if copy_encryption_config:
            _check_same(enc, data_dir / DEFAULT_FILE)
        _copy_pki(src, data_dir / PKI)
        if copy_encryption_config:
            _copy_file(enc, data_dir / DEFAULT_FILE)


def _check_same(src: Path, dst: Path) -> None:
    """Refuse before anything is written when the data dir keeps another encryption config."""
    if dst.exists() and dst.read_bytes() != src.read_bytes():
        raise ValueError(f"{dst} differs from the cluster's: the servers of one cluster need the same keys")
