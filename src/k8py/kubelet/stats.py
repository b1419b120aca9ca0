"""The kubelet's Summary API (`/stats/summary`, stats/v1alpha1's shape): cumulative CPU
time and memory working set of the node and of every running pod and container.

Containers: the runtime's `container_stats` (their cgroups: cgroup v2 `cpu.stat`
usage_usec, `memory.current` minus `inactive_file`; v1 `cpuacct.usage`,
`memory.usage_in_bytes` minus `total_inactive_file`, as the kubelet/cAdvisor compute the
working set). A pod is the sum of its running containers. The node: CPU time from
/proc/stat (all CPUs, busy jiffies), memory working set MemTotal - MemAvailable.
Invariants: only cumulative counters are reported (`usageCoreNanoSeconds`); rates are
the consumer's business (the API server's metrics.k8s.io takes two samples, as
metrics-server does); a container that exits between listing and reading is skipped.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from k8py.api.types import Obj
from k8py.clock import rfc3339
from k8py.runtime.protocol import ContainerRuntime, ContainerState, SandboxState


def _node_cpu_ns(proc: Path) -> int:
    """Busy CPU time of all CPUs (user+nice+system+irq+softirq+steal), in ns."""
    try:
        fields = (proc / "stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return 0
    v = [int(x) for x in fields]
    busy = sum(v[i] for i in (0, 1, 2, 5, 6, 7) if i < len(v))
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return busy * 1_000_000_000 // hz


def _node_memory(proc: Path) -> tuple[int, int]:
    """(working set, usage) of the node in bytes: MemTotal - MemAvailable, MemTotal - MemFree."""
    info: dict[str, int] = {}
    try:
        for line in (proc / "meminfo").read_text().splitlines():
            k, _, rest = line.partition(":")
            info[k] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return 0, 0
    total = info.get("MemTotal", 0)
    return max(0, total - info.get("MemAvailable", 0)), max(0, total - info.get("MemFree", 0))


def _usage(t: float, cpu_ns: int, ws: int, used: int) -> tuple[Obj, Obj]:
    ts = rfc3339(t)
    return ({"time": ts, "usageCoreNanoSeconds": cpu_ns},
            {"time": ts, "workingSetBytes": ws, "usageBytes": used})


async def summary(runtime: ContainerRuntime, node_name: str, proc: Path = Path("/proc")) -> Obj:
    """The node's Summary: {"node": {...}, "pods": [...]} (kubelet stats/v1alpha1 fields)."""
    now = time.time()
    ws, used = _node_memory(proc)
    ncpu, nmem = _usage(now, _node_cpu_ns(proc), ws, used)
    pods: list[Obj] = []
    sandboxes = {s.id: s for s in await runtime.list_pod_sandboxes() if s.state == SandboxState.READY}
    by_sandbox: dict[str, list[Obj]] = {}
    totals: dict[str, list[int]] = {}
    for c in await runtime.list_containers():
        if c.sandbox_id not in sandboxes or c.state != ContainerState.RUNNING:
            continue
        st = await runtime.container_stats(c.id)
        if st is None:
            continue
        cpu, mem = _usage(st.timestamp, st.cpu_usage_ns, st.memory_working_set_bytes, st.memory_usage_bytes)
        by_sandbox.setdefault(c.sandbox_id, []).append(
            {"name": c.name, "startTime": rfc3339(c.started_at or c.created_at), "cpu": cpu, "memory": mem})
        tot = totals.setdefault(c.sandbox_id, [0, 0, 0])
        tot[0] += st.cpu_usage_ns
        tot[1] += st.memory_working_set_bytes
        tot[2] += st.memory_usage_bytes
    for sid, containers in by_sandbox.items():
        sb = sandboxes[sid]
        cpu, mem = _usage(now, *totals[sid])
        pods.append({"podRef": {"name": sb.name, "namespace": sb.namespace, "uid": sb.uid},
                     "startTime": rfc3339(sb.created_at), "containers": containers, "cpu": cpu, "memory": mem})
    return {"node": {"nodeName": node_name, "cpu": ncpu, "memory": nmem}, "pods": pods}
