"""`k8py reset`: remove what k8py left on this machine.

Each package that creates machine state (network namespaces, nftables tables,
runc containers, mounts, cgroups) exposes a `cleanup()` (sync or async) that
removes everything named with the k8py prefix; reset calls every one of them
that exists (`CLEANUPS`), then removes the data dir when asked. Invariants: a
missing or failing package never stops the others; the data dir is removed only
when it looks like a k8py data dir (it holds `pki/` or `kubeconfig`).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Modules, in teardown order, whose `cleanup()` reset calls. A module may also be a package
# exposing `cleanup` as an attribute. Add yours here.
CLEANUPS: tuple[str, ...] = ("k8py.nodehost.cleanup", "k8py.runtime.cleanup", "k8py.kubelet.cleanup",
                              "k8py.proxy.cleanup", "k8py.netpol.cleanup", "k8py.network.cleanup")


def _find(modname: str) -> Callable[[], Any] | None:
    try:
        mod = importlib.import_module(modname)
    except ImportError:
        parent, _, attr = modname.rpartition(".")
        try:
            mod = importlib.import_module(parent)
        except ImportError:
            return None
        fn = getattr(mod, attr, None)
        return fn if callable(fn) else None
    fn = getattr(mod, "cleanup", None)
    return fn if callable(fn) else None


def run_cleanups(say: Callable[[str], None]) -> int:
    """Call each cleanup; return how many failed."""
    failed = 0
    for name in CLEANUPS:
        fn = _find(name)
        if fn is None:
            continue
        try:
            r = fn()
            if inspect.iscoroutine(r):  # an async cleanup()
                asyncio.run(r)
            say(f"k8py reset: {name} done")
        except Exception as e:  # noqa: BLE001 - report and go on with the others
            failed += 1
            print(f"k8py reset: {name} failed: {e}", file=sys.stderr)
    return failed


def remove_data_dir(path: str, say: Callable[[str], None]) -> bool:
    d = Path(os.path.expanduser(path)).resolve()
    if not d.exists():
        return True
    if not ((d / "pki").exists() or (d / "kubeconfig").exists()):
        print(f"k8py reset: {d} does not look like a k8py data dir; left alone", file=sys.stderr)
        return False
    shutil.rmtree(d)
    say(f"k8py reset: removed {d}")
    return True


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=None, help="also remove this data dir (store, PKI, kubeconfig)")
    p.add_argument("--quiet", action="store_true", help="print only errors")


def main(ns: argparse.Namespace) -> int:
    def say(msg: str) -> None:
        if not ns.quiet:
            print(msg)
    failed = run_cleanups(say)
    ok = True
    if ns.data_dir:
        ok = remove_data_dir(ns.data_dir, say)
    return 0 if failed == 0 and ok else 1
