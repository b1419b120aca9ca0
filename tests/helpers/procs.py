"""The processes of a `k8py server --components processes`, by component, from /proc."""

from __future__ import annotations

from pathlib import Path

COMPONENTS = ("kube-apiserver", "kube-scheduler", "kube-controller-manager", "kubelet")


def component_pids(server_pid: int) -> dict[str, int]:
    """The server's child processes by component: {"kube-scheduler": pid, ...}."""
    out: dict[str, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (d / "cmdline").read_bytes().replace(b"\0", b" ").split()  # argv, or its setproctitle title
        except (OSError, IndexError, ValueError):
            continue
        if ppid == server_pid:
            for name in COMPONENTS:
                if name.encode() in argv:
                    out[name] = int(d.name)
    return out
