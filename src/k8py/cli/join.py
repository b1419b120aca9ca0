"""`k8py server --join-data-dir DIR`: a further server of one cluster takes the PKI and the
encryption configuration of a first server's data dir, so both serve with the same CA,
admin credentials, agent token and service-account signing key (one kubeconfig's
credentials work against either), and read each other's Secrets.

The simplest honest way on one machine (or a shared file system): the files are copied
on the first start of the new data dir. A token-authenticated join over HTTPS (k3s's
`--token`) is not built.

Invariants: nothing is half-created: the PKI is copied to a temporary directory and
renamed into place; a data dir that already has a PKI of another CA, or an encryption
configuration that differs, is refused with a one-line error (ValueError).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

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
