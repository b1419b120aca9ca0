"""The CRI-like container runtime contract the kubelet is written against.

Modelled on Kubernetes' CRI (RuntimeService + ImageService): a pod sandbox owns the
pod's network namespace (and hosts/hostname/resolv.conf files); containers live in a
sandbox; images are pulled by reference. Implementations: `runc.RuncRuntime` (real
containers) and `fake.FakeRuntime` (in-memory, for kubelet unit tests).

Invariants:
- ids are opaque strings, unique per runtime; `name` fields are the Kubernetes names.
- `container_status` never blocks on the process; times are UNIX seconds (float) or None.
- An exited container keeps its status (exit code, reason, finish time, log file) until
  `remove_container`; a stopped sandbox keeps its record until `remove_pod_sandbox`.
- The network is a seam: `PodNetwork.setup(netns_path, pod)` returns the pod IP; the
  runtime calls it after creating the namespace and `teardown` before deleting it.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from k8py.runtime.attach import AttachSession
from k8py.runtime.exec_session import ExecSession
from k8py.runtime.mirrors import Credentials


class ContainerState(str, enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"


class SandboxState(str, enum.Enum):
    READY = "ready"
    NOTREADY = "notready"


@dataclass
class DNSConfig:
    servers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


@dataclass
class PodSandboxConfig:
    name: str
    namespace: str
    uid: str
    hostname: str = ""  # defaults to the pod name
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    dns: DNSConfig | None = None  # None: copy the host's resolv.conf
    host_network: bool = False
    log_directory: str = ""  # e.g. /var/log/pods/<ns>_<name>_<uid>
    extra_hosts: list[tuple[str, str]] = field(default_factory=list)  # (ip, names) for /etc/hosts


@dataclass
class Mount:
    container_path: str
    host_path: str
    read_only: bool = False


@dataclass
class ContainerConfig:
    name: str
    image: str  # a reference or image id; must already be pulled
    command: list[str] | None = None  # overrides the image ENTRYPOINT (Kubernetes semantics)
    args: list[str] | None = None  # overrides the image CMD
    env: list[tuple[str, str]] = field(default_factory=list)
    working_dir: str = ""
    mounts: list[Mount] = field(default_factory=list)
    memory_limit_bytes: int = 0  # 0: unlimited
    cpu_limit_millis: int = 0  # 0: unlimited -> CFS quota
    cpu_request_millis: int = 0  # -> cpu shares
    pids_limit: int = 0
    run_as_user: int | None = None
    run_as_group: int | None = None
    privileged: bool = False
    read_only_rootfs: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    tty: bool = False  # the process gets a terminal (output logged as stdout)
    stdin: bool = False  # keep stdin open for attach
    stdin_once: bool = False  # close stdin when the first attached client goes away
    log_path: str = ""  # absolute; default <sandbox log_directory>/<name>/<attempt>.log
    attempt: int = 0  # restart count
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    termination_message_path: str = ""


@dataclass(frozen=True)
class ContainerResources:
    """The CPU and memory a container runs with (CRI's LinuxContainerResources, as the
    kubelet sets them): what `update_container_resources` applies and a status reports."""
    memory_limit_bytes: int = 0  # 0: unlimited
    cpu_limit_millis: int = 0  # 0: unlimited -> CFS quota
    cpu_request_millis: int = 0  # -> cpu shares

    @classmethod
    def of(cls, config: ContainerConfig) -> ContainerResources:
        return cls(config.memory_limit_bytes, config.cpu_limit_millis, config.cpu_request_millis)


@dataclass
class ContainerStatus:
    id: str
    name: str
    sandbox_id: str
    image: str  # the reference asked for
    image_id: str  # config digest
    state: ContainerState
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    reason: str = ""  # OOMKilled / Error / Completed when exited
    message: str = ""
    log_path: str = ""
    pid: int = 0
    attempt: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    resources: ContainerResources | None = None  # as configured (created with, or last updated to)


@dataclass
class PodSandboxStatus:
    id: str
    name: str
    namespace: str
    uid: str
    state: SandboxState
    created_at: float
    netns_path: str = ""
    ip: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerStats:
    """Resource usage as cAdvisor/CRI report it (what metrics-server and `kubectl top` use)."""

    timestamp: float
    cpu_usage_ns: int  # cumulative CPU time
    memory_working_set_bytes: int  # usage minus inactive file cache
    memory_usage_bytes: int


@dataclass
class ImageStatus:
    id: str
    repo_tags: list[str]
    repo_digests: list[str]
    size: int
    user: str = ""  # the image config's User


@dataclass
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False


@runtime_checkable
class PodNetwork(Protocol):
    """Network setup for a pod sandbox (the network package implements it)."""

    async def setup(self, netns_path: str, pod: PodSandboxConfig) -> str:
        """Wire the namespace (veth, address, routes); returns the pod IP ("" if none)."""
        ...

    async def teardown(self, netns_path: str, pod: PodSandboxConfig) -> None:
        """Undo setup; must be idempotent and tolerate a half-done setup."""
        ...


class LoopbackOnlyNetwork:
    """A PodNetwork that leaves only loopback (the sandbox brings `lo` up)."""

    async def setup(self, netns_path: str, pod: PodSandboxConfig) -> str:
        return ""

    async def teardown(self, netns_path: str, pod: PodSandboxConfig) -> None:
        return None


@runtime_checkable
class ContainerRuntime(Protocol):
    """CRI RuntimeService + ImageService, asyncio flavoured."""

    name: str

    # sandboxes
    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str: ...
    async def stop_pod_sandbox(self, sandbox_id: str) -> None: ...
    async def remove_pod_sandbox(self, sandbox_id: str) -> None: ...
    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus: ...
    async def list_pod_sandboxes(self) -> list[PodSandboxStatus]: ...

    # containers
    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str: ...
    async def start_container(self, container_id: str) -> None: ...
    async def stop_container(self, container_id: str, timeout: float) -> None: ...
    async def remove_container(self, container_id: str) -> None: ...
    async def container_status(self, container_id: str) -> ContainerStatus: ...
    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]: ...
    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float | None = None) -> ExecResult: ...
    async def exec(self, container_id: str, cmd: list[str], tty: bool = False,
                   stdin: bool = False) -> ExecSession: ...
    async def attach(self, container_id: str) -> AttachSession: ...
    def log_path(self, container_id: str) -> str: ...
    async def container_stats(self, container_id: str) -> ContainerStats | None: ...
    async def update_container_resources(self, container_id: str, resources: ContainerResources) -> None: ...

    # images
    async def pull_image(self, image: str, credentials: Credentials | None = None) -> str: ...
    async def image_status(self, image: str) -> ImageStatus | None: ...
    async def list_images(self) -> list[ImageStatus]: ...
    async def remove_image(self, image: str) -> None: ...
