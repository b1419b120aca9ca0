"""The node agent (kubelet): registers the Node, renews its Lease, runs a pod worker
per pod bound to it, and serves logs/exec for its pods.

`NodeAgent(client, runtime, network, node_name, clock, options).run()`:
 1. register (or update) the Node: real capacity/allocatable, conditions, nodeInfo;
 2. wait up to `pod_cidr_wait` seconds for spec.podCIDR (the node IPAM controller),
    else use `fallback_pod_cidr`; `network.start(pod_cidr)` sets up the bridge and
    returns the node IP pods see (the bridge gateway);
 3. adopt: every runtime sandbox whose pod no longer exists is removed (after the
    first pod list), the others are picked up by their pod's worker;
 4. watch pods with spec.nodeName=<node>; one PodWorker per uid (newest state wins);
 5. every `lease_interval` renew the Lease, every `status_interval` post node status.

The component entry point is `kubelet/run.py` (in `k8py server` and in `k8py agent`); it
needs root, Linux and runc (`missing_requirements`), else says exactly what is missing.
Tunables of the agent come from environment variables (K8PY_AGENT_*: see
`options_from_env`), so parallel test clusters on one machine do not collide.
Invariant: restarting the agent never restarts running containers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from k8py.api.types import Obj
from k8py.api.wellknown import ANNOTATION_MIRROR_POD, ANNOTATION_NODE_TTL
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.events import EventRecorder
from k8py.client.informer import Informer, namespace_index
from k8py.client.nodelease import NodeLease
from k8py.clock import Clock, rfc3339
from k8py.component import NodeTLS
from k8py.kubelet.backoff import Backoff
from k8py.kubelet.containerconfig import ClusterSettings
from k8py.kubelet.eviction import DEFAULT_EVICTION_HARD, EvictionManager, parse_thresholds
from k8py.kubelet.localpathgc import stale_volume_dirs
from k8py.kubelet.node import NodeFacts
from k8py.kubelet.podworker import PodWorker
from k8py.kubelet.runtimecache import RuntimeCache
from k8py.kubelet.tokenmanager import TokenManager
from k8py.kubelet.volumes import VolumeManager
from k8py.kubelet.workerdeps import NodeState, PodWorkerDeps, WorkerTiming
from k8py.runtime.protocol import ContainerRuntime, PodSandboxConfig

log = logging.getLogger(__name__)


@dataclass
class AgentOptions:
    root_dir: str = "/var/lib/k8py/kubelet"  # pods/<uid>/volumes/...
    log_root: str = "/var/log/pods"
    storage_dir: str = "/var/lib/k8py/storage"
    cluster_dns: str = "10.43.0.10"
    cluster_domain: str = "cluster.local"
    fallback_pod_cidr: str = "10.42.0.0/24"
    pod_cidr: str = ""  # fixed pod CIDR (skips waiting for node IPAM)
    pod_cidr_wait: float = 5.0
    node_ip: str = ""  # default: what the network returns (the bridge gateway)
    flannel_backend: str = ""  # host-gw or vxlan: the pods' MTU follows it (`network.mtu`); "": 1500
    backoff_base: float = 10.0
    backoff_max: float = 300.0
    sync_period: float = 1.0
    volume_refresh_period: float = 10.0
    storage_check_period: float = 10.0
    lease_interval: float = 10.0
    status_interval: float = 30.0
    housekeeping_period: float = 10.0
    max_kill_grace: float = 3600.0
    system_reserved_cpu: str = "100m"
    system_reserved_memory: str = "256Mi"
    max_pods: int = 110
    # the kubelet's --container-log-max-size / --container-log-max-files (10Mi, 5): each
    # container's CRI log is rotated past max_size, at most max_files files kept (current included)
    container_log_max_size: int = 10 << 20
    container_log_max_files: int = 5
    # the kubelet's --pod-max-pids: pids.max of every pod's cgroup. Kubernetes' default is -1
    # (unlimited); k8py's is 4096, so that a fork bomb in one pod cannot exhaust the node's pids
    # (pid_max is often 32768) and the node stays Ready; -1 or 0: unlimited
    pod_max_pids: int = 4096
    # the kubelet's --eviction-hard (kubelet/eviction.py): the pressure conditions' thresholds
    eviction_hard: str = DEFAULT_EVICTION_HARD
    kubelet_port: int = 10250  # the agent's own HTTPS endpoint (logs/exec for a remote server)
    labels: dict[str, str] = field(default_factory=dict)


class NodeNetwork(Protocol):
    """The node's side of pod networking, as the agent needs it."""

    async def start(self, pod_cidr: str) -> str:
        """Set up the node for pods of `pod_cidr`; returns the node IP pods see ("" if none)."""
        ...


