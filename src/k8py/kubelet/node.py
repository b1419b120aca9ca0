"""The Node object a real agent registers: capacity from the machine, allocatable after
reservations, conditions from memory/disk/PID pressure, nodeInfo, addresses.

Capacity: cpu = CPUs this process may use (affinity, capped by a cgroup CPU quota);
memory = MemTotal; ephemeral-storage = size of the filesystem holding the agent's
root dir; pods = 110. Allocatable = capacity - system-reserved (100m CPU, 256Mi)
- the hard eviction threshold (memory.available < 100Mi), as the kubelet computes it.
Invariant: reading the machine never raises; missing facts fall back to safe values.
"""

from __future__ import annotations

import hashlib
import os
import platform
import socket
from dataclasses import dataclass
from pathlib import Path

from k8py import KUBERNETES_VERSION
from k8py.api.quantity import format_quantity, parse_quantity
from k8py.api.types import Obj
from k8py.api.wellknown import (
    LABEL_ARCH_BETA,
    LABEL_ARCH_STABLE,
    LABEL_HOSTNAME,
    LABEL_OS_BETA,
    LABEL_OS_STABLE,
)
from k8py.clock import RealClock
from k8py.kubelet.eviction import (
    DEFAULT_EVICTION_HARD,
    MEMORY,
    NODEFS,
    PIDS,
    EvictionManager,
    NodeStats,
    Observed,
    parse_thresholds,
)

KUBELET_VERSION = f"{KUBERNETES_VERSION}-k8py"
EVICTION_MEMORY = "100Mi"


