"""One worker per pod UID: makes the runtime match the newest desired pod, reports status.

`update(pod)` hands the worker the newest pod (or None when it is gone from the API)
and wakes it; the worker syncs at least every `sync_period` seconds (to notice exits).
A sync reads the truth from the runtime every time (sandboxes and containers labelled
with the pod uid), so a restarted agent adopts running containers instead of
restarting them. Sync order: sandbox (volumes first) -> images -> init containers in
order -> containers, with restartPolicy and Kubernetes' crash back-off; then the
status is written through pods/status only when it changed. A pod with a
deletionTimestamp (or gone from the API) is terminated: preStop hooks, the stop
signal, SIGKILL after the grace period, sandbox and volumes removed, then the pod is
deleted with gracePeriodSeconds=0 and a uid precondition. The worker then ends.
Invariants: only this worker touches its pod's sandbox and containers; at most the two
newest attempts of a container are kept (the older one serves `logs --previous`).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from k8py.api.quantity import to_int
from k8py.api.types import Obj
from k8py.client.errors import ApiError
from k8py.clock import rfc3339
from k8py.kubelet import status as pstatus
from k8py.kubelet.containerconfig import (
    LABEL_CONTAINER_HASH,
    LABEL_POD_UID,
    container_config,
    container_hash,
    pod_log_dir,
    qos_class,
    sandbox_config,
)
from k8py.kubelet.envvars import build_env, expand_args
from k8py.kubelet.errors import ImagePullBackOff, KubeletError, VolumeError
from k8py.kubelet.prober import PodProber
from k8py.kubelet.runtimecache import Snapshot
from k8py.kubelet.status import ContainerView
from k8py.kubelet.volumes import dir_size
from k8py.runtime.errors import (
    CreateContainerError,
    ImageNeverPullError,
    ImagePullError,
    ImageRefError,
    StartError,
)
from k8py.runtime.protocol import (
    ContainerState,
    ContainerStatus,
    PodSandboxStatus,
    SandboxState,
)

if TYPE_CHECKING:
    from k8py.kubelet.agent import NodeAgent

log = logging.getLogger(__name__)
TERMINAL = ("Succeeded", "Failed")
DEFAULT_GRACE = 30


def pull_policy(c: Obj) -> str:
    p = c.get("imagePullPolicy")
    if p:
        return str(p)
    image = c.get("image", "")
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def _fmt_secs(s: float) -> str:
    if s < 1:
        return f"{s * 1000:.0f}ms"
    return f"{s:.3g}s"


class PodWorker:
    def __init__(self, agent: "NodeAgent", uid: str, pod: Obj) -> None:
        self.agent = agent
        self.uid = uid
        self.pod: Obj | None = pod
        self.key = f"{pod['metadata'].get('namespace')}/{pod['metadata']['name']}"
        self.last_pod: Obj = pod
        self.gone = False
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.waiting: dict[str, tuple[str, str]] = {}
        self.image_ids: dict[str, str] = {}
        self.volume_paths: dict[str, str] | None = None
        self._last_volume_refresh = 0.0
        self._last_storage_check = 0.0
        self._evicted: tuple[str, str] | None = None
        self._last_written: Obj | None = None
        self._pull_failed_at: dict[str, float] = {}
        self._changed = False  # this sync changed the runtime (the snapshot is stale)
        self.prober = PodProber(agent.runtime, agent.clock, event=self._probe_event,
                                on_liveness_failure=self._liveness_failed, on_change=self.wake.set)
        self.done = asyncio.Event()

    # ------------------------------------------------------------- control
    def update(self, pod: Obj | None) -> None:
        if pod is None:
            self.gone = True
        else:
            self.pod = pod
            self.last_pod = pod
        self.wake.set()

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run(), name=f"k8py-podworker-{self.key}")

    async def run(self) -> None:
        try:
            while True:
                self.wake.clear()
                finished = False
                try:
                    finished = await self.sync()
                except asyncio.CancelledError:
                    raise
                except ApiError as e:
                    log.info("pod %s: API error during sync: %s", self.key, e)
                except Exception:  # noqa: BLE001 - a sync failure is retried on the next tick
                    log.exception("pod %s: sync failed", self.key)
                if finished:
                    return
                sleeper = asyncio.ensure_future(self.agent.clock.sleep(self.agent.options.sync_period))
                waker = asyncio.ensure_future(self.wake.wait())
                try:
                    await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    sleeper.cancel()
                    waker.cancel()
        finally:
            self.prober.stop_all()
            self.done.set()

    # ------------------------------------------------------------- helpers
    def event(self, type_: str, reason: str, message: str, field_path: str | None = None) -> None:
        self.agent.event(self.last_pod, type_, reason, message)

    def _probe_event(self, type_: str, reason: str, message: str) -> None:
        self.event(type_, reason, message)

    async def _liveness_failed(self, cid: str, name: str, message: str) -> None:
        self.event("Normal", "Killing", message)
        pod = self.pod or self.last_pod
        grace = int((pod.get("spec") or {}).get("terminationGracePeriodSeconds") or DEFAULT_GRACE)
        try:
            await self.agent.runtime.stop_container(cid, min(grace, self.agent.options.max_kill_grace))
            self._touch()
        except Exception as e:  # noqa: BLE001
            log.info("pod %s: killing %s failed: %s", self.key, name, e)
        self.prober.forget(cid)
        self.wake.set()

    async def _sandboxes(self) -> list[PodSandboxStatus]:
        return [s for s in await self.agent.runtime.list_pod_sandboxes()
                if s.uid == self.uid or s.labels.get(LABEL_POD_UID) == self.uid]

    def _touch(self) -> None:
        """This worker changed the runtime: later reads must not use the old snapshot."""
        self._changed = True
        self.agent.cache.invalidate()

    async def _snapshot(self) -> Snapshot:
        return await self.agent.cache.get(self.agent.options.sync_period / 2)

    def _grace(self, pod: Obj) -> float:
        g = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        return float(min(g if g is not None else DEFAULT_GRACE, self.agent.options.max_kill_grace))

    def _backoff_key(self, name: str) -> str:
        return f"{self.uid}/{name}"

    # ------------------------------------------------------------- sync
    async def sync(self) -> bool:
        pod = self.pod
        if self.gone or pod is None or pod["metadata"].get("deletionTimestamp"):
            await self.terminate(None if self.gone else pod)
            return True
        spec = pod.get("spec") or {}
        phase_now = (pod.get("status") or {}).get("phase")
        snap = await self._snapshot()
        sandboxes = snap.pod_sandboxes(self.uid)
        if phase_now in TERMINAL:
            await self._stop_everything(sandboxes, grace=0, remove=False)
            return False
        rt = self.agent.runtime
        ready = [s for s in sandboxes if s.state == SandboxState.READY]
        sb = max(ready, key=lambda s: s.created_at) if ready else None
        if self._evicted:
            await self._stop_everything(sandboxes, grace=0, remove=False)
            await self._write_status(pod, sb, [], [], override_phase="Failed")
            return False
        if sb is None:
            if sandboxes:  # the sandbox died (e.g. the node rebooted): start over, as Kubernetes does
                self.event("Normal", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
                await self._stop_everything(sandboxes, grace=0, remove=True)
            try:
                self.volume_paths = await self.agent.volumes.setup(pod)
                self._last_volume_refresh = self.agent.clock.monotonic()
            except (VolumeError, ApiError, OSError) as e:
                msg = e.message if isinstance(e, VolumeError) else str(e)
                self.event("Warning", "FailedMount", f"MountVolume.SetUp failed: {msg}")
                await self._write_status(pod, None, self._views(spec, "initContainers", []),
                                         self._views(spec, "containers", []))
                return False
            cfg = sandbox_config(pod, self.agent.settings)
            log.debug("pod %s: creating the sandbox", self.key)
            try:
                sid = await rt.run_pod_sandbox(cfg)
            except Exception as e:  # noqa: BLE001
                self.event("Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
                return False
            finally:
                self.agent.cache.invalidate()
            sb = await rt.pod_sandbox_status(sid)
            log.debug("pod %s: sandbox %s ready (ip %s)", self.key, sid[:12], sb.ip)
            snap = await self._snapshot()
        elif self.volume_paths is None or (self.agent.clock.monotonic() - self._last_volume_refresh
                                           >= self.agent.options.volume_refresh_period):
            try:
                self.volume_paths = await self.agent.volumes.setup(pod)
            except (VolumeError, ApiError, OSError) as e:
                log.info("pod %s: volume refresh failed: %s", self.key, e)
            self._last_volume_refresh = self.agent.clock.monotonic()
        pod_ip = sb.ip or (self.agent.node_ip if spec.get("hostNetwork") else "")
        records = snap.sandbox_containers(sb.id)
        inits = self._views(spec, "initContainers", records)
        mains = self._views(spec, "containers", records)
        await self._gc_attempts(inits + mains)
        policy = spec.get("restartPolicy") or "Always"

        # init containers, one at a time, in order
        inits_done = True
        for v in inits:
            latest = v.latest
            if latest is not None and latest.state == ContainerState.EXITED and latest.exit_code == 0:
                continue
            inits_done = False
            if latest is not None and latest.state == ContainerState.RUNNING:
                break
            if latest is not None and latest.state == ContainerState.EXITED:
                if policy == "Never":
                    break  # the pod fails
                if self._in_backoff(v, pod):
                    break
                await self._start(pod, sb, v, "init", latest.attempt + 1, pod_ip)
                break
            if latest is not None and latest.state in (ContainerState.CREATED, ContainerState.UNKNOWN):
                await rt.remove_container(latest.id)
                self._touch()
            await self._start(pod, sb, v, "init", (latest.attempt + 1) if latest else 0, pod_ip)
            break

        if inits_done:
            for v in mains:
                latest = v.latest
                if latest is None:
                    await self._start(pod, sb, v, "regular", 0, pod_ip)
                elif latest.state == ContainerState.RUNNING:
                    self.waiting.pop(v.spec["name"], None)
                    have = latest.labels.get(LABEL_CONTAINER_HASH)
                    if have and have != container_hash(v.spec):  # e.g. kubectl set image on the pod
                        name = v.spec["name"]
                        self.event("Normal", "Killing", f"Container {name} definition changed, will be restarted")
                        self.prober.forget(latest.id)
                        await rt.stop_container(latest.id, self._grace(pod))
                        self._touch()
                        await self._start(pod, sb, v, "regular", latest.attempt + 1, pod_ip)
                elif latest.state in (ContainerState.CREATED, ContainerState.UNKNOWN):
                    await rt.remove_container(latest.id)
                    self._touch()
                    await self._start(pod, sb, v, "regular", latest.attempt + 1, pod_ip)
                else:  # exited
                    restart = policy == "Always" or (policy == "OnFailure" and latest.exit_code != 0)
                    if not restart:
                        self.waiting.pop(v.spec["name"], None)
                        continue
                    if self._in_backoff(v, pod):
                        continue
                    await self._start(pod, sb, v, "regular", latest.attempt + 1, pod_ip)
            # refresh after starts
            if self._changed:
                self._changed = False
                snap = await self._snapshot()
            records = snap.sandbox_containers(sb.id)
            inits = self._views(spec, "initContainers", records)
            mains = self._views(spec, "containers", records)
        running = set()
        for v in mains:
            latest = v.latest
            if latest is not None and latest.state == ContainerState.RUNNING:
                running.add(latest.id)
                self.prober.ensure(latest.id, v.spec, latest.started_at or latest.created_at, pod_ip)
                v.ready = self.prober.is_ready(latest.id, v.spec)
                v.started = self.prober.is_started(latest.id, v.spec)
        self.prober.keep_only(running)
        await self._check_ephemeral_storage(pod, sb, mains)
        await self._write_status(pod, sb, inits, mains)
        return False

    def _views(self, spec: Obj, field: str, records: list[ContainerStatus]) -> list[ContainerView]:
        out = []
        for c in spec.get(field) or []:
            recs = sorted((r for r in records if r.name == c["name"]), key=lambda r: (r.attempt, r.created_at))
            out.append(ContainerView(spec=c, records=recs, waiting=self.waiting.get(c["name"])))
        return out

    async def _gc_attempts(self, views: list[ContainerView]) -> None:
        for v in views:
            while len(v.records) > 2:
                old = v.records.pop(0)
                try:
                    await self.agent.runtime.remove_container(old.id)
                    self._touch()
                except Exception as e:  # noqa: BLE001
                    log.info("pod %s: removing old container %s: %s", self.key, old.id, e)

    def _in_backoff(self, v: ContainerView, pod: Obj) -> bool:
        latest = v.latest
        assert latest is not None
        key = self._backoff_key(v.spec["name"])
        finished = latest.finished_at or self.agent.clock.now()
        bo = self.agent.backoff
        if bo.in_backoff_since(key, finished):
            md = pod["metadata"]
            delay = bo.get(key)
            msg = (f"back-off {_fmt_secs(delay)} restarting failed container={v.spec['name']} "
                   f"pod={md['name']}_{md.get('namespace')}({md.get('uid')})")
            if self.waiting.get(v.spec["name"], ("",))[0] != "CrashLoopBackOff":
                self.event("Warning", "BackOff", f"Back-off restarting failed container {v.spec['name']} in pod "
                                                 f"{md['name']}_{md.get('namespace')}({md.get('uid')})")
            self.waiting[v.spec["name"]] = ("CrashLoopBackOff", msg)
            v.waiting = self.waiting[v.spec["name"]]
            return True
        bo.next(key, finished)
        return False

    async def _ensure_image(self, c: Obj) -> str:
        rt = self.agent.runtime
        image = c.get("image", "")
        policy = pull_policy(c)
        present = await rt.image_status(image)
        if policy == "Never":
            if present is None:
                raise ImageNeverPullError(f'Container image "{image}" is not present with pull policy of Never')
            return present.id
        if present is not None and policy == "IfNotPresent":
            self.event("Normal", "Pulled", f'Container image "{image}" already present on machine')
            return present.id
        key = f"image/{self.uid}/{image}"
        name = c["name"]
        cur = self.waiting.get(name)
        if cur and cur[0] in ("ErrImagePull", "ImagePullBackOff"):
            if self.agent.backoff.in_backoff_since(key, self._pull_failed_at.get(key, 0.0)):
                if cur[0] != "ImagePullBackOff":
                    self.event("Normal", "BackOff", f'Back-off pulling image "{image}"')
                self.event("Warning", "Failed", "Error: ImagePullBackOff")
                raise ImagePullBackOff(f'Back-off pulling image "{image}": {cur[1]}'
                                       if not cur[1].startswith("Back-off") else cur[1])
        self.event("Normal", "Pulling", f'Pulling image "{image}"')
        t0 = time.monotonic()
        try:
            image_id = await rt.pull_image(image)
        except (ImagePullError, ImageRefError) as e:  # the registry's message goes to the user
            self.event("Warning", "Failed", f'Failed to pull image "{image}": {e.message}')
            self.event("Warning", "Failed", "Error: ErrImagePull")
            self._pull_failed_at[key] = self.agent.clock.now()
            self.agent.backoff.next(key, self.agent.clock.now())
            raise
        dt = time.monotonic() - t0
        ist = await rt.image_status(image)
        size = f" Image size: {ist.size} bytes." if ist else ""
        self.event("Normal", "Pulled", f'Successfully pulled image "{image}" in {_fmt_secs(dt)} '
                                       f"({_fmt_secs(dt)} including waiting).{size}")
        self.agent.backoff.forget_prefix(key)
        return image_id

    async def _start(self, pod: Obj, sb: PodSandboxStatus, v: ContainerView, kind: str, attempt: int,
                     pod_ip: str) -> None:
        c = v.spec
        name = c["name"]
        rt = self.agent.runtime
        try:
            await self._ensure_image(c)
            log.debug("pod %s: image of %s present", self.key, name)
            env = await build_env(pod, c, self.agent.lookup, pod_ip=pod_ip, host_ip=self.agent.node_ip,
                                  node_allocatable=self.agent.allocatable)
            mounts = self.agent.volumes.mounts(c, self.volume_paths or {})
            cfg = container_config(pod, c, image=c.get("image", ""), env=env, mounts=mounts, attempt=attempt,
                                   kind=kind, command=expand_args(c.get("command"), env),
                                   args=expand_args(c.get("args"), env),
                                   log_dir=pod_log_dir(pod, self.agent.settings))
            log.debug("pod %s: creating container %s", self.key, name)
            cid = await rt.create_container(sb.id, cfg)
            self._touch()
            self.event("Normal", "Created", f"Created container {name}")
            log.debug("pod %s: container %s created", self.key, name)
            await rt.start_container(cid)
            self._touch()
            self.event("Normal", "Started", f"Started container {name}")
            log.debug("pod %s: container %s started", self.key, name)
            self.waiting.pop(name, None)
            v.waiting = None
            await self._post_start(pod, c, cid, name)
        except (ImagePullError, ImageRefError) as e:  # an unparsable name is a failed pull too (events told)
            self._wait(v, ImagePullError.reason, e.message)
        except (ImageNeverPullError, ImagePullBackOff) as e:
            self._wait(v, e.reason, e.message)
        except (KubeletError, CreateContainerError, StartError) as e:
            self.event("Warning", "Failed", f"Error: {e.message}")
            self._wait(v, e.reason, e.message)

    def _wait(self, v: ContainerView, reason: str, message: str) -> None:
        """The container stays waiting with this reason (shown in its status)."""
        self.waiting[v.spec["name"]] = (reason, message)
        v.waiting = self.waiting[v.spec["name"]]

    async def _post_start(self, pod: Obj, c: Obj, cid: str, name: str) -> None:
        hook = ((c.get("lifecycle") or {}).get("postStart") or {})
        if not hook:
            return
        ok, msg = await self._run_hook(hook, cid, c, 30)
        if not ok:
            self.event("Warning", "FailedPostStartHook", f"PostStartHook failed: {msg}")
            await self.agent.runtime.stop_container(cid, 0)
            self._touch()

    async def _run_hook(self, hook: Obj, cid: str, c: Obj, timeout: float) -> tuple[bool, str]:
        from k8py.kubelet.prober import run_probe

        probe = dict(hook)
        probe["timeoutSeconds"] = max(1, int(timeout))
        if hook.get("sleep"):
            await self.agent.clock.sleep(float(hook["sleep"].get("seconds") or 0))
            return True, ""
        pod_ip = ((self.pod or self.last_pod).get("status") or {}).get("podIP", "")
        r = await run_probe(self.agent.runtime, cid, probe, c, pod_ip)
        return r.ok, r.message

    # ------------------------------------------------------------- ephemeral storage
    async def _check_ephemeral_storage(self, pod: Obj, sb: PodSandboxStatus, mains: list[ContainerView]) -> None:
        now = self.agent.clock.monotonic()
        if now - self._last_storage_check < self.agent.options.storage_check_period:
            return
        self._last_storage_check = now
        data_dir = getattr(self.agent.runtime, "data_dir", None)
        reason = None
        for v in mains:
            lim = ((v.spec.get("resources") or {}).get("limits") or {}).get("ephemeral-storage")
            if not lim or v.latest is None or data_dir is None:
                continue
            used = await asyncio.to_thread(dir_size, Path(data_dir) / "containers" / v.latest.id / "upper")
            if used > to_int(lim):
                reason = f'Container {v.spec["name"]} exceeded its local ephemeral storage limit "{lim}". '
                break
        if reason is None:
            for vol in (pod.get("spec") or {}).get("volumes") or []:
                ed = vol.get("emptyDir")
                if ed is None or not ed.get("sizeLimit") or ed.get("medium") == "Memory":
                    continue
                p = self.agent.volumes.pod_dir(self.uid) / "volumes" / "kubernetes.io~empty-dir" / vol["name"]
                if p.exists() and await asyncio.to_thread(dir_size, p) > to_int(ed["sizeLimit"]):
                    reason = f'Usage of EmptyDir volume "{vol["name"]}" exceeds the limit "{ed["sizeLimit"]}". '
                    break
        if reason:
            self._evicted = ("Evicted", reason)
            self.event("Warning", "Evicted", reason)
            self.wake.set()

    # ------------------------------------------------------------- status
    async def _write_status(self, pod: Obj, sb: PodSandboxStatus | None, inits: list[ContainerView],
                            mains: list[ContainerView], override_phase: str | None = None) -> None:
        now = rfc3339(self.agent.clock.now())
        spec = pod.get("spec") or {}
        old = pod.get("status") or {}
        for v in inits + mains:
            if v.waiting is None and v.spec["name"] in self.waiting:
                v.waiting = self.waiting[v.spec["name"]]
        init_st = [pstatus.container_status(v, self.image_ids) for v in inits]
        main_st = [pstatus.container_status(v, self.image_ids) for v in mains]
        if inits and not pstatus.init_done(inits):
            for cst in main_st:
                if "waiting" in cst["state"] and cst["state"]["waiting"].get("reason") == "ContainerCreating":
                    cst["state"] = {"waiting": {"reason": "PodInitializing"}}
        ph = override_phase or pstatus.phase(spec, inits, mains, main_st)
        st: Obj = {"phase": ph,
                   "conditions": pstatus.conditions(pod, sb is not None and sb.state == SandboxState.READY,
                                                    inits, main_st, ph, now),
                   "qosClass": qos_class(pod), "startTime": old.get("startTime") or now,
                   "containerStatuses": main_st}
        if self._evicted and override_phase:
            st["reason"], st["message"] = self._evicted
            for c in st["conditions"]:
                if c["type"] in ("Ready", "ContainersReady"):
                    c["status"] = "False"
        if init_st:
            st["initContainerStatuses"] = init_st
        if self.agent.node_ip:
            st["hostIP"] = self.agent.node_ip
            st["hostIPs"] = [{"ip": self.agent.node_ip}]
        ip = (sb.ip if sb else "") or (self.agent.node_ip if spec.get("hostNetwork") and sb else "")
        if ip:
            st["podIP"] = ip
            st["podIPs"] = [{"ip": ip}]
        compare = {k: old.get(k) for k in st}
        if compare == st:
            return
        if self._last_written == st:
            return
        md = pod["metadata"]
        try:
            new = await self.agent.client.patch("pods", md["name"], {"status": st}, md.get("namespace"),
                                                subresource="status")
            self._last_written = st
            log.debug("pod %s: status written (phase %s)", self.key, st["phase"])
            if new.get("metadata", {}).get("uid") == self.uid:
                self.pod = new if not self.gone else self.pod
        except ApiError as e:
            if not e.not_found:
                raise

    # ------------------------------------------------------------- termination
    async def _stop_everything(self, sandboxes: list[PodSandboxStatus], grace: float, remove: bool) -> None:
        rt = self.agent.runtime
        self.prober.stop_all()
        for sb in sandboxes:
            for c in await rt.list_containers(sb.id):
                if c.state in (ContainerState.RUNNING, ContainerState.CREATED):
                    await rt.stop_container(c.id, grace)
                    self._touch()
            if remove:
                await rt.remove_pod_sandbox(sb.id)
                self._touch()
            elif sb.state == SandboxState.READY:
                await rt.stop_pod_sandbox(sb.id)
                self._touch()

    async def terminate(self, pod: Obj | None) -> None:
        rt = self.agent.runtime
        self.prober.stop_all()
        src = pod or self.last_pod
        spec = src.get("spec") or {}
        md = src.get("metadata") or {}
        if pod is not None:
            g = md.get("deletionGracePeriodSeconds")
            grace = float(g if g is not None else spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE))
        else:
            grace = 0.0
        grace = min(grace, self.agent.options.max_kill_grace)
        specs = {c["name"]: c for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])}
        sandboxes = await self._sandboxes()

        async def stop_one(c: ContainerStatus) -> None:
            t0 = self.agent.clock.monotonic()
            cs = specs.get(c.name, {})
            self.event("Normal", "Killing", f"Stopping container {c.name}")
            pre = (cs.get("lifecycle") or {}).get("preStop")
            if pre and grace > 0:
                try:
                    ok, msg = await asyncio.wait_for(self._run_hook(pre, c.id, cs, grace), grace)
                    if not ok:
                        self.event("Warning", "FailedPreStopHook", f"PreStopHook failed: {msg}")
                except asyncio.TimeoutError:
                    self.event("Warning", "FailedPreStopHook", "PreStopHook failed: timed out")
            left = max(0.0, grace - (self.agent.clock.monotonic() - t0))
            await rt.stop_container(c.id, left if grace > 0 else 0)
            self._touch()

        running: list[ContainerStatus] = []
        for sb in sandboxes:
            running += [c for c in await rt.list_containers(sb.id)
                        if c.state in (ContainerState.RUNNING, ContainerState.CREATED)]
        results = await asyncio.gather(*(stop_one(c) for c in running), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                log.info("pod %s: stopping a container failed: %s", self.key, r)
        for sb in sandboxes:
            await rt.remove_pod_sandbox(sb.id)
            self._touch()
        await asyncio.to_thread(self.agent.volumes.teardown, self.uid)
        if md.get("name"):
            await asyncio.to_thread(shutil.rmtree, pod_log_dir(src, self.agent.settings), True)
        self.agent.backoff.forget_prefix(self.uid + "/")
        if pod is not None:
            try:
                await self.agent.client.delete("pods", md["name"], md.get("namespace"), grace_period_seconds=0,
                                               preconditions={"uid": self.uid})
            except ApiError as e:
                if not (e.not_found or e.conflict):
                    raise
