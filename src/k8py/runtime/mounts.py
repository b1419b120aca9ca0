"""Overlay rootfs mounts and their removal.

Invariant: every mount k8py makes has the source name `k8py-overlay`, so leftovers can be
found in /proc/self/mountinfo; unmounting is lazy (MNT_DETACH) so a busy mount never
blocks cleanup.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

SOURCE = "k8py-overlay"


def mount_overlay(lowers: list[str], upper: Path, work: Path, target: Path) -> None:
    """Mount an overlay of `lowers` (top first) with a writable upper at `target`."""
    if len(lowers) == 1:  # overlay needs two layers when there is an upper: fine with one lower
        pass
    opts = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work},index=off"
    r = subprocess.run(["mount", "-t", "overlay", SOURCE, "-o", opts, str(target)], capture_output=True, text=True)
    if r.returncode != 0:
        raise OSError(f"mount overlay on {target}: {r.stderr.strip()}")


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
    subprocess.run(["umount", "-l", target], capture_output=True)


def unmount_all_under(prefix: Path) -> None:
    for mp in sorted(mounts_under(prefix), key=len, reverse=True):
        unmount(mp)