class BridgeNodeNetwork:
    """PodNetwork + NodeNetwork over network.BridgeNetwork, created once the pod CIDR is known."""

    def __init__(self, cluster_cidr: str, service_cidr: str, state_dir: str | Path, bridge: str | None = None,
                 backend: str = "", node_ip: str = "") -> None:
        self.cluster_cidr = cluster_cidr
        self.backend, self.node_ip = backend, node_ip  # the pods' MTU follows them (`network.mtu`)
        self.service_cidr = service_cidr
        self.state_dir = Path(state_dir)
        self.bridge = bridge
        self.net: Any = None

    async def start(self, pod_cidr: str) -> str:
        from k8py.network.bridge import BRIDGE, BridgeNetwork
        from k8py.network.mtu import pod_mtu

        self.net = BridgeNetwork(pod_cidr, self.cluster_cidr, self.service_cidr, self.state_dir,
                                 bridge=self.bridge or BRIDGE, mtu=await pod_mtu(self.backend, self.node_ip))
        await self.net.ensure_node()
        return str(self.net.gateway)

    async def setup(self, netns_path: str, pod: PodSandboxConfig) -> str:
        if self.net is None:
            raise RuntimeError("the node network is not ready yet")
        return str(await self.net.setup(netns_path, pod))

    async def teardown(self, netns_path: str, pod: PodSandboxConfig) -> None:
        if self.net is not None:
            await self.net.teardown(netns_path, pod)


