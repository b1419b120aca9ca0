"""`k8py server`: the control plane in one process (store, API server, HTTPS front, components).

Start order: data dir -> store -> ApiServer -> PKI -> HTTPS front -> kubeconfig ->
one "ready" line on stdout -> components (`run_components`). SIGINT/SIGTERM stop
everything in reverse order and exit 0. Invariants: exactly one line is printed
when ready (tests and scripts wait for it); heavy modules (schemas, cryptography)
are loaded lazily so startup stays well under a second on an existing data dir.

Components (scheduler, controllers, node agent) plug in through `COMPONENTS`:
a list of `(name, factory)` where `factory(ctx)` returns a coroutine that runs
until cancelled. Add yours in `_builtin_components` (imported lazily there).

The store is compacted as kube-apiserver does: every `--compaction-interval` (default 5m;
0 disables) to the revision observed at the previous tick (`apiserver.compaction`).

Debug-only: the admin-only `POST /debug/k8py/compact` compacts the store's history to
its current revision (so tests can make a watch hit 410 Gone); `K8PY_WATCH_HISTORY=<n>`
shortens the API server's watch cache history, so an old resourceVersion falls
through to the (compacted) store instead of being served from memory.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

log = logging.getLogger("k8py.server")

T0 = time.monotonic()


@dataclass
class ServerArgs:
    data_dir: str = "~/.k8py"
    port: int = 6443
    bind: str = "127.0.0.1"
    store: str | None = None
    no_agent: bool = False
    simulated_nodes: int = 0
    node_capacity: dict[str, str] = field(default_factory=lambda: {"cpu": "4", "memory": "8Gi", "pods": "110"})
    pod_eviction_timeout: float = 300.0
    compaction_interval: float = 300.0  # seconds; 0 disables periodic compaction
    service_cidr: str = "10.43.0.0/16"  # ClusterIPs; .1 is `kubernetes`, .10 the cluster DNS
    cluster_cidr: str = "10.42.0.0/16"  # pod addresses; each node gets a /24 of it
    service_lb_pool: str = "127.0.100.0/24"  # LoadBalancer addresses

    @property
    def cluster_dns(self) -> str:
        import ipaddress
        return str(ipaddress.ip_network(self.service_cidr, strict=False).network_address + 10)

    @property
    def data_path(self) -> Path:
        return Path(os.path.expanduser(self.data_dir)).resolve()


@dataclass
class ClusterContext:
    """What a component gets: the API server (for in-process clients), the clock, the args."""

    api: Any  # k8py.apiserver.server.ApiServer
    clock: Any  # k8py.clock.Clock
    args: ServerArgs
    pki: Any = None  # k8py.apiserver.certs.Pki (agent token, CA) for components that dial HTTPS
    server_url: str = ""
    front: Any = None  # k8py.apiserver.http.HttpFront (kubelet: sets upgrade_handler for exec)

    def client(self) -> Any:
        """A k8py Client over the in-process transport (no sockets)."""
        from k8py.client.client import Client
        from k8py.client.inprocess import InProcessTransport  # type: ignore[import-not-found]
        return Client(InProcessTransport(self.api))


ComponentFactory = Callable[[ClusterContext], Awaitable[None]]
# Extra components registered at run time (e.g. by tests or plugins): (name, factory).
COMPONENTS: list[tuple[str, ComponentFactory]] = []


def _builtin_components(args: ServerArgs) -> list[tuple[str, ComponentFactory]]:
    """The cluster's own components, each `async def run(ctx: ClusterContext)` that runs until
    cancelled. Owners add theirs in a marked section, importing lazily inside this function."""
    comps: list[tuple[str, ComponentFactory]] = []
    # ---- control-plane components (entry points owned by scheduler and controllers)
    from k8py.controllers.manager import run_in_server as run_controllers
    from k8py.scheduler.run import run as run_scheduler
    comps.append(("scheduler", run_scheduler))
    comps.append(("controller-manager", run_controllers))
    if args.simulated_nodes > 0:
        from k8py.simnode.run import run_simulated
        comps.append(("simulated-nodes", run_simulated))
    # ---- end control-plane components
    # ---- node agent (owner: kubelet): real containers when root + Linux + runc, else says what is missing
    from k8py.apiserver.nodeproxy import run_in_server as run_node_proxy  # logs/exec of remote agents' pods
    comps.append(("node-proxy", run_node_proxy))
    if not args.no_agent:
        from k8py.kubelet.agent import run_embedded
        comps.append(("agent", run_embedded))
        from k8py.proxy.run import run_in_server as run_node_services
        comps.append(("proxy-dns", run_node_services))
    # ---- end node agent
    return comps


def run_components(ctx: ClusterContext) -> list[asyncio.Task[None]]:
    """Start every component as a task. A component that crashes is logged; the others go on."""
    tasks = []
    try:
        builtin = _builtin_components(ctx.args)
    except Exception:  # noqa: BLE001 - a broken component must not take the API down with it
        log.exception("loading the cluster components failed; serving the API without them")
        builtin = []
    for name, factory in builtin + COMPONENTS:
        async def _run(name: str = name, factory: ComponentFactory = factory) -> None:
            try:
                await factory(ctx)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("component %s failed", name)
        tasks.append(asyncio.create_task(_run(), name=f"k8py-{name}"))
    return tasks


def parse_capacity(s: str) -> dict[str, str]:
    out = {}
    for part in s.split(","):
        if not part.strip():
            continue
        k, sep, v = part.partition("=")
        if not sep or not k.strip() or not v.strip():
            raise argparse.ArgumentTypeError(f"bad capacity {part!r}: want name=quantity")
        out[k.strip()] = v.strip()
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default="~/.k8py", help="state: store, PKI, kubeconfig (default ~/.k8py)")
    p.add_argument("--port", type=int, default=6443, help="HTTPS port (default 6443; 0 = any free port)")
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--store", default=None, help="store URL: sqlite (default, in the data dir) or etcd://host:port")
    p.add_argument("--no-agent", action="store_true", help="do not run the embedded node agent")
    p.add_argument("--simulated-nodes", type=int, default=0, help="run N simulated nodes (no containers)")
    p.add_argument("--node-capacity", type=parse_capacity, default="cpu=4,memory=8Gi,pods=110",
                   help="capacity of simulated nodes (default cpu=4,memory=8Gi,pods=110)")
    p.add_argument("--pod-eviction-timeout", type=float, default=300.0,
                   help="seconds a node may be NotReady before its pods are evicted")
    p.add_argument("--service-cidr", default="10.43.0.0/16",
                   help="Service ClusterIP range (default 10.43.0.0/16; its .10 is the cluster DNS)")
    p.add_argument("--cluster-cidr", default="10.42.0.0/16", help="pod address range (default 10.42.0.0/16)")
    p.add_argument("--service-lb-pool", default="127.0.100.0/24",
                   help="addresses for LoadBalancer services (default 127.0.100.0/24, loopback)")
    p.add_argument("--compaction-interval", type=_duration, default=300.0,
                   help="compact the store's history this often, to the revision seen one interval "
                        "earlier (a duration such as 5m or 90s; 0 disables; default 5m)")


def _duration(text: str) -> float:
    from k8py.apiserver.compaction import parse_duration
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def args_from(ns: argparse.Namespace) -> ServerArgs:
    cap = ns.node_capacity if isinstance(ns.node_capacity, dict) else parse_capacity(ns.node_capacity)
    return ServerArgs(data_dir=ns.data_dir, port=ns.port, bind=ns.bind, store=ns.store, no_agent=ns.no_agent,
                      simulated_nodes=ns.simulated_nodes, node_capacity=cap,
                      pod_eviction_timeout=ns.pod_eviction_timeout,
                      compaction_interval=ns.compaction_interval,
                      service_cidr=ns.service_cidr, cluster_cidr=ns.cluster_cidr, service_lb_pool=ns.service_lb_pool)


def _store_kind(url: str | None) -> str:
    if not url:
        return "sqlite"
    return url.split(":", 1)[0].split("+", 1)[0]


async def serve(args: ServerArgs, *, stop: asyncio.Event | None = None) -> int:
    from k8py.apiserver import certs, kubeconfig
    from k8py.apiserver.auth import Authenticator, User
    from k8py.apiserver.config import ApiServerConfig
    from k8py.apiserver.http import HttpFront
    from k8py.api.request import ApiResponse
    from k8py.apiserver.server import ApiServer  # type: ignore[import-not-found]
    from k8py.clock import RealClock
    from k8py.store import open_store  # type: ignore[attr-defined]

    data = args.data_path
    data.mkdir(parents=True, exist_ok=True)
    advertise = args.bind if args.bind not in ("0.0.0.0", "::", "") else "127.0.0.1"
    clock = RealClock()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass

    def phase(name: str) -> None:
        log.info("%-12s at %.3fs", name, time.monotonic() - T0)

    phase("imports")
    store = open_store(args.store, str(data))
    await store.start()
    phase("store")
    config = ApiServerConfig(advertise_address=advertise, port=args.port, service_cidr=args.service_cidr,
                             cluster_cidr=args.cluster_cidr, cluster_dns=args.cluster_dns)
    if os.environ.get("K8PY_WATCH_HISTORY"):  # debug: a short watch cache history makes 410s reachable
        config.watch_history = int(os.environ["K8PY_WATCH_HISTORY"])
    api = ApiServer(store, config, clock)
    await api.start()
    phase("api")

    import ipaddress
    service_ip = str(next(ipaddress.ip_network(config.service_cidr).hosts()))  # the `kubernetes` Service's
    pki = certs.ensure_pki(data, certs.default_sans(advertise, config.cluster_domain,
                                                     service_ip))
    auth = Authenticator()
    auth.add_token(pki.agent_token, User("system:node:k8py-agent", ("system:nodes", "system:masters",
                                                                   "system:authenticated")))
    # Service-account tokens (TokenRequest), signed with a key kept in the PKI dir.
    from k8py.apiserver.tokens import TokenIssuer
    tokens = TokenIssuer(pki.dir, clock.now)
    api.tokens = tokens
    auth.token_checkers.append(api.authenticate_token)
    front = HttpFront(api.handle, ssl_context=pki.server_ssl_context(), authenticator=auth)
    phase("pki")

    async def compact_once(_req: Any) -> Any:
        rev = await store.current_revision()
        await store.compact(rev)
        return ApiResponse(200, {"kind": "Status", "apiVersion": "v1", "status": "Success",
                                 "message": f"compacted at revision {rev}", "code": 200})

    front.debug_handlers["compact"] = compact_once
    port = await front.start(args.bind, args.port)
    url = kubeconfig.server_url(args.bind, port)
    kc = kubeconfig.write(data / "kubeconfig", pki, url)

    # Ready means: the API serves and the kubeconfig is written. Components start right after
    # (their imports cost a few hundred ms); being level-triggered, they catch up on anything
    # created in between.
    print(f"k8py: ready at {url} (store {_store_kind(args.store)}, data {data}); export KUBECONFIG={kc}",
          flush=True)
    log.info("ready in %.3fs (%.3fs CPU since the process started)", time.monotonic() - T0, time.process_time())
    ctx = ClusterContext(api=api, clock=clock, args=args, pki=pki, server_url=url, front=front)
    tasks = run_components(ctx)
    if not args.port:  # bound to a free port: only now can the `kubernetes` Service's endpoints name it
        await api.set_endpoint(advertise, port)  # (after ready: writing loads the validation schemas)
    phase("components")
    if args.compaction_interval > 0:
        from k8py.apiserver.compaction import Compactor
        tasks.append(asyncio.create_task(Compactor(store, clock, args.compaction_interval).run(),
                                         name="k8py-compaction"))

    await stop.wait()

    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await front.close()
    await api.close()
    await store.close()
    return 0


def main(ns: argparse.Namespace) -> int:
    logging.basicConfig(level=os.environ.get("K8PY_LOG", "WARNING").upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(serve(args_from(ns)))
    except (OSError, ValueError) as e:
        print(f"k8py: cannot start: {e}", file=sys.stderr)
        return 1
