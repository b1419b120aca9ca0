"""One worker per pod UID: makes the runtime match the newest desired pod, reports status.

`update(pod)` hands the worker the newest pod (or None when it is gone from the API)
and wakes it; the worker syncs at least every `sync_period` seconds (to notice exits).
A sync reads the truth from the runtime every time (sandboxes and containers labelled
with the pod uid), so a restarted agent adopts running containers instead of
restarting them. Sync order: sandbox (volumes first) -> images -> init containers in
order -> containers, with restartPolicy and Kubernetes' crash back-off; then the
status is written through pods/status only when it changed. Sidecars (init containers
with restartPolicy Always, sidecars.py) start in that order, the next init container
once a sidecar has started; they run beside the containers, are restarted whenever they
exit, and are stopped (in reverse order) once the containers have exited for good under
a Never/OnFailure policy, which lets the pod reach Succeeded/Failed. A pod with a
deletionTimestamp (or gone from the API) is terminated (its readiness still probed and
reported while it drains; liveness and startup probes stopped): preStop hooks, the stop
signal (sidecars after the containers, in reverse order), SIGKILL after the grace
period; then its status is written once more (containers terminated, Ready=False,
phase Succeeded or Failed, as the kubelet's syncTerminatingPod does, so watchers such
as `kubectl wait --for=condition=Ready=false` see it), sandbox and volumes removed, then the pod is deleted with
gracePeriodSeconds=0 and a uid precondition. The worker then ends.
Everything it uses of its node comes through `PodWorkerDeps` (workerdeps.py).
Invariants: only this worker touches its pod's sandbox and containers; at most the two
newest attempts of a container are kept (the older one serves `logs --previous`).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

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
from k8py.kubelet.errors import ImagePullBackOff, KubeletError, RuntimeHandlerError, VolumeError
from k8py.kubelet.imagepull import ImagePuller, fmt_secs
from k8py.kubelet.prober import PodProber, run_probe
from k8py.kubelet.resize import PodResize
from k8py.kubelet.runtimecache import Snapshot
from k8py.kubelet.runtimeclass import runtime_handler
from k8py.kubelet.serviceenv import service_env
from k8py.kubelet.sidecars import TerminationOrder, is_sidecar, mains_done
from k8py.kubelet.status import ContainerView
from k8py.kubelet.volumes import dir_size
from k8py.kubelet.workerdeps import PodWorkerDeps
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

log = logging.getLogger(__name__)
TERMINAL = ("Succeeded", "Failed")
DEFAULT_GRACE = 30


def _newest_ready(sandboxes: list[PodSandboxStatus]) -> PodSandboxStatus | None:
    ready = [s for s in sandboxes if s.state == SandboxState.READY]
    return max(ready, key=lambda s: s.created_at) if ready else None


class PodWorker:
    def __init__(self, deps: PodWorkerDeps, uid: str, pod: Obj) -> None:
        self.deps = deps
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
        self._changed = False  # this sync changed the runtime (the snapshot is stale)
        self.images = ImagePuller(deps.runtime, deps.backoff, deps.clock, uid, self._short_event)
        self.prober = PodProber(deps.runtime, deps.clock, event=self._short_event,
                                on_liveness_failure=self._liveness_failed, on_change=self.wake.set)
        self.resize = PodResize(uid, deps.runtime, deps.allocations, lambda: deps.node.allocatable,
                                self._short_event)
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
                await self._idle()
        finally:
            self.prober.stop_all()
            self.resize.forget()
            self.done.set()

    async def _idle(self) -> None:
        """Until woken or `sync_period` has passed."""
        sleeper = asyncio.ensure_future(self.deps.clock.sleep(self.deps.timing.sync_period))
        waker = asyncio.ensure_future(self.wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()

    # ------------------------------------------------------------- helpers
    def event(self, type_: str, reason: str, message: str, field_path: str | None = None) -> None:
        o = dict(self.last_pod)
        o.setdefault("kind", "Pod")
        o.setdefault("apiVersion", "v1")
        self.deps.recorder.event(o, type_, reason, message)

    def _short_event(self, type_: str, reason: str, message: str) -> None:
        self.event(type_, reason, message)

    async def _liveness_failed(self, cid: str, name: str, message: str) -> None:
        self.event("Normal", "Killing", message)
        pod = self.pod or self.last_pod
        grace = int((pod.get("spec") or {}).get("terminationGracePeriodSeconds") or DEFAULT_GRACE)
        try:
            await self.deps.runtime.stop_container(cid, min(grace, self.deps.timing.max_kill_grace))
            self._touch()
        except Exception as e:  # noqa: BLE001 - logged; the next sync sees the container as it is
            log.info("pod %s: killing %s failed: %s", self.key, name, e)
        self.prober.forget(cid)
        self.wake.set()

    async def _sandboxes(self) -> list[PodSandboxStatus]:
        return [s for s in await self.deps.runtime.list_pod_sandboxes()
                if s.uid == self.uid or s.labels.get(LABEL_POD_UID) == self.uid]

    def _touch(self) -> None:
        """This worker changed the runtime: later reads must not use the old snapshot."""
        self._changed = True
        self.deps.cache.invalidate()

    async def _snapshot(self) -> Snapshot:
        return await self.deps.cache.get(self.deps.timing.sync_period / 2)

    def _grace(self, pod: Obj) -> float:
        g = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        return float(min(g if g is not None else DEFAULT_GRACE, self.deps.timing.max_kill_grace))

    def _backoff_key(self, name: str) -> str:
        return f"{self.uid}/{name}"

    # ------------------------------------------------------------- sync
    async def sync(self) -> bool:
        """One pass: terminate the pod, or make the runtime match it and report its status.
        True when the worker is done (the pod is terminated)."""
        pod = self.pod
        if self.gone or pod is None or pod["metadata"].get("deletionTimestamp"):
            await self.terminate(None if self.gone else pod)
            return True
        snap = await self._snapshot()
        sandboxes = snap.pod_sandboxes(self.uid)
        if (pod.get("status") or {}).get("phase") in TERMINAL:
            await self._stop_everything(sandboxes, grace=0, remove=False)
            return False
        sb = _newest_ready(sandboxes)
        if self._evicted:
            await self._stop_everything(sandboxes, grace=0, remove=False)
            await self._write_status(pod, sb, [], [], override_phase="Failed")
            return False
        if sb is None:
            sb = await self._new_sandbox(pod, sandboxes)
            if sb is None:
                return False
            snap = await self._snapshot()
        else:
            await self._refresh_volumes(pod)
        await self._sync_containers(pod, sb, snap)
        return False

    async def _new_sandbox(self, pod: Obj, old: list[PodSandboxStatus]) -> PodSandboxStatus | None:
        """Volumes, then a new sandbox (the old ones, dead, removed first); None if either failed."""
        if old:  # the sandbox died (e.g. the node rebooted): start over, as Kubernetes does
            self.event("Normal", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
            await self._stop_everything(old, grace=0, remove=True)
        try:
            self.volume_paths = await self.deps.volumes.setup(pod)
            self._last_volume_refresh = self.deps.clock.monotonic()
        except (VolumeError, ApiError, OSError) as e:
            msg = e.message if isinstance(e, VolumeError) else str(e)
            self.event("Warning", "FailedMount", f"MountVolume.SetUp failed: {msg}")
            spec = pod.get("spec") or {}
            await self._write_status(pod, None, self._views(spec, "initContainers", []),
                                     self._views(spec, "containers", []))
            return None
        try:
            await runtime_handler(self.deps.client, pod)
        except (RuntimeHandlerError, ApiError) as e:
            self.event("Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
            return None
        cfg = sandbox_config(pod, self.deps.settings)
        log.debug("pod %s: creating the sandbox", self.key)
        try:
            sid = await self.deps.runtime.run_pod_sandbox(cfg)
        except Exception as e:  # noqa: BLE001 - the runtime's or the network's message goes to the event
            self.event("Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
            return None
        finally:
            self.deps.cache.invalidate()
        sb = await self.deps.runtime.pod_sandbox_status(sid)
        log.debug("pod %s: sandbox %s ready (ip %s)", self.key, sid[:12], sb.ip)
        return sb

    async def _refresh_volumes(self, pod: Obj) -> None:
        """Re-project configMap/secret/downwardAPI volumes every `volume_refresh_period`."""
        if self.volume_paths is not None and (self.deps.clock.monotonic() - self._last_volume_refresh
                                              < self.deps.timing.volume_refresh_period):
            return
        try:
            self.volume_paths = await self.deps.volumes.setup(pod)
        except (VolumeError, ApiError, OSError) as e:
            log.info("pod %s: volume refresh failed: %s", self.key, e)
        self._last_volume_refresh = self.deps.clock.monotonic()

    async def _sync_containers(self, pod: Obj, sb: PodSandboxStatus, snap: Snapshot) -> None:
        """Init containers, then containers; then probes, ephemeral storage and the status."""
        spec = pod.get("spec") or {}
        pod_ip = sb.ip or (self.deps.node.ip if spec.get("hostNetwork") else "")
        inits, mains = self._pod_views(spec, snap, sb)
        await self._gc_attempts(inits + mains)
        policy = spec.get("restartPolicy") or "Always"
        stopping = mains_done(policy, mains)  # the sidecars are stopped, not restarted
        self.resize.admit(pod)
        if await self._sync_init_containers(pod, sb, inits, mains, policy, pod_ip, stopping):
            for v in mains:
                await self._sync_container(pod, sb, v, policy, pod_ip)
            if await self.resize.actuate(mains, lambda v, why: self._restart(pod, sb, v, pod_ip, why)):
                self._touch()
        if self._changed:  # read what the starts did
            self._changed = False
            snap = await self._snapshot()
            inits, mains = self._pod_views(spec, snap, sb)
        self._update_probes([v for v in inits if is_sidecar(v.spec)] + mains, pod_ip)
        await self._check_ephemeral_storage(pod, sb, mains)
        await self._write_status(pod, sb, inits, mains)
        if stopping and any(v.latest is not None and v.latest.state in (ContainerState.RUNNING, ContainerState.CREATED)
                            for v in inits):
            await self._stop_containers(pod, [sb], self._grace(pod))  # sidecars, in reverse order
            self.wake.set()  # the next sync reports them stopped (and the pod Succeeded/Failed)

    async def _sync_init_containers(self, pod: Obj, sb: PodSandboxStatus, inits: list[ContainerView],
                                    mains: list[ContainerView], policy: str, pod_ip: str, stopping: bool) -> bool:
        """Init containers in order: a regular one must exit 0, a sidecar must have started (its
        startupProbe passed), before the next starts; True once the pod is initialized. Once a
        main container exists (the pod was initialized) only the sidecars are kept running."""
        was_initialized = any(v.latest is not None for v in mains)
        for v in inits:
            if is_sidecar(v.spec):
                if not await self._sync_sidecar(pod, sb, v, pod_ip, stopping) and not was_initialized:
                    return False
                continue
            if was_initialized:
                continue
            latest = v.latest
            if latest is not None and latest.state == ContainerState.EXITED and latest.exit_code == 0:
                continue
            if latest is not None and latest.state == ContainerState.RUNNING:
                return False
            if latest is not None and latest.state == ContainerState.EXITED:
                if policy != "Never" and not self._in_backoff(v, pod):  # with Never, the pod fails
                    await self._start(pod, sb, v, "init", latest.attempt + 1, pod_ip)
                return False
            if latest is not None and latest.state in (ContainerState.CREATED, ContainerState.UNKNOWN):
                await self.deps.runtime.remove_container(latest.id)
                self._touch()
            await self._start(pod, sb, v, "init", (latest.attempt + 1) if latest else 0, pod_ip)
            return False
        return True

    async def _sync_sidecar(self, pod: Obj, sb: PodSandboxStatus, v: ContainerView, pod_ip: str,
                            stopping: bool) -> bool:
        """A sidecar: started, kept running, restarted when it exits whatever the pod's
        restartPolicy (with the crash back-off), unless the pod is `stopping`. True when it
        runs and has started (the next init container may start)."""
        latest = v.latest
        if latest is not None and latest.state == ContainerState.RUNNING:
            self.waiting.pop(v.spec["name"], None)
            if await self._restart_if_changed(pod, sb, v, "init", pod_ip):
                self.wake.set()
                return False
            self.prober.ensure(latest.id, v.spec, latest.started_at or latest.created_at, pod_ip)
            return self.prober.is_started(latest.id, v.spec)
        if stopping:
            return False
        if latest is not None and latest.state == ContainerState.EXITED:
            if self._in_backoff(v, pod):
                return False
        elif latest is not None:  # created or unknown: never started, start it over
            await self.deps.runtime.remove_container(latest.id)
            self._touch()
        await self._start(pod, sb, v, "init", (latest.attempt + 1) if latest else 0, pod_ip)
        if v.spec["name"] not in self.waiting:
            self.wake.set()  # started: the next sync sees it running and goes on
        return False

    async def _restart_if_changed(self, pod: Obj, sb: PodSandboxStatus, v: ContainerView, kind: str,
                                  pod_ip: str) -> bool:
        """A running container whose definition changed (e.g. kubectl set image on the pod) is
        stopped and started again; True if it was."""
        latest = v.latest
        assert latest is not None
        have = latest.labels.get(LABEL_CONTAINER_HASH)
        if not have or have == container_hash(v.spec):
            return False
        await self._restart(pod, sb, v, pod_ip, f"Container {v.spec['name']} definition changed, will be restarted",
                            kind)
        return True

    async def _sync_container(self, pod: Obj, sb: PodSandboxStatus, v: ContainerView, policy: str,
                              pod_ip: str) -> None:
        """One regular container: start it, restart it (changed, dead or exited per policy)."""
        latest = v.latest
        name = v.spec["name"]
        if latest is None:
            await self._start(pod, sb, v, "regular", 0, pod_ip)
        elif latest.state == ContainerState.RUNNING:
            self.waiting.pop(name, None)
            await self._restart_if_changed(pod, sb, v, "regular", pod_ip)
        elif latest.state in (ContainerState.CREATED, ContainerState.UNKNOWN):
            await self.deps.runtime.remove_container(latest.id)
            self._touch()
            await self._start(pod, sb, v, "regular", latest.attempt + 1, pod_ip)
        elif policy == "Always" or (policy == "OnFailure" and latest.exit_code != 0):  # exited: restart
            if not self._in_backoff(v, pod):
                await self._start(pod, sb, v, "regular", latest.attempt + 1, pod_ip)
        else:  # exited for good
            self.waiting.pop(name, None)

    async def _restart(self, pod: Obj, sb: PodSandboxStatus, v: ContainerView, pod_ip: str, why: str,
                       kind: str = "regular") -> None:
        """Stop the running container and start its next attempt at once (no crash back-off)."""
        latest = v.latest
        assert latest is not None
        self.event("Normal", "Killing", why)
        self.prober.forget(latest.id)
        await self.deps.runtime.stop_container(latest.id, self._grace(pod))
        self._touch()
        await self._start(pod, sb, v, kind, latest.attempt + 1, pod_ip)

    def _update_probes(self, views: list[ContainerView], pod_ip: str) -> None:
        """Probe the running containers (and only them); their readiness goes to the views."""
        running = set()
        for v in views:
            latest = v.latest
            if latest is not None and latest.state == ContainerState.RUNNING:
                running.add(latest.id)
                self.prober.ensure(latest.id, v.spec, latest.started_at or latest.created_at, pod_ip)
                v.ready = self.prober.is_ready(latest.id, v.spec)
                v.started = self.prober.is_started(latest.id, v.spec)
        self.prober.keep_only(running)

    def _pod_views(self, spec: Obj, snap: Snapshot, sb: PodSandboxStatus) -> tuple[list[ContainerView],
                                                                                    list[ContainerView]]:
        records = snap.sandbox_containers(sb.id)
        return self._views(spec, "initContainers", records), self._views(spec, "containers", records)

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
                    await self.deps.runtime.remove_container(old.id)
                    self._touch()
                except Exception as e:  # noqa: BLE001 - logged; retried on the next sync
                    log.info("pod %s: removing old container %s: %s", self.key, old.id, e)

    def _in_backoff(self, v: ContainerView, pod: Obj) -> bool:
        latest = v.latest
        assert latest is not None
        key = self._backoff_key(v.spec["name"])
        finished = latest.finished_at or self.deps.clock.now()
        bo = self.deps.backoff
        if bo.in_backoff_since(key, finished):
            md = pod["metadata"]
            delay = bo.get(key)
            msg = (f"back-off {fmt_secs(delay)} restarting failed container={v.spec['name']} "
                   f"pod={md['name']}_{md.get('namespace')}({md.get('uid')})")
            if self.waiting.get(v.spec["name"], ("",))[0] != "CrashLoopBackOff":
                self.event("Warning", "BackOff", f"Back-off restarting failed container {v.spec['name']} in pod "
                                                 f"{md['name']}_{md.get('namespace')}({md.get('uid')})")
            self._wait(v, "CrashLoopBackOff", msg)
            return True
        bo.next(key, finished)
        return False

    async def _start(self, pod: Obj, sb: PodSandboxStatus, v: ContainerView, kind: str, attempt: int,
                     pod_ip: str) -> None:
        """Image, create, start, postStart hook; a failure leaves the container waiting with its reason."""
        c = self.resize.spec_for(v.spec)  # with the resources this node allocated
        name = c["name"]
        rt = self.deps.runtime
        try:
            await self.images.ensure(c, self.waiting.get(name))
            log.debug("pod %s: image of %s present", self.key, name)
            env = await build_env(pod, c, self.deps.lookup, pod_ip=pod_ip, host_ip=self.deps.node.ip,
                                  node_allocatable=self.deps.node.allocatable,
                                  service_env=service_env(self.deps.services, pod))
            mounts = self.deps.volumes.mounts(c, self.volume_paths or {}, pod_uid=self.uid)
            cfg = container_config(pod, c, image=c.get("image", ""), env=env, mounts=mounts, attempt=attempt,
                                   kind=kind, command=expand_args(c.get("command"), env),
                                   args=expand_args(c.get("args"), env),
                                   log_dir=pod_log_dir(pod, self.deps.settings))
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
            await self._post_start(c, cid)
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

    async def _post_start(self, c: Obj, cid: str) -> None:
        hook = ((c.get("lifecycle") or {}).get("postStart") or {})
        if not hook:
            return
        ok, msg = await self._run_hook(hook, cid, c, 30)
        if not ok:
            self.event("Warning", "FailedPostStartHook", f"PostStartHook failed: {msg}")
            await self.deps.runtime.stop_container(cid, 0)
            self._touch()

    async def _run_hook(self, hook: Obj, cid: str, c: Obj, timeout: float) -> tuple[bool, str]:
        probe = dict(hook)
        probe["timeoutSeconds"] = max(1, int(timeout))
        if hook.get("sleep"):
            await self.deps.clock.sleep(float(hook["sleep"].get("seconds") or 0))
            return True, ""
        pod_ip = ((self.pod or self.last_pod).get("status") or {}).get("podIP", "")
        r = await run_probe(self.deps.runtime, cid, probe, c, pod_ip)
        return r.ok, r.message

    # ------------------------------------------------------------- ephemeral storage
    async def _check_ephemeral_storage(self, pod: Obj, sb: PodSandboxStatus, mains: list[ContainerView]) -> None:
        now = self.deps.clock.monotonic()
        if now - self._last_storage_check < self.deps.timing.storage_check_period:
            return
        self._last_storage_check = now
        reason = await self._container_over_limit(mains) or await self._empty_dir_over_limit(pod)
        if reason:
            self._evicted = ("Evicted", reason)
            self.event("Warning", "Evicted", reason)
            self.wake.set()

    async def _container_over_limit(self, mains: list[ContainerView]) -> str | None:
        data_dir = getattr(self.deps.runtime, "data_dir", None)
        for v in mains:
            lim = ((v.spec.get("resources") or {}).get("limits") or {}).get("ephemeral-storage")
            if not lim or v.latest is None or data_dir is None:
                continue
            used = await asyncio.to_thread(dir_size, Path(data_dir) / "containers" / v.latest.id / "upper")
            if used > to_int(lim):
                return f'Container {v.spec["name"]} exceeded its local ephemeral storage limit "{lim}". '
        return None

    async def _empty_dir_over_limit(self, pod: Obj) -> str | None:
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            ed = vol.get("emptyDir")
            if ed is None or not ed.get("sizeLimit") or ed.get("medium") == "Memory":
                continue
            p = self.deps.volumes.pod_dir(self.uid) / "volumes" / "kubernetes.io~empty-dir" / vol["name"]
            if p.exists() and await asyncio.to_thread(dir_size, p) > to_int(ed["sizeLimit"]):
                return f'Usage of EmptyDir volume "{vol["name"]}" exceeds the limit "{ed["sizeLimit"]}". '
        return None

    # ------------------------------------------------------------- status
    async def _write_status(self, pod: Obj, sb: PodSandboxStatus | None, inits: list[ContainerView],
                            mains: list[ContainerView], override_phase: str | None = None) -> None:
        st = self._status(pod, sb, inits, mains, override_phase)
        old = pod.get("status") or {}
        if {k: old.get(k) for k in st} == st or self._last_written == st:
            return
        md = pod["metadata"]
        try:
            new = await self.deps.client.patch("pods", md["name"], {"status": st}, md.get("namespace"),
                                               subresource="status")
            self._last_written = st
            log.debug("pod %s: status written (phase %s)", self.key, st["phase"])
            if new.get("metadata", {}).get("uid") == self.uid:
                self.pod = new if not self.gone else self.pod
        except ApiError as e:
            if not e.not_found:
                raise

    def _status(self, pod: Obj, sb: PodSandboxStatus | None, inits: list[ContainerView],
                mains: list[ContainerView], override_phase: str | None) -> Obj:
        """The pod's status as this node sees it (Kubernetes' generateAPIPodStatus)."""
        now = rfc3339(self.deps.clock.now())
        spec = pod.get("spec") or {}
        for v in inits + mains:
            if v.waiting is None and v.spec["name"] in self.waiting:
                v.waiting = self.waiting[v.spec["name"]]
        init_st = pstatus.init_container_statuses(inits, self.image_ids)
        main_st = [pstatus.container_status(v, self.image_ids) for v in mains]
        if inits and not pstatus.initialized(spec, init_st, main_st):
            for cst in main_st:
                if "waiting" in cst["state"] and cst["state"]["waiting"].get("reason") == "ContainerCreating":
                    cst["state"] = {"waiting": {"reason": "PodInitializing"}}
        ph = override_phase or pstatus.phase(spec, init_st, main_st)
        st: Obj = {"phase": ph,
                   "conditions": pstatus.conditions(pod, sb is not None and sb.state == SandboxState.READY,
                                                    init_st, main_st, ph, now),
                   "qosClass": qos_class(pod), "startTime": (pod.get("status") or {}).get("startTime") or now,
                   "containerStatuses": main_st}
        self.resize.report(st, inits + mains, (pod.get("status") or {}).get("conditions") or [], now)
        if self._evicted and override_phase:
            st["reason"], st["message"] = self._evicted
            for c in st["conditions"]:
                if c["type"] in ("Ready", "ContainersReady"):
                    c["status"] = "False"
        if init_st:
            st["initContainerStatuses"] = init_st
        node_ip = self.deps.node.ip
        if node_ip:
            st["hostIP"] = node_ip
            st["hostIPs"] = [{"ip": node_ip}]
        ip = (sb.ip if sb else "") or (node_ip if spec.get("hostNetwork") and sb else "")
        if ip:
            st["podIP"] = ip
            st["podIPs"] = [{"ip": ip}]
        return st

    # ------------------------------------------------------------- termination
    async def _stop_everything(self, sandboxes: list[PodSandboxStatus], grace: float, remove: bool) -> None:
        rt = self.deps.runtime
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

    def _termination_grace(self, pod: Obj | None) -> float:
        """deletionGracePeriodSeconds, else the spec's; 0 for a pod already gone from the API."""
        if pod is None:
            return 0.0
        g = (pod.get("metadata") or {}).get("deletionGracePeriodSeconds")
        spec = pod.get("spec") or {}
        grace = float(g if g is not None else spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE))
        return min(grace, self.deps.timing.max_kill_grace)

    async def terminate(self, pod: Obj | None) -> None:
        rt = self.deps.runtime
        src = pod or self.last_pod
        md = src.get("metadata") or {}
        sandboxes = await self._sandboxes()
        if pod is None:
            self.prober.stop_all()
            await self._stop_containers(src, sandboxes, 0.0)
        else:
            await self._drain(pod, sandboxes)
            await self._report_stopped(pod, sandboxes)
        for sb in sandboxes:
            await rt.remove_pod_sandbox(sb.id)
            self._touch()
        await asyncio.to_thread(self.deps.volumes.teardown, self.uid)
        if md.get("name"):
            await asyncio.to_thread(shutil.rmtree, pod_log_dir(src, self.deps.settings), True)
        self.deps.backoff.forget_prefix(self.uid + "/")
        if pod is not None:
            try:
                await self.deps.client.delete("pods", md["name"], md.get("namespace"), grace_period_seconds=0,
                                              preconditions={"uid": self.uid})
            except ApiError as e:
                if not (e.not_found or e.conflict):
                    raise

    async def _drain(self, pod: Obj, sandboxes: list[PodSandboxStatus]) -> None:
        """Stop the containers within the grace period; meanwhile readiness is still probed and
        a change is reported (a failing readiness probe turns the pod Ready=False as it drains)."""
        self.prober.stop_liveness()
        reporter = asyncio.ensure_future(self._report_readiness(pod, sandboxes))
        try:
            await self._stop_containers(pod, sandboxes, self._termination_grace(pod))
        finally:
            reporter.cancel()
            self.prober.stop_all()

    async def _report_readiness(self, pod: Obj, sandboxes: list[PodSandboxStatus]) -> None:
        sb = _newest_ready(sandboxes)
        if sb is None:
            return
        spec = pod.get("spec") or {}
        while True:
            self.wake.clear()
            await self.wake.wait()  # a probe result changed (or the pod was updated)
            inits, mains = self._pod_views(spec, await self._snapshot(), sb)
            for v in [v for v in inits if is_sidecar(v.spec)] + mains:
                if v.latest is not None and v.latest.state == ContainerState.RUNNING:
                    v.ready = self.prober.is_ready(v.latest.id, v.spec)
                    v.started = self.prober.is_started(v.latest.id, v.spec)
            try:
                await self._write_status(self.pod or pod, sb, inits, mains)
            except ApiError as e:
                log.info("pod %s: reporting readiness while draining failed: %s", self.key, e)

    async def _report_stopped(self, pod: Obj, sandboxes: list[PodSandboxStatus]) -> None:
        """The stopped containers' states, Ready=False and the terminal phase, written before the
        pod is deleted (Kubernetes' syncTerminatingPod), so that watchers see the pod unready."""
        sb = _newest_ready(sandboxes) or (sandboxes[-1] if sandboxes else None)
        if sb is None:
            return
        self.deps.cache.invalidate()
        spec = pod.get("spec") or {}
        inits, mains = self._pod_views(spec, await self._snapshot(), sb)
        ph = pstatus.phase(spec, pstatus.init_container_statuses(inits, self.image_ids),
                           [pstatus.container_status(v, self.image_ids) for v in mains], terminal=True)
        try:
            await self._write_status(pod, sb, inits, mains, override_phase=ph)
        except ApiError as e:
            log.info("pod %s: reporting the stopped containers failed: %s", self.key, e)

    async def _stop_containers(self, pod: Obj, sandboxes: list[PodSandboxStatus], grace: float) -> None:
        """Every running or created container at once: preStop hook, then stop within `grace`."""
        spec = pod.get("spec") or {}
        specs = {c["name"]: c for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])}
        running: list[ContainerStatus] = []
        for sb in sandboxes:
            running += [c for c in await self.deps.runtime.list_containers(sb.id)
                        if c.state in (ContainerState.RUNNING, ContainerState.CREATED)]
        order = TerminationOrder(spec, (c.name for c in running), self.deps.clock)
        results = await asyncio.gather(*(self._stop_container(c, specs.get(c.name, {}), grace, order)
                                         for c in running), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                log.info("pod %s: stopping a container failed: %s", self.key, r)

    async def _stop_container(self, c: ContainerStatus, cs: Obj, grace: float, order: TerminationOrder) -> None:
        """preStop hook, then (a sidecar: once its turn comes) the stop signal within what is left of `grace`."""
        t0 = self.deps.clock.monotonic()
        self.event("Normal", "Killing", f"Stopping container {c.name}")
        try:
            pre = (cs.get("lifecycle") or {}).get("preStop")
            if pre and grace > 0:
                try:
                    ok, msg = await asyncio.wait_for(self._run_hook(pre, c.id, cs, grace), grace)
                    if not ok:
                        self.event("Warning", "FailedPreStopHook", f"PreStopHook failed: {msg}")
                except TimeoutError:
                    self.event("Warning", "FailedPreStopHook", "PreStopHook failed: timed out")
            await order.wait_for_turn(c.name, grace - (self.deps.clock.monotonic() - t0))
            left = max(0.0, grace - (self.deps.clock.monotonic() - t0))
            await self.deps.runtime.stop_container(c.id, left if grace > 0 else 0)
            self._touch()
        finally:
            order.terminated(c.name)
