"""OCI runtime spec (config.json) for one container: a pure function of its inputs.

Kubernetes semantics for the process: `command` replaces the image ENTRYPOINT (and drops
its CMD), `args` replaces CMD; env is the image's Env overridden by the container's;
cwd is workingDir, else the image WorkingDir, else /; the user is runAsUser/runAsGroup,
else the image User (names resolved from the rootfs /etc/passwd and /etc/group).
Resources map as the kubelet does with cgroup v1: memory limit -> memory.limit_in_bytes,
CPU limit -> CFS quota over a 100 ms period, CPU request -> shares (1024 per core, min 2).
Capabilities default to Docker's/containerd's set; privileged gets all and no masks.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from k8py.api.wellknown import LABEL_KUBERNETES_CONTAINER_NAME
from k8py.runtime.errors import CreateContainerError
from k8py.runtime.protocol import ContainerConfig

DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
ALL_CAPS = DEFAULT_CAPS + [
    "CAP_DAC_READ_SEARCH", "CAP_LINUX_IMMUTABLE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_LEASE",
    "CAP_AUDIT_CONTROL", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
]
MASKED_PATHS = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware", "/sys/devices/virtual/powercap"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
CPU_PERIOD = 100_000


def nofile_limit() -> int:
    """Docker's 1048576 open files, capped by fs.nr_open and by our own hard limit
    (raising it needs CAP_SYS_RESOURCE, which a nested k8py may lack)."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    limit = 1048576 if hard == resource.RLIM_INFINITY else min(1048576, hard)
    try:
        with open("/proc/sys/fs/nr_open") as f:
            return min(limit, int(f.read()))
    except (OSError, ValueError):
        return limit


def normalize_cap(c: str) -> str:
    c = c.upper()
    return c if c.startswith("CAP_") else "CAP_" + c


# capability numbers (linux/capability.h), to read our own bounding set
CAP_NUMBERS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]


