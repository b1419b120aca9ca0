"""cgroup paths of k8py containers (cgroup v1 hierarchies, hybrid hosts, or v2).

runc creates `/<parent>/<pod-uid>/<container-id>` in every v1 hierarchy; it removes only
the leaf, so the pod and parent directories are removed here, deepest first.
Invariant: remove_tree only rmdirs (never writes), so it cannot harm live processes: a
cgroup that still has tasks stays and is reported.
"""
from __future__ import annotations

import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def hierarchies() -> list[Path]:
    """Mount points of every cgroup hierarchy (v1 controllers, named, unified)."""
    out: list[Path] = []
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            parts = line.split()
            sep = parts.index("-")
            if parts[sep + 1] in ("cgroup", "cgroup2"):
                out.append(Path(parts[4]))
    except (OSError, ValueError):
        pass
    return out


def memory_dir(cgroups_path: str) -> str:
    """The memory cgroup directory of a container (v1 memory hierarchy, else v2)."""
    rel = cgroups_path.strip("/")
    v1 = CGROUP_ROOT / "memory"
    if (v1 / "memory.limit_in_bytes").exists():
        return str(v1 / rel)
    return str(CGROUP_ROOT / rel)


def cpu_dir(cgroups_path: str) -> str:
    rel = cgroups_path.strip("/")
    for name in ("cpu,cpuacct", "cpu"):
        if (CGROUP_ROOT / name / "cpu.cfs_quota_us").exists():
            return str(CGROUP_ROOT / name / rel)
    return str(CGROUP_ROOT / rel)


def has_memsw() -> bool:
    return (CGROUP_ROOT / "memory" / "memory.memsw.limit_in_bytes").exists()


def remove_tree(rel: str) -> list[str]:
    """rmdir `rel` (and its sub-cgroups) in every hierarchy; returns paths left behind."""
    rel = rel.strip("/")
    if not rel:
        raise ValueError("refusing to remove the cgroup root")
    left: list[str] = []
    for h in set(hierarchies()):
        top = h / rel
        if not top.is_dir():
            continue
        dirs = [Path(dp) for dp, _dn, _fn in os.walk(top)]
        for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
            try:
                d.rmdir()
            except OSError:
                left.append(str(d))
    return left


def existing(rel: str) -> list[str]:
    rel = rel.strip("/")
    return [str(h / rel) for h in set(hierarchies()) if (h / rel).is_dir()]
