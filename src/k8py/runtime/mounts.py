"""Overlay rootfs mounts and their removal.

Invariant: every mount k8py makes has the source name `k8py-overlay`, so leftovers can be
found in /proc/self/mountinfo; unmounting is lazy (MNT_DETACH) so a busy mount never
blocks cleanup.
"""
from __future__ import annotations

import ctypes
import os
import subprocess
from pathlib import Path

SOURCE = "k8py-overlay"


_libc = ctypes.CDLL(None, use_errno=True)
MNT_DETACH = 2


def mount_overlay(lowers: list[str], upper: Path, work: Path, target: Path) -> None:
    """Mount an overlay of `lowers` (top first) with a writable upper at `target`
    (the mount(2) syscall directly: no mount(8) process per container)."""
    opts = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work},index=off"
    if _libc.mount(SOURCE.encode(), str(target).encode(), b"overlay", 0, opts.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount overlay on {target}: {os.strerror(err)}")


def mounts_under(prefix: Path) -> list[str]:
    p = str(prefix).rstrip("/") + "/"
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mp = line.split()[4].replace("\\040", " ")
        if mp.startswith(p) or mp == p.rstrip("/"):
            out.append(mp)
    return out


def k8py_mounts() -> list[str]:
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        parts = line.split()
        sep = parts.index("-")
        if parts[sep + 2] == SOURCE:
            out.append(parts[4])
    return out


def unmount(target: str) -> None:
    if _libc.umount2(target.encode(), MNT_DETACH) != 0:
        subprocess.run(["umount", "-l", target], capture_output=True)


def unmount_all_under(prefix: Path) -> None:
    for mp in sorted(mounts_under(prefix), key=len, reverse=True):
        unmount(mp)