def bounding_set() -> set[str] | None:
    """The capabilities this process may grant (a nested k8py may lack some); None if unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    mask = int(line.split()[1], 16)
                    return {name for i, name in enumerate(CAP_NUMBERS) if mask >> i & 1}
    except (OSError, ValueError):
        pass
    return None


def capabilities(config: ContainerConfig) -> list[str]:
    """The requested set, limited to what this process holds (runc cannot grant more)."""
    caps = _requested_caps(config)
    have = bounding_set()
    return caps if have is None else [c for c in caps if c in have]


def _requested_caps(config: ContainerConfig) -> list[str]:
    if config.privileged:
        return list(ALL_CAPS)
    drop = {normalize_cap(c) for c in config.cap_drop}
    caps = [] if "CAP_ALL" in drop else [c for c in DEFAULT_CAPS if c not in drop]
    add = {normalize_cap(c) for c in config.cap_add}
    if "CAP_ALL" in add:
        return list(ALL_CAPS)
    return caps + sorted(a for a in add if a not in caps)


def process_args(config: ContainerConfig, image_cfg: dict[str, Any]) -> list[str]:
    if config.command:
        args = list(config.command) + list(config.args or [])
    else:
        cmd = config.args if config.args is not None else (image_cfg.get("Cmd") or [])
        args = list(image_cfg.get("Entrypoint") or []) + list(cmd)
    if not args:
        raise CreateContainerError("no command specified")
    return args


def merge_env(image_env: list[str], env: list[tuple[str, str]], hostname: str) -> list[str]:
    out: dict[str, str] = {}
    for e in image_env:
        k, _, v = e.partition("=")
        out[k] = v
    out.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if hostname:
        out.setdefault("HOSTNAME", hostname)
    for k, v in env:
        out[k] = v
    return [f"{k}={v}" for k, v in out.items()]


def _read_db(path: Path) -> list[list[str]]:
    try:
        return [line.split(":") for line in path.read_text(errors="replace").splitlines() if line and line[0] != "#"]
    except OSError:
        return []


def resolve_user(user: str, rootfs: Path, run_as_user: int | None = None,
                 run_as_group: int | None = None) -> tuple[int, int, list[int]]:
    """(uid, gid, additional gids) for an image `User` string and securityContext overrides."""
    passwd = _read_db(rootfs / "etc/passwd")
    group = _read_db(rootfs / "etc/group")
    name, _, grp = (user or "").partition(":")
    uid, gid = 0, 0
    uname = ""
    if name:
        if name.isdigit():
            uid = int(name)
            for p in passwd:
                if len(p) > 3 and p[2] == name:
                    gid, uname = int(p[3]), p[0]
                    break
        else:
            for p in passwd:
                if len(p) > 3 and p[0] == name:
                    uid, gid, uname = int(p[2]), int(p[3]), name
                    break
            else:
                raise CreateContainerError(f'unable to find user {name}: no matching entries in passwd file')
    if run_as_user is not None:
        uid = run_as_user
        gid = 0
        uname = ""
        for p in passwd:
            if len(p) > 3 and p[2] == str(uid):
                gid, uname = int(p[3]), p[0]
                break
    if grp:
        if grp.isdigit():
            gid = int(grp)
        else:
            for g in group:
                if len(g) > 2 and g[0] == grp:
                    gid = int(g[2])
                    break
            else:
                raise CreateContainerError(f"unable to find group {grp}: no matching entries in group file")
    if run_as_group is not None:
        gid = run_as_group
    extra = sorted({int(g[2]) for g in group if len(g) > 3 and uname and uname in g[3].split(",")
                    and g[2].isdigit() and int(g[2]) != gid})
    return uid, gid, extra


def build_spec(*, config: ContainerConfig, image_cfg: dict[str, Any], rootfs: Path, hostname: str,
               netns_path: str, sandbox_dir: Path, cgroups_path: str,
               memory_swap: bool = False, shared_ns: dict[str, str] | None = None) -> dict[str, Any]:
    shared_ns = shared_ns or {}
    args = process_args(config, image_cfg)
    uid, gid, extra_gids = resolve_user(image_cfg.get("User", ""), rootfs, config.run_as_user, config.run_as_group)
    caps = capabilities(config)
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev"] + ([] if config.privileged else ["ro"])},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime"] + ([] if config.privileged else ["ro"])},
    ]
    for f in ("hosts", "hostname", "resolv.conf"):
        if (sandbox_dir / f).exists() and not any(m.container_path == f"/etc/{f}" for m in config.mounts):
            mounts.append({"destination": f"/etc/{f}", "type": "bind", "source": str(sandbox_dir / f),
                           "options": ["rbind", "rprivate"]})
    for m in config.mounts:
        mounts.append({"destination": m.container_path, "type": "bind", "source": m.host_path,
                       "options": ["rbind", "rprivate"] + (["ro"] if m.read_only else ["rw"])})
    resources: dict[str, Any] = {"devices": [{"allow": config.privileged, "access": "rwm"}]}
    if config.memory_limit_bytes > 0:
        resources["memory"] = {"limit": config.memory_limit_bytes}
        if memory_swap:
            resources["memory"]["swap"] = config.memory_limit_bytes
    cpu: dict[str, Any] = {}
    if config.cpu_limit_millis > 0:
        cpu["period"] = CPU_PERIOD
        cpu["quota"] = max(1000, config.cpu_limit_millis * CPU_PERIOD // 1000)
    shares_m = config.cpu_request_millis or config.cpu_limit_millis
    cpu["shares"] = max(2, shares_m * 1024 // 1000) if shares_m else 2
    resources["cpu"] = cpu
    if config.pids_limit > 0:
        resources["pids"] = {"limit": config.pids_limit}
    namespaces: list[dict[str, str]] = [{"type": "pid"}, {"type": "mount"}]
    for kind in ("ipc", "uts"):
        namespaces.append({"type": kind, "path": shared_ns[kind]} if kind in shared_ns else {"type": kind})
    if netns_path:
        namespaces.append({"type": "network", "path": netns_path})
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "cgroupsPath": cgroups_path,
        "resources": resources,
    }
    if not config.privileged:
        linux["maskedPaths"] = MASKED_PATHS
        linux["readonlyPaths"] = READONLY_PATHS
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": config.tty,
            "user": {"uid": uid, "gid": gid, **({"additionalGids": extra_gids} if extra_gids else {})},
            "args": args,
            "env": merge_env(list(image_cfg.get("Env") or []) + (["TERM=xterm"] if config.tty else []),
                             config.env, hostname),
            "cwd": config.working_dir or image_cfg.get("WorkingDir") or "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile_limit(), "soft": nofile_limit()}],
            "noNewPrivileges": False,
            "oomScoreAdj": 1000 if config.memory_limit_bytes == 0 else 900,
        },
        "root": {"path": str(rootfs), "readonly": config.read_only_rootfs},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
        "annotations": {LABEL_KUBERNETES_CONTAINER_NAME: config.name, **config.annotations},
    }
