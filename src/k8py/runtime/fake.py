"""An in-memory ContainerRuntime for kubelet unit tests (no processes, no root).

Containers move created -> running -> exited only when told: `start_container` makes
them running; tests end them with `finish(cid, exit_code, reason)` (e.g. 137/"OOMKilled").
Images "exist" once pulled or listed in `images`; `pull_errors[image]` makes a pull fail.
`exec_results[(name, tuple(cmd))]` scripts exec_sync answers (default exit 0).
Every call is appended to `calls` as (method, args) so tests can assert on ordering.
Times come from an injectable clock function (default time.time).
"""
from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import replace

from k8py.runtime import reference
from k8py.runtime.attach import AttachSession
from k8py.runtime.errors import (
    ContainerNotFound,
    CreateContainerError,
    ImagePullError,
    RuntimeError_,
    SandboxNotFound,
    StartError,
)
from k8py.runtime.exec_session import ExecSession
from k8py.runtime.mirrors import Credentials
from k8py.runtime.protocol import (
    ContainerConfig,
    ContainerResources,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    ImageStatus,
    LoopbackOnlyNetwork,
    PodNetwork,
    PodSandboxConfig,
    PodSandboxStatus,
    SandboxState,
)


class FakeRuntime:
    name = "fake"

    def __init__(self, now: Callable[[], float] = time.time, network: PodNetwork | None = None) -> None:
        self.now = now
        self.network = network or LoopbackOnlyNetwork()
        self.sandboxes: dict[str, tuple[PodSandboxConfig, PodSandboxStatus]] = {}
        self.containers: dict[str, tuple[ContainerConfig, ContainerStatus]] = {}
        self.images: dict[str, ImageStatus] = {}  # keyed by normalized reference
        self.pull_errors: dict[str, ImagePullError] = {}
        self.exec_results: dict[tuple[str, tuple[str, ...]], ExecResult] = {}
        self.calls: list[tuple[str, tuple[object, ...]]] = []
        self.stats: dict[str, ContainerStats] = {}
        self.update_errors: dict[str, Exception] = {}  # container id -> what update_container_resources raises
        self._ids = itertools.count(1)
        self.changed = asyncio.Event()

    def _id(self, kind: str) -> str:
        return f"{kind}{next(self._ids):06d}"

    def _log(self, method: str, *args: object) -> None:
        self.calls.append((method, args))
        self.changed.set()

    # sandboxes
    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        sid = self._id("sb")
        self._log("run_pod_sandbox", config.name)
        path = f"/run/netns/fake-{sid}"
        ip = await self.network.setup(path, config) if not config.host_network else ""
        self.sandboxes[sid] = (config, PodSandboxStatus(sid, config.name, config.namespace, config.uid,
                                                        SandboxState.READY, self.now(), path, ip,
                                                        dict(config.labels), dict(config.annotations)))
        return sid

    def _sb(self, sid: str) -> tuple[PodSandboxConfig, PodSandboxStatus]:
        if sid not in self.sandboxes:
            raise SandboxNotFound(f"pod sandbox {sid} not found")
        return self.sandboxes[sid]

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        self._log("stop_pod_sandbox", sandbox_id)
        cfg, st = self._sb(sandbox_id)
        for cid, (_, cst) in list(self.containers.items()):
            if cst.sandbox_id == sandbox_id and cst.state != ContainerState.EXITED:
                self.finish(cid, 137, "Error")
        if st.state == SandboxState.READY:
            await self.network.teardown(st.netns_path, cfg)
        self.sandboxes[sandbox_id] = (cfg, replace(st, state=SandboxState.NOTREADY))

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        self._log("remove_pod_sandbox", sandbox_id)
        if sandbox_id not in self.sandboxes:
            return
        if self.sandboxes[sandbox_id][1].state == SandboxState.READY:
            await self.stop_pod_sandbox(sandbox_id)
        for cid in [c for c, (_, s) in self.containers.items() if s.sandbox_id == sandbox_id]:
            del self.containers[cid]
        del self.sandboxes[sandbox_id]

    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        return self._sb(sandbox_id)[1]

    async def list_pod_sandboxes(self) -> list[PodSandboxStatus]:
        return [st for _, st in self.sandboxes.values()]

    # containers
    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        self._log("create_container", sandbox_id, config.name)
        try:
            _, sb = self._sb(sandbox_id)
        except SandboxNotFound as e:
            raise CreateContainerError(e.message) from e
        if sb.state != SandboxState.READY:
            raise CreateContainerError(f"pod sandbox {sandbox_id} is not ready")
        img = await self.image_status(config.image)
        if img is None:
            raise CreateContainerError(f'image "{config.image}" not present locally; pull it first')
        cid = self._id("c")
        self.containers[cid] = (config, ContainerStatus(
            id=cid, name=config.name, sandbox_id=sandbox_id, image=config.image, image_id=img.id,
            state=ContainerState.CREATED, created_at=self.now(), log_path=config.log_path or f"/fake/{cid}.log",
            attempt=config.attempt, labels=dict(config.labels), annotations=dict(config.annotations),
            resources=ContainerResources.of(config)))
        return cid

    def _c(self, cid: str) -> tuple[ContainerConfig, ContainerStatus]:
        if cid not in self.containers:
            raise ContainerNotFound(f'container "{cid}" not found')
        return self.containers[cid]

    async def start_container(self, container_id: str) -> None:
        self._log("start_container", container_id)
        try:
            cfg, st = self._c(container_id)
        except ContainerNotFound as e:
            raise StartError(e.message) from e
        if st.state != ContainerState.CREATED:
            raise StartError(f"container {container_id} is {st.state.value}")
        self.containers[container_id] = (cfg, replace(st, state=ContainerState.RUNNING, started_at=self.now(),
                                                      pid=next(self._ids)))

    def finish(self, container_id: str, exit_code: int, reason: str = "") -> None:
        """Test control: the container's process exits."""
        cfg, st = self._c(container_id)
        if st.state == ContainerState.EXITED:
            return
        reason = reason or ("Completed" if exit_code == 0 else "Error")
        self.containers[container_id] = (cfg, replace(st, state=ContainerState.EXITED, exit_code=exit_code,
                                                      reason=reason, finished_at=self.now()))
        self.changed.set()

    async def stop_container(self, container_id: str, timeout: float) -> None:
        self._log("stop_container", container_id, timeout)
        self.finish(container_id, 137 if timeout <= 0 else 143, "Error")

    async def remove_container(self, container_id: str) -> None:
        self._log("remove_container", container_id)
        self.containers.pop(container_id, None)

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self._c(container_id)[1]

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        return [st for _, st in self.containers.values() if sandbox_id is None or st.sandbox_id == sandbox_id]

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float | None = None) -> ExecResult:
        self._log("exec_sync", container_id, tuple(cmd))
        _, st = self._c(container_id)
        if st.state != ContainerState.RUNNING:
            raise RuntimeError_(f"container {container_id} is not running (state {st.state.value})")
        return self.exec_results.get((st.name, tuple(cmd)), ExecResult(0, b"", b""))

    async def exec(self, container_id: str, cmd: list[str], tty: bool = False,
                   stdin: bool = False) -> ExecSession:
        raise RuntimeError_("FakeRuntime does not stream exec")

    async def attach(self, container_id: str) -> AttachSession:
        raise RuntimeError_("FakeRuntime does not attach")

    def log_path(self, container_id: str) -> str:
        return self._c(container_id)[1].log_path

    async def container_stats(self, container_id: str) -> ContainerStats | None:
        """`stats[cid]` if a test set it; None otherwise."""
        self._c(container_id)
        return self.stats.get(container_id)

    # images
    async def update_container_resources(self, container_id: str, resources: ContainerResources) -> None:
        """Records the call; the container keeps running with `resources` (no restart)."""
        self._log("update_container_resources", container_id, resources)
        cfg, st = self._c(container_id)
        if container_id in self.update_errors:
            raise self.update_errors[container_id]
        if st.state != ContainerState.RUNNING:
            raise RuntimeError_(f"container {container_id} is not running")
        self.containers[container_id] = (cfg, replace(st, resources=resources))

    async def pull_image(self, image: str, credentials: Credentials | None = None) -> str:
        self._log("pull_image", image)
        name = str(reference.parse(image))
        if name in self.pull_errors or image in self.pull_errors:
            raise self.pull_errors.get(name) or self.pull_errors[image]
        if name not in self.images:
            self.images[name] = ImageStatus("sha256:" + format(abs(hash(name)), "064x")[:64], [name], [], 1000)
        return self.images[name].id

    async def image_status(self, image: str) -> ImageStatus | None:
        if image in {i.id for i in self.images.values()}:
            return next(i for i in self.images.values() if i.id == image)
        try:
            return self.images.get(str(reference.parse(image)))
        except RuntimeError_:
            return None

    async def list_images(self) -> list[ImageStatus]:
        return list(self.images.values())

    async def remove_image(self, image: str) -> None:
        self._log("remove_image", image)
        self.images.pop(str(reference.parse(image)), None)
