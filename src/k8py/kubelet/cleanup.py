"""Remove what the node agent itself left on this machine (for `k8py reset`): pod
directories under the kubelet root (unmounting their tmpfs emptyDirs first) and the
pod log directories of k8py pods. Containers, sandboxes and links are the runtime's and
the network's cleanups. Invariant: only `<root>/pods/*` and `<log_root>/<ns>_<name>_<uid>`
directories are removed; PersistentVolume data (`/var/lib/k8py/storage`) is kept.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

_POD_LOG_DIR = re.compile(r"^[a-z0-9-]+_[a-z0-9.-]+_[0-9a-f-]{36}$")


def cleanup(root: str | Path = "/var/lib/k8py/kubelet", log_root: str | Path = "/var/log/pods") -> list[str]:
    """Returns what could not be removed."""
    left: list[str] = []
    pods = Path(root) / "pods"
    try:
        with open("/proc/self/mountinfo") as f:
            mps = [line.split()[4] for line in f]
    except OSError:
        mps = []
    for mp in sorted((m for m in mps if m.startswith(str(pods) + "/")), key=len, reverse=True):
        r = subprocess.run(["umount", "-l", mp], capture_output=True, text=True)
        if r.returncode != 0:
            left.append(f"mount {mp}: {r.stderr.strip()}")
    shutil.rmtree(pods, ignore_errors=True)
    if pods.exists():
        left.append(str(pods))
    logs = Path(log_root)
    if logs.is_dir():
        for d in logs.iterdir():
            if d.is_dir() and _POD_LOG_DIR.match(d.name):
                shutil.rmtree(d, ignore_errors=True)
    return left
