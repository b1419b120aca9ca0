"""Remove everything the runc runtime created on this machine (for `k8py reset`).

`cleanup()` kills and deletes every runc container under the state dir's runc root,
removes sandboxes and their network namespaces, unmounts k8py overlays under the state
and data dirs, removes the k8py cgroup tree, the state dir and the containers' writable layers.
Invariant: it touches only what carries its own names (the given dirs, the cgroup parent,
netns named `<prefix><8 hex>-<6 hex>` as sandbox.py makes them), so runtimes with other
dirs/prefixes (parallel test sessions) are left alone. Pulled images are kept.
"""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from pathlib import Path

from k8py.runtime import cgroups, mounts
from k8py.runtime.sandbox import NETNS_DIR, delete_netns


async def cleanup(state_dir: str | Path = "/run/k8py", data_dir: str | Path = "/var/lib/k8py",
                  cgroup_parent: str = "k8py", netns_prefix: str = "k8py-") -> list[str]:
    """Returns what could not be removed (empty when all is gone)."""
    from k8py.runtime.runc import RuncRuntime

    state, data = Path(state_dir), Path(data_dir)
    if state.exists():
        rt = RuncRuntime(state, data, cgroup_parent=cgroup_parent, netns_prefix=netns_prefix)
        try:
            await rt.cleanup()
        finally:
            await rt.close()
        root = state / "runc"
        r = subprocess.run(["runc", "--root", str(root), "list", "-q"], capture_output=True, text=True)
        for name in r.stdout.split():
            subprocess.run(["runc", "--root", str(root), "kill", "--all", name, "KILL"], capture_output=True)
            subprocess.run(["runc", "--root", str(root), "delete", "--force", name], capture_output=True)
    for d in (state, data / "containers"):
        if d.exists():
            mounts.unmount_all_under(d)
    pattern = re.compile(re.escape(netns_prefix) + r"[0-9a-f]{8}-[0-9a-f]{6}$")
    if NETNS_DIR.exists():
        for name in os.listdir(NETNS_DIR):
            if pattern.match(name):
                await delete_netns(name)
    left = cgroups.remove_tree(cgroup_parent)
    for d in (state, data / "containers"):
        if d.exists() and not mounts.mounts_under(d):
            shutil.rmtree(d, ignore_errors=True)
    return left + mounts.mounts_under(state) + mounts.mounts_under(data / "containers")


def main() -> int:
    left = asyncio.run(cleanup())
    for x in left:
        print(f"left: {x}")
    return 1 if left else 0
