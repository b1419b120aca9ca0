"""`k8py secrets rotate`: a fresh encryption key for Secrets at rest.

Run it while the server of that data dir is stopped (the server reads its encryption
configuration when it starts). Steps, each safe to run again if interrupted:
1. the configuration gets a new key FIRST in its encrypting provider (the old keys stay
   after it, so everything still reads);
2. every encrypted value in the store is rewritten (read with whichever key wrote it,
   written with the new one; compare-and-swap, retried on conflict);
   then the store's history is compacted (it held the values written with the old keys;
   SQLite may keep freed pages until it reuses them);
3. unless `--keep-old-keys`, the old keys are dropped from the configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from k8py.store.etcd import EtcdTLS


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="secrets_cmd", required=True)
    r = sub.add_parser("rotate", help="add a new key first, rewrite every Secret with it, drop the old keys "
                                           "(stop the server first)")
    r.add_argument("--data-dir", default="~/.k8py", help="the server's data dir (default ~/.k8py)")
    r.add_argument("--store", default=None,
                   help="store URL, as given to `k8py server` (default: sqlite in the data dir)")
    r.add_argument("--etcd-cafile", default=None, help="etcd over TLS, as given to `k8py server`")
    r.add_argument("--etcd-certfile", default=None, help="etcd over TLS, as given to `k8py server`")
    r.add_argument("--etcd-keyfile", default=None, help="etcd over TLS, as given to `k8py server`")
    r.add_argument("--encryption-provider-config", default=None,
                   help="the configuration file, as given to `k8py server` (default: the data dir's)")
    r.add_argument("--keep-old-keys", action="store_true",
                   help="keep the old keys in the configuration (after the new)")


async def rotate(data_dir: Path, store_url: str | None, config_file: Path, keep_old: bool,
                 etcd_tls: EtcdTLS | None = None) -> str:
    import yaml

    from k8py.apiserver import encryption
    from k8py.store import open_store

    doc = yaml.safe_load(config_file.read_text())
    encryption.parse(doc, str(config_file))  # refuse a broken file before touching anything
    with_new, name = encryption.rotated_document(doc)
    encryption.write_document(config_file, with_new)
    store = open_store(store_url, str(data_dir), etcd_tls=etcd_tls)
    await store.start()
    try:
        n = await encryption.rewrite_all(store, encryption.parse(with_new, str(config_file)))
        await store.compact(await store.current_revision())  # the history held the values under the old keys
    finally:
        await store.close()
    if not keep_old:
        encryption.write_document(config_file, encryption.without_old_keys(with_new))
    return f"rotated to key {name}: {n} values rewritten" + ("" if keep_old else "; old keys dropped")


def main(ns: argparse.Namespace) -> int:
    import os

    from k8py.apiserver.encryption import DEFAULT_FILE, EncryptionConfigError
    from k8py.store.errors import StoreError
    data_dir = Path(os.path.expanduser(ns.data_dir)).resolve()
    config_file = Path(ns.encryption_provider_config or data_dir / DEFAULT_FILE)
    if not config_file.exists():
        print(f"k8py: no encryption configuration at {config_file}", file=sys.stderr)
        return 1
    try:
        tls = None
        if ns.etcd_cafile or ns.etcd_certfile or ns.etcd_keyfile:
            from k8py.store.etcd import EtcdTLS
            tls = EtcdTLS(ns.etcd_cafile, ns.etcd_certfile, ns.etcd_keyfile)
        print(asyncio.run(rotate(data_dir, ns.store, config_file, ns.keep_old_keys, tls)))
    except (OSError, ValueError, EncryptionConfigError, StoreError) as e:
        print(f"k8py: cannot rotate: {e}", file=sys.stderr)
        return 1
    return 0