class NodeAgent:
    def __init__(self, client: Client, runtime: ContainerRuntime, network: NodeNetwork | None, node_name: str,
                 clock: Clock, options: AgentOptions | None = None) -> None:
        self.client = client
        self.runtime = runtime
        self.network = network
        self.node_name = node_name
        self.clock = clock
        self.options = options or AgentOptions()
        o = self.options
        self.settings = ClusterSettings(o.cluster_dns, o.cluster_domain, o.log_root)
        self.backoff = Backoff(clock, o.backoff_base, o.backoff_max)
        self.cache = RuntimeCache(runtime, clock)
        self.tokens = TokenManager(client, clock)
        self.volumes = VolumeManager(o.root_dir, self.lookup, tokens=self.tokens, storage_base=o.storage_dir)
        self.facts = NodeFacts(node_name, o.root_dir, f"{runtime.name}://k8py",
                               o.system_reserved_cpu, o.system_reserved_memory, o.max_pods,
                               EvictionManager(parse_thresholds(o.eviction_hard), clock))
        self.recorder = EventRecorder(client, "kubelet", clock, host=node_name)
        self.lease = NodeLease(client, node_name, clock)
        self.node = NodeState(node_name, ip=o.node_ip)
        self.services = Informer(client, "services", clock=clock)  # for the service env variables
        self.services.add_index("namespace", namespace_index)
        self.worker_deps = PodWorkerDeps(
            client=client, runtime=runtime, clock=clock, cache=self.cache, volumes=self.volumes,
            backoff=self.backoff, settings=self.settings,
            timing=WorkerTiming(o.sync_period, o.volume_refresh_period, o.storage_check_period, o.max_kill_grace),
            recorder=self.recorder, lookup=self.lookup, services=self.services, node=self.node)
        self.workers: dict[str, PodWorker] = {}
        self.pods: Informer | None = None
        self.pod_cidr = ""
        self.ready = asyncio.Event()
        self._node: Obj | None = None

    async def lookup(self, kind: str, namespace: str, name: str) -> Obj | None:
        return await self.client.get_or_none(kind, name, namespace or None)

    # ------------------------------------------------------------- the Node
    def node_object(self) -> Obj:
        now = rfc3339(self.clock.now())
        cap = self.facts.capacity()
        self.node.allocatable = self.facts.allocatable(cap)
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node_name, "labels": {**self.facts.labels(), **self.options.labels},
                             "annotations": {ANNOTATION_NODE_TTL: "0"}},
                "spec": {}, "status": self._status(now, [])}

    def _status(self, now: str, old_conditions: list[Obj]) -> Obj:
        cap = self.facts.capacity()
        self.node.allocatable = self.facts.allocatable(cap)
        return {"capacity": cap, "allocatable": self.node.allocatable,
                "conditions": self.facts.conditions(now, old_conditions),
                "addresses": self.facts.addresses(self.node.ip),
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.options.kubelet_port}},
                "nodeInfo": self.facts.node_info()}

    async def register(self) -> Obj:
        try:
            node = await self.client.create("nodes", self.node_object())
        except ApiError as e:
            if not e.already_exists:
                raise
            node = await self.client.get("nodes", self.node_name)
            want = self.node_object()["metadata"]["labels"]
            node = await self.client.patch("nodes", self.node_name, {"metadata": {"labels": want}})
        self.lease.node_uid = node["metadata"].get("uid")
        self._node = node
        await self.post_status()
        return node

    async def post_status(self) -> None:
        old = ((self._node or {}).get("status") or {}).get("conditions") or []
        st = self._status(rfc3339(self.clock.now()), old)
        try:
            st["images"] = [{"names": (i.repo_digests + i.repo_tags)[:5], "sizeBytes": i.size}
                            for i in (await self.runtime.list_images())[:50]]
        except Exception:  # noqa: BLE001 - images are informational
            pass
        self._node = await self.client.patch("nodes", self.node_name, {"status": st}, subresource="status")

    async def _wait_pod_cidr(self) -> str:
        if self.options.pod_cidr:
            return self.options.pod_cidr
        deadline = self.clock.monotonic() + self.options.pod_cidr_wait
        while True:
            node = await self.client.get("nodes", self.node_name)
            cidr = (node.get("spec") or {}).get("podCIDR")
            if cidr:
                return str(cidr)
            if self.clock.monotonic() >= deadline:
                log.warning("node %s: no podCIDR from the node IPAM controller after %.0fs; using %s",
                            self.node_name, self.options.pod_cidr_wait, self.options.fallback_pod_cidr)
                return self.options.fallback_pod_cidr
            await self.clock.sleep(0.2)

    # ------------------------------------------------------------- pods
    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("uid") != new["metadata"].get("uid"):  # deleted and re-created by name
            self._on_pod_deleted(old)
        self._on_pod(new)

    def _on_pod(self, pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName") != self.node_name:
            return
        if ANNOTATION_MIRROR_POD in (pod["metadata"].get("annotations") or {}):
            return  # a static pod's mirror: what it shows runs elsewhere (`cli.mirrorpods`)
        uid = str(pod["metadata"].get("uid"))
        w = self.workers.get(uid)
        if w is None:
            w = PodWorker(self.worker_deps, uid, pod)
            self.workers[uid] = w
            w.start()
            assert w.task is not None
            w.task.add_done_callback(self._done_callback(uid, w))
        else:
            w.update(pod)

    def _on_pod_deleted(self, pod: Obj) -> None:
        w = self.workers.get(str(pod["metadata"].get("uid")))
        if w is not None:
            w.update(None)

    def _done_callback(self, uid: str, w: PodWorker) -> Any:
        return lambda _task: self._worker_done(uid, w)

    def _worker_done(self, uid: str, w: PodWorker) -> None:
        if self.workers.get(uid) is w:
            del self.workers[uid]

    async def housekeeping(self) -> None:
        """Remove sandboxes and pod dirs of pods this node no longer has."""
        if self.pods is None or not self.pods.has_synced:
            return
        live = {str(p["metadata"].get("uid")) for p in self.pods.list()} | set(self.workers)
        for sb in await self.runtime.list_pod_sandboxes():
            if sb.uid not in live:
                log.info("removing orphaned sandbox %s of pod %s/%s", sb.id, sb.namespace, sb.name)
                try:
                    await self.runtime.stop_pod_sandbox(sb.id)
                    await self.runtime.remove_pod_sandbox(sb.id)
                except Exception as e:  # noqa: BLE001
                    log.info("orphaned sandbox %s: %s", sb.id, e)
        for uid in self.volumes.known_uids():
            if uid not in live:
                await asyncio.to_thread(self.volumes.teardown, uid)
        await self._reclaim_local_volumes()
        logs = Path(self.options.log_root)
        if logs.is_dir():
            for d in logs.iterdir():  # <ns>_<name>_<uid>
                if d.is_dir() and d.name.rsplit("_", 1)[-1] not in live and d.name.count("_") >= 2:
                    await asyncio.to_thread(shutil.rmtree, d, True)

    async def _reclaim_local_volumes(self) -> None:
        """Remove the directories of local-path volumes whose PV is gone (reclaim Delete)."""
        try:
            pvs = (await self.client.list("persistentvolumes")).get("items") or []
        except ApiError as e:
            log.info("local volumes: cannot list PVs: %s", e)
            return
        for d in stale_volume_dirs(self.options.storage_dir, pvs):
            log.info("removing the directory of deleted volume %s", d.name)
            await asyncio.to_thread(shutil.rmtree, d, True)

    async def _loop(self, period: float, fn: Any, what: str) -> None:
        while True:
            await self.clock.sleep(period)
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001
                log.info("node %s: %s failed: %s", self.node_name, what, e)

    async def _pods_after_services(self, pods: Informer) -> None:
        """The pods informer, once the Services are known (no container starts without them)."""
        await self.services.wait_synced()
        await pods.run()

    async def run(self) -> None:
        o = self.options
        Path(o.root_dir).mkdir(parents=True, exist_ok=True)
        await self.register()
        try:
            await self.lease.renew()
        except ApiError as e:
            log.info("lease: %s", e)
        self.pod_cidr = await self._wait_pod_cidr()
        if self.network is not None:
            ip = await self.network.start(self.pod_cidr)
            if not self.node.ip:
                self.node.ip = ip
        if not self.node.ip:
            self.node.ip = "127.0.0.1"
        await self.post_status()
        self.pods = pods = Informer(self.client, "pods", clock=self.clock,
                                    field_selector=f"spec.nodeName={self.node_name}")
        pods.add_event_handler(on_add=self._on_pod, on_update=self._on_pod_update, on_delete=self._on_pod_deleted)
        tasks = [asyncio.create_task(self.services.run(), name="k8py-agent-services"),
                 asyncio.create_task(self._pods_after_services(pods), name="k8py-agent-pods"),
                 asyncio.create_task(self._loop(o.lease_interval, self.lease.renew, "lease renew")),
                 asyncio.create_task(self._loop(o.status_interval, self.post_status, "node status")),
                 asyncio.create_task(self._loop(o.housekeeping_period, self.housekeeping, "housekeeping"))]
        try:
            await self.services.wait_synced()
            await pods.wait_synced()
            await self.housekeeping()
            self.ready.set()
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            ws = [w.task for w in self.workers.values() if w.task is not None]
            for t in ws:
                t.cancel()
            await asyncio.gather(*tasks, *ws, return_exceptions=True)


# ----------------------------------------------------------------- embedded / CLI

def missing_requirements() -> list[str]:
    out = []
    if not sys.platform.startswith("linux"):
        out.append("Linux")
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        out.append("root (run k8py server as root)")
    if shutil.which("runc") is None:
        out.append("runc (apt install runc)")
    if shutil.which("ip") is None:
        out.append("iproute2 (apt install iproute2)")
    return out


def options_from_env(env: dict[str, str] | os._Environ[str] = os.environ) -> tuple[AgentOptions, dict[str, str]]:
    """AgentOptions plus runtime settings from K8PY_AGENT_* variables:
    ROOT (base dir, default /var/lib/k8py), STATE (default /run/k8py), ID (suffix of the
    cgroup parent, netns prefix and bridge name), POD_CIDR, CLUSTER_CIDR, SERVICE_CIDR,
    BACKOFF_BASE, STORAGE_CHECK_PERIOD, LEASE_INTERVAL (seconds between Lease renewals),
    NODE_NAME, CONTAINER_LOG_MAX_SIZE (a quantity: 10Mi), CONTAINER_LOG_MAX_FILES (>= 2),
    POD_MAX_PIDS (-1: unlimited), EVICTION_HARD (the kubelet's --eviction-hard form:
    memory.available<100Mi,nodefs.available<10%,pid.available<5%); K8PY_REGISTRIES is the
    registries.yaml. A malformed value is a ValueError naming the variable."""
    base = env.get("K8PY_AGENT_ROOT", "/var/lib/k8py")
    ident = env.get("K8PY_AGENT_ID", "")
    o = AgentOptions(root_dir=f"{base}/kubelet", log_root=env.get("K8PY_AGENT_LOG_ROOT", f"{base}/pod-logs"
                                                                  if "K8PY_AGENT_ROOT" in env else "/var/log/pods"),
                     storage_dir=f"{base}/storage", pod_cidr=env.get("K8PY_AGENT_POD_CIDR", ""))
    if env.get("K8PY_AGENT_STORAGE_CHECK_PERIOD"):
        o.storage_check_period = float(env["K8PY_AGENT_STORAGE_CHECK_PERIOD"])
    if env.get("K8PY_AGENT_LEASE_INTERVAL"):
        o.lease_interval = float(env["K8PY_AGENT_LEASE_INTERVAL"])
    if env.get("K8PY_AGENT_BACKOFF_BASE"):
        o.backoff_base = float(env["K8PY_AGENT_BACKOFF_BASE"])
        o.backoff_max = max(o.backoff_base, min(o.backoff_max, o.backoff_base * 30))
    _limits_from_env(o, env)
    rt = {"base": base, "state": env.get("K8PY_AGENT_STATE", "/run/k8py" + (f"-{ident}" if ident else "")),
          "cgroup_parent": "k8py" + (f"-{ident}" if ident else ""),
          "netns_prefix": "k8py-" + (f"{ident[:6]}-" if ident else ""),
          "bridge": ("k8pyb" + ident[:6]) if ident else "",
          "cluster_cidr": env.get("K8PY_AGENT_CLUSTER_CIDR", "10.42.0.0/16"),
          "service_cidr": env.get("K8PY_AGENT_SERVICE_CIDR", "10.43.0.0/16"),
          "registries": env.get("K8PY_REGISTRIES", "/etc/k8py/registries.yaml"),
          "node_name": env.get("K8PY_AGENT_NODE_NAME", "")}
    return o, rt


def _limits_from_env(o: AgentOptions, env: dict[str, str] | os._Environ[str]) -> None:
    from k8py.api.quantity import to_int

    def read(name: str, parse: Any, lowest: int) -> int | None:
        raw = env.get(name, "").strip()
        if not raw:
            return None
        try:
            value = int(parse(raw))
        except (ValueError, ArithmeticError):
            value = lowest - 1
        if value < lowest:
            raise ValueError(f"{name}={raw!r}: must be an integer >= {lowest}")
        return value

    size = read("K8PY_AGENT_CONTAINER_LOG_MAX_SIZE", to_int, 0)  # 0: never rotate
    files = read("K8PY_AGENT_CONTAINER_LOG_MAX_FILES", int, 2)  # the kubelet refuses fewer than 2
    pids = read("K8PY_AGENT_POD_MAX_PIDS", int, -1)
    o.container_log_max_size = o.container_log_max_size if size is None else size
    o.container_log_max_files = o.container_log_max_files if files is None else files
    o.pod_max_pids = o.pod_max_pids if pids is None else pids
    hard = env.get("K8PY_AGENT_EVICTION_HARD", "").strip()
    if hard:
        try:
            parse_thresholds(hard)
        except ValueError as e:
            raise ValueError(f"K8PY_AGENT_EVICTION_HARD={hard!r}: {e}") from None
        o.eviction_hard = hard


def build_runtime(rt: dict[str, str], network: Any, options: AgentOptions | None = None) -> Any:
    from k8py.runtime.images import ImageStore
    from k8py.runtime.mirrors import RegistriesConfig
    from k8py.runtime.registry import RegistryClient
    from k8py.runtime.runc import RuncRuntime

    regs = RegistriesConfig.load(rt["registries"]) if Path(rt["registries"]).exists() else None
    images = ImageStore(Path(rt["base"]) / "images", RegistryClient(regs))
    o = options or AgentOptions()
    return RuncRuntime(rt["state"], rt["base"], images=images, network=network,
                       cgroup_parent=rt["cgroup_parent"], netns_prefix=rt["netns_prefix"],
                       log_max_size=o.container_log_max_size, log_max_files=o.container_log_max_files,
                       pod_pids_limit=o.pod_max_pids)


async def run_agent(client: Client, clock: Clock, options: AgentOptions, rt: dict[str, str],
                    node_name: str, on_ready: Any = None, serve_tls: NodeTLS | None = None) -> None:
    """Run an agent; with `serve_tls` it also serves logs/exec/port-forward on
    `options.kubelet_port` (0: any free port) for a remote API server."""
    network = BridgeNodeNetwork(rt["cluster_cidr"], rt["service_cidr"], Path(rt["base"]) / "network",
                                bridge=rt["bridge"] or None, backend=options.flannel_backend,
                                node_ip=options.node_ip)
    runtime = build_runtime(rt, network, options)
    agent = NodeAgent(client, runtime, network, node_name, clock, options)
    server = None
    if serve_tls is not None:
        from k8py.kubelet.kubeletserver import KubeletServer
        from k8py.kubelet.streaming import Streaming, client_pod_getter

        streaming = Streaming(runtime, node_name, clock, client_pod_getter(client))
        server = KubeletServer(streaming, serve_tls, options.kubelet_port)
        options.kubelet_port = await server.start()
    if on_ready is not None:
        on_ready(agent)
    try:
        await agent.run()
    finally:
        await agent.recorder.close()  # no event outlives the agent
        if server is not None:
            await server.close()
        await runtime.close()
