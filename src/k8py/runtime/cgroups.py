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


def _read_int(p: Path) -> int | None:
    try:
        return int(p.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def usage(cgroups_path: str) -> tuple[int, int, int] | None:
    """(cpu ns, memory working set, memory usage) of a cgroup, or None if it is gone."""
    rel = cgroups_path.strip("/")
    mem = Path(memory_dir(cgroups_path))
    v1 = (mem / "memory.usage_in_bytes").exists()
    if v1:
        used = _read_int(mem / "memory.usage_in_bytes")
        stat_file, inactive_key = mem / "memory.stat", "total_inactive_file"
        cpu = None
        for name in ("cpuacct", "cpu,cpuacct"):
            cpu = cpu if cpu is not None else _read_int(CGROUP_ROOT / name / rel / "cpuacct.usage")
    else:
        used = _read_int(mem / "memory.current")
        stat_file, inactive_key = mem / "memory.stat", "inactive_file"
        cpu = None
        try:
            for line in (CGROUP_ROOT / rel / "cpu.stat").read_text().splitlines():
                if line.startswith("usage_usec "):
                    cpu = int(line.split()[1]) * 1000
        except OSError:
            pass
    if used is None:
        return None
    inactive = 0
    try:
        for line in stat_file.read_text().splitlines():
            k, _, v = line.partition(" ")
            if k == inactive_key:
                inactive = int(v)
    except (OSError, ValueError):
        pass
    return cpu or 0, max(0, used - inactive), used


def configured(cgroups_path: str) -> tuple[int, int, int, int] | None:
    """(memory limit bytes, CFS quota us, CFS period us, cpu shares) as the kernel holds them
    (a quota of -1 or a limit near 2**63: unlimited), or None if the cgroup is gone."""
    rel = cgroups_path.strip("/")
    mem = Path(memory_dir(cgroups_path))
    cpu = Path(cpu_dir(cgroups_path))
    if (mem / "memory.limit_in_bytes").exists():  # v1
        limit = _read_int(mem / "memory.limit_in_bytes")
        quota, period = _read_int(cpu / "cpu.cfs_quota_us"), _read_int(cpu / "cpu.cfs_period_us")
        shares = _read_int(cpu / "cpu.shares")
        if limit is None or quota is None or period is None or shares is None:
            return None
        return limit, quota, period, shares
    try:  # v2: memory.max, cpu.max "quota period", cpu.weight
        raw = (CGROUP_ROOT / rel / "memory.max").read_text().strip()
        q, per = (CGROUP_ROOT / rel / "cpu.max").read_text().split()
        weight = int((CGROUP_ROOT / rel / "cpu.weight").read_text().strip())
    except (OSError, ValueError):
        return None
    shares = 2 + ((weight - 1) * 262142) // 9999  # inverse of runc's shares -> weight
    return (2**63 - 1 if raw == "max" else int(raw)), (-1 if q == "max" else int(q)), int(per), shares


def pids_dir(rel: str) -> Path:
    """The pids cgroup directory of `rel` (v1 pids hierarchy, else v2)."""
    v1 = CGROUP_ROOT / "pids"
    return (v1 if (v1 / "cgroup.procs").exists() else CGROUP_ROOT) / rel.strip("/")


def pids_available() -> bool:
    """Whether this host has the pids controller (a v1 pids hierarchy, or v2 offering it)."""
    if (CGROUP_ROOT / "pids" / "cgroup.procs").exists():
        return True
    try:
        return "pids" in (CGROUP_ROOT / "cgroup.controllers").read_text().split()
    except OSError:
        return False


def set_pod_pids_limit(rel: str, limit: int) -> Path:
    """Create the pod's cgroup `rel` in the pids hierarchy (runc later makes its containers'
    cgroups inside it) and write `limit` into its pids.max: every process of every container
    of the pod counts against it, and fork beyond it fails with EAGAIN. On v2 the pids
    controller is first enabled in the ancestors' cgroup.subtree_control. Idempotent."""
    d = pids_dir(rel)
    if not (CGROUP_ROOT / "pids" / "cgroup.procs").exists():  # v2
        cur = CGROUP_ROOT
        for part in Path(rel.strip("/")).parts:
            ctl = cur / "cgroup.subtree_control"
            if "pids" not in ctl.read_text().split():
                ctl.write_text("+pids")
            cur = cur / part
            cur.mkdir(exist_ok=True)
    d.mkdir(parents=True, exist_ok=True)
    (d / "pids.max").write_text(str(limit))
    return d


def pids(rel: str) -> tuple[int, int] | None:
    """(pids.current, pids.max with "max" as -1) of a cgroup, or None if it is gone."""
    d = pids_dir(rel)
    try:
        cur = int((d / "pids.current").read_text().strip())
        raw = (d / "pids.max").read_text().strip()
    except (OSError, ValueError):
        return None
    return cur, (-1 if raw == "max" else int(raw))
