"""Liveness, readiness and startup probes of one pod's containers, as the kubelet's prober.

One task per (container id, probe kind). A probe waits `initialDelaySeconds` after
the container started, then runs every `periodSeconds` with `timeoutSeconds`;
`successThreshold`/`failureThreshold` consecutive results flip its state. Until a
startup probe succeeds, liveness and readiness do not run. Handlers run exec (through
the runtime), httpGet (aiohttp, to the pod IP unless `host` is set; 200-399 passes)
and tcpSocket (a connection to the pod IP). Each failed attempt emits a Warning
`Unhealthy` event ("Liveness probe failed: ..."); a liveness verdict calls
`on_liveness_failure(cid, name, message)` once and stops that container's probes.
`stop_liveness` leaves only the readiness probes (a pod that drains).
Invariants: all waiting goes through the Clock; results change only by thresholds;
`stop_all` cancels every task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from k8py import KUBERNETES_VERSION
from k8py.api.types import Obj
from k8py.clock import Clock
from k8py.runtime.protocol import ContainerRuntime

# Kubernetes' probe User-Agent: kube-probe/<major>.<minor>.
_PROBE_USER_AGENT = "kube-probe/" + ".".join(KUBERNETES_VERSION.lstrip("v").split(".")[:2])

log = logging.getLogger(__name__)

EventFn = Callable[[str, str, str], None]  # (type, reason, message)
FailureFn = Callable[[str, str, str], Awaitable[None]]  # (container id, container name, message)
ChangeFn = Callable[[], None]


@dataclass
class ProbeResult:
    ok: bool
    message: str = ""


@dataclass
class ContainerProbeState:
    ready: bool
    started: bool
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def _port(probe_port: Any, container: Obj) -> int:
    if isinstance(probe_port, int) or (isinstance(probe_port, str) and probe_port.isdigit()):
        return int(probe_port)
    for p in container.get("ports") or []:
        if p.get("name") == probe_port:
            return int(p.get("containerPort"))
    raise ValueError(f"port {probe_port!r} not found in the container's ports")


async def run_probe(runtime: ContainerRuntime, cid: str, probe: Obj, container: Obj, pod_ip: str) -> ProbeResult:
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        if probe.get("exec"):
            cmd = list((probe["exec"] or {}).get("command") or [])
            r = await runtime.exec_sync(cid, cmd, timeout)
            out = (r.stdout + r.stderr).decode(errors="replace").strip()
            if r.timed_out:
                return ProbeResult(False, f"command {cmd!r} timed out")
            if r.exit_code != 0:
                return ProbeResult(False, out or f"command {cmd!r} exited with {r.exit_code}")
            return ProbeResult(True, out)
        if probe.get("httpGet"):
            import aiohttp

            hg = probe["httpGet"]
            host = hg.get("host") or pod_ip or "127.0.0.1"
            port = _port(hg.get("port"), container)
            scheme = (hg.get("scheme") or "HTTP").lower()
            path = hg.get("path") or "/"
            if not path.startswith("/"):
                path = "/" + path
            url = f"{scheme}://{host}:{port}{path}"
            headers = {"User-Agent": _PROBE_USER_AGENT, "Accept": "*/*"}
            for h in hg.get("httpHeaders") or []:
                headers[h.get("name", "")] = h.get("value", "")
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:
                async with s.get(url, headers=headers, ssl=False, allow_redirects=True) as resp:
                    body = (await resp.content.read(10 * 1024)).decode(errors="replace")
                    if 200 <= resp.status < 400:
                        return ProbeResult(True, body)
                    return ProbeResult(False, f"HTTP probe failed with statuscode: {resp.status}")
        if probe.get("tcpSocket"):
            ts = probe["tcpSocket"]
            host = ts.get("host") or pod_ip or "127.0.0.1"
            port = _port(ts.get("port"), container)
            try:
                _r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            except TimeoutError:
                return ProbeResult(False, f"dial tcp {host}:{port}: i/o timeout")
            w.close()
            return ProbeResult(True)
        if probe.get("grpc"):
            return ProbeResult(False, "grpc probes are not supported by k8py")
        return ProbeResult(False, "probe has no handler")
    except TimeoutError:
        return ProbeResult(False, f"Get probe: context deadline exceeded (Client.Timeout exceeded after {timeout:g}s)")
    except (OSError, ValueError) as e:
        return ProbeResult(False, str(e))
    except Exception as e:  # noqa: BLE001 - aiohttp errors, runtime errors: a failed probe
        return ProbeResult(False, f"{type(e).__name__}: {e}")


class PodProber:
    """Probes of one pod's running containers."""

    def __init__(self, runtime: ContainerRuntime, clock: Clock, *, event: EventFn,
                 on_liveness_failure: FailureFn, on_change: ChangeFn) -> None:
        self.runtime = runtime
        self.clock = clock
        self.event = event
        self.on_liveness_failure = on_liveness_failure
        self.on_change = on_change
        self.states: dict[str, ContainerProbeState] = {}
        self.pod_ip = ""

    def is_ready(self, cid: str, container: Obj) -> bool:
        st = self.states.get(cid)
        if st is None:
            return not container.get("readinessProbe") and not container.get("startupProbe")
        return st.ready

    def is_started(self, cid: str, container: Obj) -> bool:
        st = self.states.get(cid)
        if st is None:
            return not container.get("startupProbe")
        return st.started

    def ensure(self, cid: str, container: Obj, started_at: float, pod_ip: str) -> None:
        """Start probing a running container (no-op if already probed)."""
        self.pod_ip = pod_ip
        if cid in self.states:
            return
        has_startup = bool(container.get("startupProbe"))
        st = ContainerProbeState(ready=not container.get("readinessProbe") and not has_startup,
                                 started=not has_startup)
        self.states[cid] = st
        loop = asyncio.get_running_loop()
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = container.get(kind)
            if probe:
                st.tasks.append(loop.create_task(self._loop(cid, container, kind, probe, started_at, st), name=kind))

    def forget(self, cid: str) -> None:
        st = self.states.pop(cid, None)
        if st:
            for t in st.tasks:
                t.cancel()

    def keep_only(self, cids: set[str]) -> None:
        for cid in list(self.states):
            if cid not in cids:
                self.forget(cid)

    def stop_liveness(self) -> None:
        """Stop the liveness and startup probes, keep the readiness ones (a pod being deleted:
        Kubernetes keeps probing readiness while it drains, and restarts nothing)."""
        for st in self.states.values():
            for t in st.tasks:
                if t.get_name() != "readinessProbe":
                    t.cancel()

    def stop_all(self) -> None:
        for cid in list(self.states):
            self.forget(cid)

    async def _loop(self, cid: str, container: Obj, kind: str, probe: Obj, started_at: float,
                    st: ContainerProbeState) -> None:
        name = container["name"]
        label = {"startupProbe": "Startup", "livenessProbe": "Liveness", "readinessProbe": "Readiness"}[kind]
        period = float(probe.get("periodSeconds") or 10)
        delay = float(probe.get("initialDelaySeconds") or 0)
        succ_th = int(probe.get("successThreshold") or 1)
        fail_th = int(probe.get("failureThreshold") or 3)
        wait = started_at + delay - self.clock.now()
        if wait > 0:
            await self.clock.sleep(wait)
        successes = failures = 0
        while True:
            if kind != "startupProbe" and not st.started:
                await self.clock.sleep(min(period, 1.0))
                continue
            if kind == "startupProbe" and st.started:
                return
            res = await run_probe(self.runtime, cid, probe, container, self.pod_ip)
            if res.ok:
                successes, failures = successes + 1, 0
                if kind == "readinessProbe" and not st.ready and successes >= succ_th:
                    st.ready = True
                    self.on_change()
                elif kind == "startupProbe" and successes >= 1:
                    st.started = True
                    if not container.get("readinessProbe"):
                        st.ready = True
                    self.on_change()
                    return
            else:
                failures, successes = failures + 1, 0
                self.event("Warning", "Unhealthy", f"{label} probe failed: {res.message}")
                if failures >= fail_th:
                    if kind == "readinessProbe":
                        if st.ready:
                            st.ready = False
                            self.on_change()
                    else:  # liveness or startup: the container is restarted
                        msg = (f"Container {name} failed {label.lower()} probe, will be restarted")
                        await self.on_liveness_failure(cid, name, msg)
                        return
            await self.clock.sleep(period)