def cpu_count() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    for path in ("/sys/fs/cgroup/cpu.max",):
        try:
            quota, period = Path(path).read_text().split()
            if quota != "max":
                n = min(n, max(1, int(int(quota) // int(period))))
        except (OSError, ValueError):
            pass
    try:
        q = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        p = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        if q > 0:
            n = min(n, max(1, q // p))
    except (OSError, ValueError):
        pass
    return n


def meminfo() -> dict[str, int]:
    out = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            k, _, v = line.partition(":")
            parts = v.split()
            if parts:
                out[k] = int(parts[0]) * (1024 if len(parts) > 1 else 1)
    except (OSError, ValueError):
        pass
    return out


def disk(path: str | Path) -> tuple[int, int]:
    """(total, available) bytes of the filesystem holding path."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        st = os.statvfs(p)
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
    except OSError:
        return 0, 0


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


def arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def node_signals(root_dir: str) -> dict[str, Observed]:
    """The eviction signals of this machine: memory.available (MemAvailable of MemTotal),
    nodefs.available (the filesystem of `root_dir`), pid.available (pid_max less the
    processes running). A signal that cannot be read is left out."""
    out: dict[str, Observed] = {}
    mi = meminfo()
    if "MemAvailable" in mi and "MemTotal" in mi:
        out[MEMORY] = Observed(mi["MemAvailable"], mi["MemTotal"])
    total, avail = disk(root_dir)
    if total > 0:
        out[NODEFS] = Observed(avail, total)
    try:
        pid_max = int(_read("/proc/sys/kernel/pid_max"))
        out[PIDS] = Observed(pid_max - sum(1 for p in os.listdir("/proc") if p.isdigit()), pid_max)
    except (OSError, ValueError):
        pass
    return out


@dataclass
class NodeFacts:
    name: str
    root_dir: str
    runtime_version: str = "runc://1.1"
    system_reserved_cpu: str = "100m"
    system_reserved_memory: str = "256Mi"
    max_pods: int = 110
    eviction: EvictionManager | None = None  # the thresholds behind the pressure conditions (default: Kubernetes')

    def capacity(self) -> dict[str, str]:
        mem = meminfo().get("MemTotal", 0)
        total, _ = disk(self.root_dir)
        return {"cpu": str(cpu_count()), "memory": f"{mem // 1024}Ki",
                "ephemeral-storage": f"{total // 1024}Ki", "pods": str(self.max_pods)}

    def allocatable(self, cap: dict[str, str]) -> dict[str, str]:
        cpu = parse_quantity(cap["cpu"]) - parse_quantity(self.system_reserved_cpu)
        mem = parse_quantity(cap["memory"]) - parse_quantity(self.system_reserved_memory) \
            - parse_quantity(EVICTION_MEMORY)
        eph = parse_quantity(cap["ephemeral-storage"]) * 9 // 10  # nodefs.available<10%
        return {"cpu": format_quantity(max(cpu, parse_quantity("100m"))),
                "memory": f"{max(int(mem), 0) // 1024}Ki",
                "ephemeral-storage": str(int(eph)), "pods": cap["pods"]}

    def conditions(self, now: str, old: list[Obj]) -> list[Obj]:
        prev = {c.get("type"): c for c in old or []}
        if self.eviction is None:
            self.eviction = EvictionManager(parse_thresholds(DEFAULT_EVICTION_HARD), RealClock())
        pressure = self.eviction.synchronize(NodeStats(node_signals(self.root_dir)), []).conditions
        mem_pressure, disk_pressure = pressure["MemoryPressure"], pressure["DiskPressure"]
        pid_p = pressure["PIDPressure"]

        def cond(t: str, bad: bool, ok_reason: str, ok_msg: str, bad_reason: str, bad_msg: str) -> Obj:
            status = "True" if bad else "False"
            p = prev.get(t)
            trans = p.get("lastTransitionTime", now) if p and p.get("status") == status else now
            return {"type": t, "status": status, "lastHeartbeatTime": now, "lastTransitionTime": trans,
                    "reason": bad_reason if bad else ok_reason, "message": bad_msg if bad else ok_msg}

        out = [
            cond("MemoryPressure", mem_pressure,
                 "KubeletHasSufficientMemory", "kubelet has sufficient memory available",
                 "KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
            cond("DiskPressure", disk_pressure, "KubeletHasNoDiskPressure", "kubelet has no disk pressure",
                 "KubeletHasDiskPressure", "kubelet has disk pressure"),
            cond("PIDPressure", pid_p, "KubeletHasSufficientPID", "kubelet has sufficient PID available",
                 "KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
        ]
        r = cond("Ready", False, "", "", "", "")
        r.update({"status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"})
        p = prev.get("Ready")
        r["lastTransitionTime"] = p.get("lastTransitionTime", now) if p and p.get("status") == "True" else now
        out.append(r)
        return out

    def node_info(self) -> Obj:
        machine_id = _read("/etc/machine-id") or hashlib.sha256(self.name.encode()).hexdigest()[:32]
        u = os.uname()
        sysuuid = _read("/sys/class/dmi/id/product_uuid") or (
            f"{machine_id[:8]}-{machine_id[8:12]}-{machine_id[12:16]}-{machine_id[16:20]}-{machine_id[20:32]}")
        return {"machineID": machine_id, "systemUUID": sysuuid,
                "bootID": _read("/proc/sys/kernel/random/boot_id"), "kernelVersion": u.release,
                "osImage": os_image(), "containerRuntimeVersion": self.runtime_version,
                "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux", "architecture": arch()}

    def labels(self) -> dict[str, str]:
        a = arch()
        return {LABEL_HOSTNAME: self.name, LABEL_OS_STABLE: "linux", LABEL_ARCH_STABLE: a,
                LABEL_OS_BETA: "linux", LABEL_ARCH_BETA: a}

    def addresses(self, node_ip: str) -> list[Obj]:
        out = []
        if node_ip:
            out.append({"type": "InternalIP", "address": node_ip})
        out.append({"type": "Hostname", "address": socket.gethostname() if self.name == default_node_name()
                    else self.name})
        return out


def default_node_name() -> str:
    return socket.gethostname().lower()
