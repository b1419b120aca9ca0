"""The real container runtime: runc, overlayfs rootfs, a shim per container.

Layout (state_dir defaults to /run/k8py, data_dir to /var/lib/k8py):
    <state>/runc/                      runc --root: lists only k8py's containers
    <state>/sandboxes/<id>/            see sandbox.py
    <state>/containers/<id>/           container.json, bundle/config.json, bundle/rootfs
                                       (overlay mount point), pid, exit.json (from the shim)
    <data>/containers/<id>/{upper,work} the container's writable layer
    <data>/images/                     ImageStore
runc container names are `k8py-<id>`; cgroups are `/<cgroup_parent>/<pod-uid>/<id>` in
every v1 hierarchy (cgroup_parent defaults to "k8py"); with `pod_pids_limit` the pod's own
cgroup (`/<cgroup_parent>/<pod-uid>`) gets that pids.max, shared by all its containers, as
the kubelet's --pod-max-pids. With `log_max_size` the shims rotate the containers' logs.

Invariants: every fact needed for status lives on disk, so a new RuncRuntime over the
same directories (the agent restarted) sees the same containers, still running under
their shims; create = overlay mount + config.json + shim (`runc create`); start =
`runc start`; a container's status is `exited` iff the shim wrote exit.json.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import time
import uuid
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from k8py.host import proc
from k8py.runtime import cgroups, exec_session, mounts
from k8py.runtime.attach import AttachSession
from k8py.runtime.errors import (
    ContainerNotFound,
    CreateContainerError,
    RuntimeError_,
    StartError,
)
from k8py.runtime.exec_session import ExecSession
from k8py.runtime.images import ImageStore
from k8py.runtime.jsoncache import JsonFileCache
from k8py.runtime.mirrors import Credentials, RegistriesConfig
from k8py.runtime.protocol import (
    ContainerConfig,
    ContainerResources,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    ImageStatus,
    LoopbackOnlyNetwork,
    Mount,
    PodNetwork,
    PodSandboxConfig,
    PodSandboxStatus,
    SandboxState,
)
from k8py.runtime.registry import RegistryClient
from k8py.runtime.sandbox import Sandboxes
from k8py.runtime.spec import CPU_PERIOD, build_spec

SHIM = Path(__file__).with_name("shim.py")
DEFAULT_REGISTRIES_YAML = "/etc/k8py/registries.yaml"  # as k3s's /etc/rancher/k3s/registries.yaml
NAME_PREFIX = "k8py-"


def _message(e: Exception) -> str:
    """The human text of a failure: a runtime error's message, else the exception's."""
    return e.message if isinstance(e, RuntimeError_) else str(e)


def _signal_number(name: str) -> int:
    n = name.upper()
    if n.isdigit():
        return int(n)
    if not n.startswith("SIG"):
        n = "SIG" + n
    return int(getattr(signal, n, signal.SIGTERM))


class RuncRuntime:
    """ContainerRuntime over runc (see protocol.ContainerRuntime)."""

    name = "runc"

    def __init__(self, state_dir: str | Path = "/run/k8py", data_dir: str | Path = "/var/lib/k8py",
                 images: ImageStore | None = None, network: PodNetwork | None = None,
                 registries: RegistriesConfig | None = None, cgroup_parent: str = "k8py",
                 netns_prefix: str = "k8py-", runc: str = "runc", log_max_size: int = 0,
                 log_max_files: int = 5, pod_pids_limit: int = -1) -> None:
        self.state_dir = Path(state_dir)
        self.data_dir = Path(data_dir)
        self.runc_root = self.state_dir / "runc"
        self.cdir = self.state_dir / "containers"
        for d in (self.runc_root, self.cdir, self.data_dir / "containers"):
            d.mkdir(parents=True, exist_ok=True)
        if images is None and registries is None:
            registries = RegistriesConfig.load(DEFAULT_REGISTRIES_YAML)
        self.images = images or ImageStore(self.data_dir / "images", RegistryClient(registries))
        self.sandboxes = Sandboxes(self.state_dir, network or LoopbackOnlyNetwork(), netns_prefix)
        self.cgroup_parent = cgroup_parent.strip("/")
        self.runc = runc
        self.log_max_size, self.log_max_files = log_max_size, log_max_files  # the shim rotates the log
        self.pod_pids_limit = pod_pids_limit  # pids.max of every pod's cgroup; <= 0: unlimited
        self._json = JsonFileCache()

    async def close(self) -> None:
        await self.images.client.close()

    # ------------------------------------------------------------ helpers

    async def _runc(self, *args: str, check: bool = True, timeout: float = 30.0) -> tuple[int, str, str]:
        rc, out, err = await proc.run(self.runc, "--root", str(self.runc_root), *args, timeout=timeout)
        if check and rc != 0:
            raise RuntimeError_(f"runc {' '.join(args)}: {err.decode(errors='replace').strip()}")
        return rc, out.decode(errors="replace"), err.decode(errors="replace")

    def _rec_path(self, cid: str) -> Path:
        return self.cdir / cid / "container.json"

    def _load_shared(self, cid: str) -> dict[str, Any]:
        """container.json from the parse cache: read-only (see jsoncache.py)."""
        try:
            rec: dict[str, Any] = self._json.read(self._rec_path(cid))
            return rec
        except (OSError, ValueError):
            raise ContainerNotFound(f'container "{cid}" not found') from None

    def _load(self, cid: str) -> dict[str, Any]:
        try:
            return json.loads(self._rec_path(cid).read_text())
        except (OSError, ValueError):
            raise ContainerNotFound(f'container "{cid}" not found') from None

    def _save(self, cid: str, rec: dict[str, Any]) -> None:
        p = self._rec_path(cid)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec))
        os.replace(tmp, p)

    def _exit_info(self, cid: str) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = self._json.read(self.cdir / cid / "exit.json")
            return info
        except (OSError, ValueError):
            return None

    def runc_name(self, cid: str) -> str:
        return NAME_PREFIX + cid

    # ------------------------------------------------------------ sandboxes

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        sid = uuid.uuid4().hex
        await self.sandboxes.create(sid, config)
        return sid

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        self.sandboxes.load(sandbox_id)
        for c in await self.list_containers(sandbox_id):
            if c.state in (ContainerState.RUNNING, ContainerState.CREATED):
                await self.stop_container(c.id, 0)
        await self.sandboxes.stop(sandbox_id)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        try:
            rec = self.sandboxes.load(sandbox_id)
        except RuntimeError_:
            return
        for c in await self.list_containers(sandbox_id):
            await self.remove_container(c.id)
        if rec["state"] != SandboxState.NOTREADY.value:
            await self.sandboxes.stop(sandbox_id)
        cgroups.remove_tree(f"{self.cgroup_parent}/{rec['config']['uid']}")
        self.sandboxes.remove(sandbox_id)

    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        return self.sandboxes.status(sandbox_id)

    async def list_pod_sandboxes(self) -> list[PodSandboxStatus]:
        out = []
        for sid in self.sandboxes.ids():
            try:
                out.append(self.sandboxes.status(sid))
            except RuntimeError_:
                continue
        return out

    # ------------------------------------------------------------ containers

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        """Raises CreateContainerError for every failure (what was made of the container is removed)."""
        try:
            return await self._create_container(sandbox_id, config)
        except CreateContainerError:
            raise
        except (RuntimeError_, OSError, ValueError, KeyError) as e:
            raise CreateContainerError(_message(e)) from e

    async def _create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        sb = self.sandboxes.load(sandbox_id)
        if sb["state"] != SandboxState.READY.value:
            raise CreateContainerError(f"pod sandbox {sandbox_id} is not ready")
        img = self.images.get(config.image)
        if img is None:
            raise CreateContainerError(f'image "{config.image}" not present locally; pull it first')
        cid = uuid.uuid4().hex
        cdir = self.cdir / cid
        bundle = cdir / "bundle"
        rootfs = bundle / "rootfs"
        rw = self.data_dir / "containers" / cid
        log_path = config.log_path or (
            str(Path(sb["config"]["log_directory"]) / config.name / f"{config.attempt}.log")
            if sb["config"].get("log_directory") else str(cdir / "container.log"))
        cg = f"/{self.cgroup_parent}/{sb['config']['uid']}/{cid}"
        rec: dict[str, Any] = {
            "id": cid, "sandbox_id": sandbox_id, "config": asdict(config), "image_id": img.id,
            "created_at": time.time(), "started_at": None, "log_path": log_path, "cgroups_path": cg,
            "stop_signal": img.config.get("StopSignal", "SIGTERM"), "pid": 0,
        }
        rootfs.mkdir(parents=True)
        self._save(cid, rec)
        try:
            (rw / "upper").mkdir(parents=True)
            (rw / "work").mkdir()
            lowers = [str(p) for p in reversed(self.images.layer_dirs(img))]
            await asyncio.to_thread(mounts.mount_overlay, lowers, rw / "upper", rw / "work", rootfs)
            for m in config.mounts:  # a bind source that does not exist is an error, as in Kubernetes
                if not os.path.exists(m.host_path):
                    raise CreateContainerError(f'failed to create container: mount source "{m.host_path}" '
                                               "does not exist")
            if config.termination_message_path:  # a host file, bind-mounted as the kubelet does
                tlog = cdir / "termination-log"
                tlog.touch(mode=0o666)
                tlog.chmod(0o666)
                config = replace(config, mounts=list(config.mounts) + [
                    Mount(config.termination_message_path, str(tlog))])
            spec = build_spec(config=config, image_cfg=img.config, rootfs=rootfs, hostname=sb["hostname"],
                              netns_path=sb["netns_path"], sandbox_dir=self.sandboxes.path(sandbox_id),
                              cgroups_path=cg, memory_swap=cgroups.has_memsw(), shared_ns=sb.get("ns") or {})
            (bundle / "config.json").write_text(json.dumps(spec, indent=1))
            if self.pod_pids_limit > 0 and cgroups.pids_available():
                cgroups.set_pod_pids_limit(f"{self.cgroup_parent}/{sb['config']['uid']}", self.pod_pids_limit)
            Path(log_path).parent.mkdir(parents=True, exist_ok=True)
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-I", "-S", str(SHIM), "--runc", self.runc, "--root", str(self.runc_root),
                "--id", self.runc_name(cid), "--bundle", str(bundle), "--state", str(cdir), "--log", log_path,
                "--cgroup-memory", cgroups.memory_dir(cg),
                "--log-max-size", str(self.log_max_size), "--log-max-files", str(self.log_max_files),
                *(["--tty"] if config.tty else []), *(["--stdin"] if config.stdin else []),
                *(["--stdin-once"] if config.stdin_once else []),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL)
            assert proc.stdout is not None
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode(errors="replace").strip()
            await proc.wait()
            if not line.startswith("ok "):
                raise CreateContainerError(line.removeprefix("error ").strip() or "shim failed")
            rec["pid"] = int(line.split()[1])
            self._save(cid, rec)
        except BaseException:
            await self._destroy(cid)
            raise
        return cid

    async def start_container(self, container_id: str) -> None:
        """Raises StartError for every failure."""
        try:
            await self._start_container(container_id)
        except StartError:
            raise
        except (RuntimeError_, OSError) as e:
            raise StartError(_message(e)) from e

    async def _start_container(self, container_id: str) -> None:
        rec = self._load(container_id)
        if rec["started_at"]:
            raise StartError(f"container {container_id} was already started")
        rec["started_at"] = time.time()
        self._save(container_id, rec)
        rc, _, err = await self._runc("start", self.runc_name(container_id), check=False)
        if rc != 0:
            raise StartError(f"failed to start container: {err.strip()}")

    async def _wait_exit(self, cid: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            if self._exit_info(cid) is not None:
                return True
            if not (self.cdir / cid).exists():
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    async def stop_container(self, container_id: str, timeout: float) -> None:
        """Send the image's stop signal (default SIGTERM), SIGKILL after `timeout` seconds."""
        rec = self._load(container_id)
        if self._exit_info(container_id) is not None:
            return
        name = self.runc_name(container_id)
        if not rec["started_at"]:  # created, never started: nothing runs the user's process yet
            await self._runc("kill", name, "KILL", check=False)
            await self._wait_exit(container_id, 10)
            return
        if timeout > 0:
            sig = _signal_number(rec.get("stop_signal") or "SIGTERM")
            await self._runc("kill", name, str(sig), check=False)
            if await self._wait_exit(container_id, timeout):
                return
        await self._runc("kill", "--all", name, "KILL", check=False)
        if not await self._wait_exit(container_id, 15):
            raise RuntimeError_(f"container {container_id} did not exit after SIGKILL")

    async def _destroy(self, cid: str) -> None:
        """Delete the runc container, unmount and remove every file of it (not the log)."""
        await self._runc("delete", "--force", self.runc_name(cid), check=False)
        cdir = self.cdir / cid
        try:
            rec = json.loads((cdir / "container.json").read_text())
            cgroups.remove_tree(rec["cgroups_path"].strip("/"))
        except (OSError, ValueError, KeyError):
            pass
        await asyncio.to_thread(mounts.unmount_all_under, cdir)
        shutil.rmtree(cdir, ignore_errors=True)
        shutil.rmtree(self.data_dir / "containers" / cid, ignore_errors=True)

    async def remove_container(self, container_id: str) -> None:
        if not (self.cdir / container_id).exists():
            return
        if self._exit_info(container_id) is None:
            try:
                await self.stop_container(container_id, 0)
            except RuntimeError_:
                pass
        await self._destroy(container_id)

    def _status(self, cid: str) -> ContainerStatus:
        rec = self._load_shared(cid)
        cfg = rec["config"]
        ex = self._exit_info(cid)
        alive = False
        if ex is None and rec["started_at"]:
            alive = _alive(rec.get("pid", 0)) or _alive(self._shim_pid(cid))
            if not alive:  # the shim writes exit.json, then exits: gone now, its record is there
                ex = self._exit_info(cid)
        st = ContainerStatus(
            id=cid, name=cfg["name"], sandbox_id=rec["sandbox_id"], image=cfg["image"], image_id=rec["image_id"],
            state=ContainerState.CREATED, created_at=rec["created_at"], started_at=rec["started_at"],
            log_path=rec["log_path"], pid=rec.get("pid", 0), attempt=cfg.get("attempt", 0),
            labels=dict(cfg.get("labels", {})), annotations=dict(cfg.get("annotations", {})),
            resources=ContainerResources(**rec["resources"]) if rec.get("resources") else ContainerResources(
                cfg.get("memory_limit_bytes", 0), cfg.get("cpu_limit_millis", 0), cfg.get("cpu_request_millis", 0)))
        if ex is not None:
            st.state = ContainerState.EXITED
            st.exit_code = ex["exit_code"]
            st.finished_at = ex["finished_at"]
            if not st.started_at:
                st.started_at = None
            if ex.get("oom_killed"):
                st.reason = "OOMKilled"
            elif ex["exit_code"] == 0:
                st.reason = "Completed"
            else:
                st.reason = "Error"
            st.message = self._termination_message(cid, cfg)
        elif rec["started_at"]:
            if alive:  # the shim writes exit.json soon
                st.state = ContainerState.RUNNING
            else:
                st.state = ContainerState.UNKNOWN
                st.reason, st.message = "Unknown", "the container's shim exited without a status"
        return st

    def _shim_pid(self, cid: str) -> int:
        try:
            return int(self._json.read(self.cdir / cid / "shim.json")["pid"])
        except (OSError, ValueError, KeyError):
            return 0

    def _termination_message(self, cid: str, cfg: dict[str, Any]) -> str:
        path = cfg.get("termination_message_path")
        if not path:
            return ""
        p = self.cdir / cid / "termination-log"
        try:
            return p.read_text(errors="replace")[:4096]
        except OSError:
            return ""

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self._status(container_id)

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        out = []
        for entry in sorted(self.cdir.iterdir()):
            try:
                st = self._status(entry.name)
            except RuntimeError_:
                continue
            if sandbox_id is None or st.sandbox_id == sandbox_id:
                out.append(st)
        return out

    def log_path(self, container_id: str) -> str:
        return self._load(container_id)["log_path"]

    async def container_stats(self, container_id: str) -> ContainerStats | None:
        """Usage from the container's cgroups; None once it has exited."""
        rec = self._load(container_id)
        if self._exit_info(container_id) is not None:
            return None
        u = cgroups.usage(rec["cgroups_path"])
        if u is None:
            return None
        return ContainerStats(time.time(), u[0], u[1], u[2])

    async def update_container_resources(self, container_id: str, resources: ContainerResources) -> None:
        """`runc update` of the running container's memory limit (and memsw on cgroup v1),
        CFS quota/period and shares, without a restart; what was applied is recorded
        (ContainerStatus.resources; the kernel's own values: cgroups.configured). The kernel
        refuses a memory limit below what the container uses (cgroup v1: EBUSY): RuntimeError_."""
        self._require_running(container_id)
        rec = self._load(container_id)
        mem = str(resources.memory_limit_bytes) if resources.memory_limit_bytes > 0 else "-1"
        quota = (str(max(1000, resources.cpu_limit_millis * CPU_PERIOD // 1000))
                 if resources.cpu_limit_millis > 0 else "-1")
        shares_m = resources.cpu_request_millis or resources.cpu_limit_millis
        shares = str(max(2, shares_m * 1024 // 1000) if shares_m else 2)
        args = ["update", "--memory", mem, *(["--memory-swap", mem] if cgroups.has_memsw() else []),
                "--cpu-period", str(CPU_PERIOD), "--cpu-quota", quota, "--cpu-share", shares]
        await self._runc(*args, self.runc_name(container_id))
        rec["resources"] = asdict(resources)
        self._save(container_id, rec)

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float | None = None) -> ExecResult:
        self._require_running(container_id)
        pidfile = self.cdir / container_id / f"exec-{uuid.uuid4().hex[:8]}.pid"
        p = await asyncio.create_subprocess_exec(
            self.runc, "--root", str(self.runc_root), "exec", "--pid-file", str(pidfile),
            self.runc_name(container_id), *cmd,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(p.communicate(), timeout)
            return ExecResult(p.returncode if p.returncode is not None else -1, out, err)
        except TimeoutError:
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
            try:
                out, err = await asyncio.wait_for(p.communicate(), 5)
            except TimeoutError:
                p.kill()
                out, err = b"", b""
            return ExecResult(-1, out, err, timed_out=True)
        finally:
            pidfile.unlink(missing_ok=True)

    async def exec(self, container_id: str, cmd: list[str], tty: bool = False,
                   stdin: bool = False) -> ExecSession:
        """A streaming `runc exec` (see exec_session.py; a tty merges stdout and stderr)."""
        self._require_running(container_id)
        argv = [self.runc, "--root", str(self.runc_root), "exec"] + (["-t"] if tty else []) + \
            [self.runc_name(container_id), *cmd]
        return await exec_session.spawn(argv, tty, stdin)

    async def attach(self, container_id: str) -> AttachSession:
        """Attach to the container's main process (its output from now on; its stdin if
        the container was created with stdin; the terminal if with tty)."""
        st = self._status(container_id)
        if st.state == ContainerState.EXITED:
            raise RuntimeError_(f"container {container_id} has exited")
        cfg = self._load(container_id)["config"]
        return await AttachSession.connect(str(self.cdir / container_id / "attach.sock"), tty=cfg.get("tty", False),
                                           stdin=cfg.get("stdin", False))

    def _require_running(self, cid: str) -> None:
        st = self._status(cid)
        if st.state != ContainerState.RUNNING:
            raise RuntimeError_(f"container {cid} is not running (state {st.state.value})")

    # ------------------------------------------------------------ images

    async def pull_image(self, image: str, credentials: Credentials | None = None) -> str:
        return (await self.images.pull(image, credentials)).id

    async def image_status(self, image: str) -> ImageStatus | None:
        img = self.images.get(image)
        if img is None:
            return None
        return ImageStatus(img.id, img.repo_tags, img.repo_digests, img.size, img.config.get("User", ""))

    async def list_images(self) -> list[ImageStatus]:
        return [ImageStatus(i.id, i.repo_tags, i.repo_digests, i.size, i.config.get("User", ""))
                for i in self.images.list()]

    async def remove_image(self, image: str) -> None:
        used = {json.loads((p / "container.json").read_text()).get("image_id")
                for p in self.cdir.iterdir() if (p / "container.json").exists()}
        self.images.remove(image, in_use=lambda i: i in used)

    # ------------------------------------------------------------ cleanup

    async def cleanup(self) -> None:
        """Kill and delete every container and sandbox of this runtime (k8py reset)."""
        for c in await self.list_containers():
            await self.remove_container(c.id)
        for sid in self.sandboxes.ids():
            await self.remove_pod_sandbox(sid)
        cgroups.remove_tree(self.cgroup_parent)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


__all__ = ["RuncRuntime", "Mount", "ContainerConfig", "PodSandboxConfig"]
