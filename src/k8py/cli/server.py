"""`k8py server`: the control plane in one process (store, API server, HTTPS front, components).

`serve` runs named steps: store -> API server -> PKI -> HTTPS front (with the node
proxy) -> kubeconfig and one "ready" line on stdout -> components, each
`<component>/run.py:run(ctx)` with a `component.ClusterContext` built here
(`_context`). SIGINT/SIGTERM stop everything in reverse order and exit 0: the
components, awaited with whatever they started, before the front, the API server and
the store close. Invariants: exactly one line is printed when ready (tests and scripts
wait for it); heavy modules (schemas, cryptography) are loaded lazily so startup stays
well under a second on an existing data dir.

Components plug in through `_builtin_components` (imported lazily there) and, for tests
or plugins, `COMPONENTS`: a list of `(name, run)` with `run(ctx)` running until cancelled.

The store is compacted as kube-apiserver does: every `--compaction-interval` (default 5m;
0 disables) to the revision observed at the previous tick (`apiserver.compaction`).

Lab only: `K8PY_SERVER_LEASE_TTL=<seconds>` shortens the TTL of the servers' records in the
`kubernetes` endpoints (Kubernetes' 15 s; renewed every 2/3 of it) so a killed server leaves sooner.

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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from k8py.api.request import ApiRequest
    from k8py.apiserver.auth import Authenticator
    from k8py.apiserver.certs import Pki
    from k8py.apiserver.http import DebugHandler, HttpFront
    from k8py.apiserver.nodeproxy import ForwardingNodeProxy
    from k8py.apiserver.server import ApiServer
    from k8py.cli.nodehosts import ServedNodeHosts
    from k8py.client.client import Client
    from k8py.client.leaderelection import LeaderElectionConfig
    from k8py.clock import RealClock
    from k8py.component import ClusterContext, ClusterOptions, Component, LocalNode
    from k8py.nodehost.layout import HostNetwork
    from k8py.store import Store
    from k8py.store.etcd import EtcdTLS

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
    node_monitor_grace_period: float = 40.0
    compaction_interval: float = 300.0  # seconds; 0 disables periodic compaction
    service_cidr: str = "10.43.0.0/16"  # ClusterIPs; .1 is `kubernetes`, .10 the cluster DNS
    cluster_cidr: str = "10.42.0.0/16"  # pod addresses; each node gets a /24 of it
    service_lb_pool: str = "127.0.100.0/24"  # LoadBalancer addresses
    encryption_provider_config: str | None = None  # None: <data-dir>/encryption-config.yaml, made on first start
    leader_elect: bool = True  # the scheduler and the controllers run only while this server holds their Lease
    leader_elect_lease_duration: float = 15.0
    leader_elect_renew_deadline: float = 10.0
    leader_elect_retry_period: float = 2.0
    join_data_dir: str | None = None  # copy the PKI and the encryption config of this server's data dir
    join: str | None = None  # https://ADDR:PORT of a server of the cluster: fetch its CA and keys with `token`
    token: str | None = None  # the cluster's join token (K10...::server:...; @file reads it from a file)
    authorization_mode: str = "RBAC"  # or AlwaysAllow
    nodes: int | None = None  # node hosts node-1..node-N on this machine (no embedded node); None: the embedded node
    node_network: str = "10.41.0.0/24"  # the node hosts' link; its first address is the host bridge's
    ingress_address: str = ""  # the ingress controller's listen address ("" = the LB pool's last address)
    ingress_http_port: int = 80
    ingress_https_port: int = 443
    etcd_cafile: str | None = None  # TLS to etcd (kube-apiserver's flags): the members' CA,
    etcd_certfile: str | None = None  # our client certificate
    etcd_keyfile: str | None = None  # and its key
    flannel_backend: str = "host-gw"  # the node hosts' pod routes between nodes: host-gw or vxlan
    kube_api_qps: float = 0.0  # the scheduler's and each controller's client; 0 = Kubernetes' default, < 0 = none
    kube_api_burst: int = 0
    components: str = "inprocess"  # or "processes": `cli.supervisor` runs the control plane as processes
    control_plane: bool = True  # False: the scheduler and controller manager run in processes of their own
    node_in_process: bool = True  # False: the embedded node's agent, proxy and DNS run in `k8py kubelet`

    def to_json(self) -> str:
        """These arguments for a supervised process (`k8py kube-apiserver` and the others)."""
        import dataclasses
        import json
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServerArgs:
        import json
        return cls(**json.loads(text))

    def leader_election(self) -> LeaderElectionConfig:
        from k8py.client.leaderelection import LeaderElectionConfig
        config = LeaderElectionConfig(self.leader_elect_lease_duration, self.leader_elect_renew_deadline,
                                      self.leader_elect_retry_period)
        config.validate()
        return config

    @property
    def cluster_dns(self) -> str:
        import ipaddress
        return str(ipaddress.ip_network(self.service_cidr, strict=False).network_address + 10)

    @property
    def data_path(self) -> Path:
        return Path(os.path.expanduser(self.data_dir)).resolve()


# Extra components registered at run time (e.g. by tests or plugins): (name, run).
COMPONENTS: list[tuple[str, Component]] = []


def _builtin_components(args: ServerArgs) -> list[tuple[str, Component]]:
    """The cluster's own components, each `<component>/run.py:run(ctx)` (imported lazily)."""
    from k8py.api.wellknown import USER_KUBE_CONTROLLER_MANAGER, USER_KUBE_SCHEDULER
    from k8py.cli.components import as_user, elected
    from k8py.controllers.run import run as run_controllers
    from k8py.scheduler.run import run as run_scheduler

    scheduler: Component = run_scheduler
    controllers: Component = run_controllers
    if args.leader_elect:
        config = args.leader_election()
        scheduler = elected("kube-scheduler", run_scheduler, config)
        controllers = elected("kube-controller-manager", run_controllers, config)
    # Each as its own user, holding its bootstrap roles (controllerpolicy: the controllers' roles).
    comps: list[tuple[str, Component]] = [("scheduler", as_user(USER_KUBE_SCHEDULER, scheduler)),
                                          ("controller-manager", as_user(USER_KUBE_CONTROLLER_MANAGER, controllers))]
    if not args.control_plane:  # `k8py kube-scheduler` and `k8py kube-controller-manager` run them
        comps = []
    if args.simulated_nodes > 0:
        from k8py.simnode.run import run as run_simulated
        comps.append(("simulated-nodes", run_simulated))
    if args.nodes is not None:  # node hosts run their own node components; the machine keeps routes and a proxy
        from k8py.network.run import run as run_routes
        from k8py.proxy.run import run as run_proxy
        comps += [("proxy", run_proxy), ("routes", run_routes)]
    elif not args.no_agent:  # the embedded node: real containers when root + Linux + runc, else says what is missing
        from k8py.cli.agent import node_components
        if args.node_in_process:  # else `k8py kubelet` runs them (`cli.nodeprocess`)
            comps += node_components()
        from k8py.ingress.run import run as run_ingress  # on the embedded node: its nginx reaches the pods
        comps.append(("ingress", run_ingress))
    return comps


def run_components(ctx: ClusterContext, args: ServerArgs) -> list[asyncio.Task[None]]:
    """Start every component as a task. A component that crashes is logged; the others go on."""
    from k8py.cli.components import start
    try:
        builtin = _builtin_components(args)
    except Exception:  # noqa: BLE001 - a broken component must not take the API down with it
        log.exception("loading the cluster components failed; serving the API without them")
        builtin = []
    return start(ctx, builtin + COMPONENTS)


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
    p.add_argument("--etcd-cafile", default=None, help="etcd over TLS: the CA file verifying the members")
    p.add_argument("--etcd-certfile", default=None, help="etcd over TLS: the client certificate (PEM)")
    p.add_argument("--etcd-keyfile", default=None, help="etcd over TLS: the client certificate's key (PEM)")
    p.add_argument("--no-agent", action="store_true", help="do not run the embedded node agent")
    p.add_argument("--simulated-nodes", type=int, default=0, help="run N simulated nodes (no containers)")
    p.add_argument("--node-capacity", type=parse_capacity, default="cpu=4,memory=8Gi,pods=110",
                   help="capacity of simulated nodes (default cpu=4,memory=8Gi,pods=110)")
    p.add_argument("--pod-eviction-timeout", type=float, default=300.0,
                   help="seconds a node may be NotReady before its pods are evicted")
    p.add_argument("--node-monitor-grace-period", type=float, default=40.0,
                   help="seconds without a heartbeat before a node is marked NotReady (Kubernetes: 40)")
    p.add_argument("--service-cidr", default="10.43.0.0/16",
                   help="Service ClusterIP range (default 10.43.0.0/16; its .10 is the cluster DNS)")
    p.add_argument("--cluster-cidr", default="10.42.0.0/16", help="pod address range (default 10.42.0.0/16)")
    p.add_argument("--service-lb-pool", default="127.0.100.0/24",
                   help="addresses for LoadBalancer services (default 127.0.100.0/24, loopback)")
    p.add_argument("--compaction-interval", type=_duration, default=300.0,
                   help="compact the store's history this often, to the revision seen one interval "
                        "earlier (a duration such as 5m or 90s; 0 disables; default 5m)")
    p.add_argument("--nodes", type=int, default=None, metavar="N",
                   help="run N real nodes node-1..node-N on this machine, each a host of its own (network "
                        "namespace, address, runc state, agent), instead of the embedded node; "
                        "`k8py node add|stop|start|rm` manage them")
    p.add_argument("--node-network", default="10.41.0.0/24",
                   help="the node hosts' network (default 10.41.0.0/24; its first address is this machine's)")
    p.add_argument("--flannel-backend", choices=("host-gw", "vxlan"), default="host-gw",
                   help="with --nodes: pod routes between the nodes, host-gw (default: each node's podCIDR via "
                        "its address) or vxlan (a vxlan device k8py.1 on each node, as flannel's vxlan)")
    p.add_argument("--encryption-provider-config", default=None, metavar="FILE",
                   help="EncryptionConfiguration for data at rest (default: <data-dir>/encryption-config.yaml, "
                        "made with a fresh aescbc key for Secrets on the first start; identity first opts out)")
    p.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=True,
                   help="run the scheduler and the controllers only while this server holds their Lease "
                        "(kube-system/kube-scheduler, kube-system/kube-controller-manager; default on)")
    p.add_argument("--leader-elect-lease-duration", type=_duration, default=15.0,
                   help="how long a standby waits after the leader's last renewal before taking over (default 15s)")
    p.add_argument("--leader-elect-renew-deadline", type=_duration, default=10.0,
                   help="how long a leader keeps trying to renew before it stops leading (default 10s)")
    p.add_argument("--leader-elect-retry-period", type=_duration, default=2.0,
                   help="how often to try to take or renew the Lease (default 2s)")
    p.add_argument("--join-data-dir", default=None, metavar="DIR",
                   help="another server of the same cluster (same --store) on this machine: copy its PKI and "
                        "encryption config into this data dir on the first start (--join does it over HTTPS)")
    p.add_argument("--join", default=None, metavar="URL",
                   help="https://ADDR:PORT of a server of the cluster (same --store): on the first start, fetch "
                        "its CA and keys, authenticated by --token, so one CA and one kubeconfig serve all")
    p.add_argument("--token", default=None,
                   help="with --join: the cluster's join token K10<sha256 of the CA>::server:<secret> (the first "
                        "server's DATA_DIR/token; @file reads it); the CA is checked before the secret is sent")
    p.add_argument("--ingress-address", default="", metavar="IP",
                   help="address the ingress controller's nginx listens on (default: the last address of "
                        "--service-lb-pool, 127.0.100.254)")
    p.add_argument("--ingress-http-port", type=int, default=80, help="ingress HTTP port (default 80)")
    p.add_argument("--ingress-https-port", type=int, default=443, help="ingress HTTPS port (default 443)")
    p.add_argument("--components", choices=("processes", "inprocess"), default="processes",
                   help="processes (default): this process supervises kube-apiserver (with the store and "
                        "the embedded node), kube-scheduler and kube-controller-manager as processes of their "
                        "own, restarting a crashed one with backoff; inprocess: the whole control plane in "
                        "this process")
    p.add_argument("--authorization-mode", choices=("RBAC", "AlwaysAllow"), default="RBAC",
                   help="RBAC (default: system:masters, then Roles and bindings) or AlwaysAllow")
    p.add_argument("--kube-api-qps", type=float, default=0.0,
                   help="requests per second the scheduler and each controller may send to the API (client-side "
                        "token bucket; default Kubernetes': 50 for the scheduler, 20 for each controller; "
                        "negative: no limit)")
    p.add_argument("--kube-api-burst", type=int, default=0,
                   help="requests the scheduler and each controller may send at once above their QPS "
                        "(default Kubernetes': 100 for the scheduler, 30 for each controller)")


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
                      node_monitor_grace_period=ns.node_monitor_grace_period,
                      compaction_interval=ns.compaction_interval,
                      service_cidr=ns.service_cidr, cluster_cidr=ns.cluster_cidr, service_lb_pool=ns.service_lb_pool,
                      encryption_provider_config=getattr(ns, "encryption_provider_config", None),
                      leader_elect=getattr(ns, "leader_elect", True),
                      leader_elect_lease_duration=getattr(ns, "leader_elect_lease_duration", 15.0),
                      leader_elect_renew_deadline=getattr(ns, "leader_elect_renew_deadline", 10.0),
                      leader_elect_retry_period=getattr(ns, "leader_elect_retry_period", 2.0),
                      join_data_dir=getattr(ns, "join_data_dir", None),
                      join=getattr(ns, "join", None), token=getattr(ns, "token", None),
                      ingress_address=getattr(ns, "ingress_address", ""),
                      ingress_http_port=getattr(ns, "ingress_http_port", 80),
                      ingress_https_port=getattr(ns, "ingress_https_port", 443),
                      authorization_mode=getattr(ns, "authorization_mode", "RBAC"),
                      components=getattr(ns, "components", "inprocess"),
                      nodes=getattr(ns, "nodes", None), node_network=getattr(ns, "node_network", "10.41.0.0/24"),
                      etcd_cafile=getattr(ns, "etcd_cafile", None), etcd_certfile=getattr(ns, "etcd_certfile", None),
                      etcd_keyfile=getattr(ns, "etcd_keyfile", None),
                      flannel_backend=getattr(ns, "flannel_backend", "host-gw"),
                      kube_api_qps=getattr(ns, "kube_api_qps", 0.0), kube_api_burst=getattr(ns, "kube_api_burst", 0))


def _store_kind(url: str | None) -> str:
    if not url:
        return "sqlite"
    return url.split(":", 1)[0].split("+", 1)[0]


async def serve(args: ServerArgs, *, stop: asyncio.Event | None = None,
                signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> int:
    """Start the control plane and its components, run until `stop` is set (`signals` set
    it), then stop everything in reverse order. Returns the exit code."""
    from k8py.clock import RealClock

    stop = stop or asyncio.Event()
    _stop_on_signals(stop, signals)
    clock = RealClock()
    if args.leader_elect:
        args.leader_election()  # bad timings: a one-line error before anything starts
    await join_cluster(args)
    _phase("imports")
    store = await _start_store(args)
    api = await _start_api(args, store, clock)
    pki, auth = _start_pki(args, api, clock)
    front, node_proxy, port = await _start_front(args, api, store, pki, auth)
    hosts = await start_node_hosts(args, front, port) if args.nodes is not None else None
    url = _announce_ready(args, pki, port)
    ctx = _context(args, api, clock, pki, url, node_proxy)
    tasks = await _start_components(ctx, args, api, store, clock, port)
    if hosts is not None:
        await hosts.add_nodes(args.nodes or 0)
    await stop.wait()
    if hosts is not None:
        await hosts.close()
    await _shutdown(tasks, front, api, store)
    return 0


async def join_cluster(args: ServerArgs) -> None:
    """The data dir (0700), with the cluster's CA and keys when this server joins one: fetched
    over HTTPS with the join token (before the data dir is made) or copied from --join-data-dir.
    Safe to run twice (a joined data dir fetches nothing); the supervisor runs it before its
    children, so a bad join is one line of its own."""
    from k8py.cli import join

    copy_enc = args.encryption_provider_config is None
    if args.join:
        if not args.token:
            raise ValueError("--join needs --token (the first server's DATA_DIR/token)")
        token = args.token
        if token.startswith("@"):
            token = Path(token[1:]).read_text().strip()
        if not join.already_joined(args.data_path, token):
            body = await join.fetch(args.join, token)
            _make_data_dir(args.data_path)
            join.install(args.data_path, body, copy_encryption_config=copy_enc)
    _make_data_dir(args.data_path)
    if args.join_data_dir and not args.join:
        join.join(args.data_path, Path(os.path.expanduser(args.join_data_dir)).resolve(),
                  copy_encryption_config=copy_enc)


async def start_node_hosts(args: ServerArgs, front: HttpFront, port: int) -> ServedNodeHosts:
    from k8py.cli.nodehosts import ServedNodeHosts
    from k8py.nodehost.layout import HostNetwork

    base = _host_network(args)
    cluster = HostNetwork(base.data_dir, base.node_network, base.cluster_cidr, base.service_cidr, port,
                          registries=str(args.data_path / "nodes" / "registries.yaml"),
                          lease_interval=node_lease_interval(args.node_monitor_grace_period),
                          flannel_backend=args.flannel_backend)
    return await ServedNodeHosts.start(cluster, front)


def _stop_on_signals(stop: asyncio.Event, signals: tuple[int, ...]) -> None:
    loop = asyncio.get_running_loop()
    for sig in signals:
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass


def _phase(name: str) -> None:
    log.info("%-12s at %.3fs", name, time.monotonic() - T0)


def _advertise(args: ServerArgs) -> str:
    """The address clients and the `kubernetes` Service are told (never a wildcard); with node
    hosts, the host bridge's, which pods on every node reach (their 127.0.0.1 is their own)."""
    if args.nodes is not None:
        return _host_network(args).host_ip
    return args.bind if args.bind not in ("0.0.0.0", "::", "") else "127.0.0.1"


def _make_data_dir(path: Path) -> None:
    """The data dir holds the keys of the cluster: only its owner may enter it (0700)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _etcd_tls(args: ServerArgs) -> EtcdTLS | None:
    """The etcd client TLS the --etcd-* flags give (None without any)."""
    if not (args.etcd_cafile or args.etcd_certfile or args.etcd_keyfile):
        return None
    from k8py.store.etcd import EtcdTLS
    return EtcdTLS(args.etcd_cafile, args.etcd_certfile, args.etcd_keyfile)


async def _start_store(args: ServerArgs) -> Store:
    """The store, wrapped so that what the encryption configuration names (Secrets by
    default) is encrypted at rest."""
    from k8py.apiserver.encryption import EncryptingStore, ensure_config
    from k8py.store import open_store

    config = ensure_config(args.data_path, args.encryption_provider_config)
    store: Store = EncryptingStore(open_store(args.store, str(args.data_path), etcd_tls=_etcd_tls(args)), config)
    await store.start()
    _phase("store")
    return store


async def _start_api(args: ServerArgs, store: Store, clock: RealClock) -> ApiServer:
    from k8py.apiserver.config import ApiServerConfig
    from k8py.apiserver.server import ApiServer

    config = ApiServerConfig(advertise_address=_advertise(args), port=args.port, service_cidr=args.service_cidr,
                             cluster_cidr=args.cluster_cidr, cluster_dns=args.cluster_dns,
                             authorization_mode=args.authorization_mode)
    if os.environ.get("K8PY_WATCH_HISTORY"):  # debug: a short watch cache history makes 410s reachable
        config.watch_history = int(os.environ["K8PY_WATCH_HISTORY"])
    api = ApiServer(store, config, clock)
    await api.start()
    _phase("api")
    return api


def _start_pki(args: ServerArgs, api: ApiServer, clock: RealClock) -> tuple[Pki, Authenticator]:
    """The PKI (made on the first start), who may call the API (the admin certificate, the
    agent token, service-account tokens) and the service-account token signer."""
    import ipaddress

    from k8py.api.wellknown import GROUP_AUTHENTICATED, GROUP_BOOTSTRAPPERS, USER_AGENT_BOOTSTRAP
    from k8py.apiserver import certs
    from k8py.apiserver.auth import Authenticator, User
    from k8py.apiserver.tokens import TokenIssuer

    config = api.config
    service_ip = str(next(ipaddress.ip_network(config.service_cidr).hosts()))  # the `kubernetes` Service's
    sans = certs.default_sans(_advertise(args), config.cluster_domain, service_ip)
    pki = certs.ensure_pki(args.data_path, sans)
    auth = Authenticator()
    # The shared agent token only bootstraps: it obtains a node certificate (`k8py agent`).
    auth.add_token(pki.agent_token, User(USER_AGENT_BOOTSTRAP, (GROUP_BOOTSTRAPPERS, GROUP_AUTHENTICATED)))
    api.tokens = TokenIssuer(pki.dir, clock.now)  # TokenRequest, signed with a key kept in the PKI dir
    auth.token_checkers.append(api.authenticate_token)
    api.token_reviewer = lambda token: auth.from_authorization(f"Bearer {token}")  # TokenReview of other tokens
    _phase("pki")
    return pki, auth


async def _start_front(args: ServerArgs, api: ApiServer, store: Store, pki: Pki,
                       auth: Authenticator) -> tuple[HttpFront, ForwardingNodeProxy, int]:
    """The HTTPS front with the node proxy (logs, exec, attach, port-forward of every
    node's pods) and the debug endpoints; returns it with the port it listens on."""
    from k8py.api.wellknown import NODE_CREDENTIALS_PATH
    from k8py.apiserver import nodecredentials, serverbootstrap
    from k8py.apiserver.encryption import DEFAULT_FILE
    from k8py.apiserver.http import HttpFront
    from k8py.apiserver.nodeproxy import attach_to_server

    front = HttpFront(api.handle, ssl_context=pki.server_ssl_context(), authenticator=auth,
                      authorizer=api.authorizer)
    front.debug_handlers["compact"] = _compact_handler(store)
    node_proxy = attach_to_server(api, front, pki.kubelet_client_ssl_context())
    api.aggregator.client_cert = (str(pki.kubelet_client_cert), str(pki.kubelet_client_key))  # to APIService backends
    front.bootstrap_handlers[NODE_CREDENTIALS_PATH] = nodecredentials.handler(pki.dir)
    serverbootstrap.ensure_token(args.data_path, pki.dir)  # DATA_DIR/token: what further servers join with
    enc = Path(args.encryption_provider_config or args.data_path / DEFAULT_FILE)
    front.secret_handlers[serverbootstrap.PATH] = serverbootstrap.handler(pki.dir, enc)
    front.ca_bundle = pki.ca_cert.read_bytes()
    port = await front.start(args.bind, args.port)
    return front, node_proxy, port


def _compact_handler(store: Store) -> DebugHandler:
    """`POST /debug/k8py/compact`: compact the store's history to its current revision."""
    from k8py.api.request import ApiResponse

    async def compact_once(_req: ApiRequest) -> ApiResponse:
        rev = await store.current_revision()
        await store.compact(rev)
        return ApiResponse(200, {"kind": "Status", "apiVersion": "v1", "status": "Success",
                                 "message": f"compacted at revision {rev}", "code": 200})
    return compact_once


def _announce_ready(args: ServerArgs, pki: Pki, port: int) -> str:
    """Write the kubeconfig and print the one ready line; returns the server URL.
    Ready means: the API serves and the kubeconfig is written. Components start right
    after (their imports cost a few hundred ms); being level-triggered, they catch up on
    anything created in between."""
    from k8py.apiserver import kubeconfig

    url = kubeconfig.server_url(args.bind, port)
    kc = kubeconfig.write(args.data_path / "kubeconfig", pki, url)
    print(f"k8py: ready at {url} (store {_store_kind(args.store)}, data {args.data_path}); export KUBECONFIG={kc}",
          flush=True)
    log.info("ready in %.3fs (%.3fs CPU since the process started)", time.monotonic() - T0, time.process_time())
    return url


def _context(args: ServerArgs, api: ApiServer, clock: RealClock, pki: Pki, url: str,
             node_proxy: ForwardingNodeProxy) -> ClusterContext:
    """What the components get: in-process clients of `api`, the flags as ClusterOptions,
    and the embedded node (unless --no-agent)."""
    from k8py.apiserver.inprocess import InProcessTransport
    from k8py.client.client import Client
    from k8py.component import ClusterContext

    options = cluster_options(args, api.config.cluster_domain)
    node = _host_node(args) if args.nodes is not None else None if args.no_agent else embedded_node(args)
    return ClusterContext(clock=clock, client=lambda: Client(InProcessTransport(api)), options=options,
                          server_url=url, credentials=pki, node=node, local_streams=node_proxy,
                          node_client=_node_client(api, node) if args.nodes is None else None,
                          policy_client=_policy_client(api, node) if args.nodes is None else None,
                          client_as=lambda user, groups: Client(InProcessTransport(api, user=user, groups=groups)))


def cluster_options(args: ServerArgs, cluster_domain: str = "cluster.local") -> ClusterOptions:
    """The flags as the settings components read."""
    from k8py.component import ClusterOptions

    root = os.environ.get("K8PY_AGENT_ROOT")  # local-path volumes live where the embedded agent keeps its storage
    return ClusterOptions(service_cidr=args.service_cidr, cluster_cidr=args.cluster_cidr,
                          cluster_dns=args.cluster_dns, cluster_domain=cluster_domain,
                          service_lb_pool=args.service_lb_pool, pod_eviction_timeout=args.pod_eviction_timeout,
                          node_monitor_grace_period=args.node_monitor_grace_period,
                          local_storage_dir=f"{root}/storage" if root else "",
                          simulated_nodes=args.simulated_nodes, node_capacity=dict(args.node_capacity),
                          ingress_dir=str(args.data_path / "ingress"), ingress_address=args.ingress_address,
                          ingress_http_port=args.ingress_http_port, ingress_https_port=args.ingress_https_port,
                          kube_api_qps=args.kube_api_qps, kube_api_burst=args.kube_api_burst)


def _node_client(api: ApiServer, node: LocalNode | None) -> Callable[[], Client] | None:
    """Clients acting as the embedded node (system:node:NAME). The machine of node hosts is
    no node: its proxy and routes keep the components' client."""
    from k8py.api.wellknown import GROUP_AUTHENTICATED, GROUP_NODES, NODE_USER_PREFIX
    from k8py.apiserver.inprocess import InProcessTransport
    from k8py.client.client import Client

    if node is None:
        return None
    user, groups = NODE_USER_PREFIX + node.name, (GROUP_NODES, GROUP_AUTHENTICATED)
    return lambda: Client(InProcessTransport(api, user=user, groups=groups))


def _policy_client(api: ApiServer, node: LocalNode | None) -> Callable[[], Client] | None:
    """Clients acting as the embedded node's NetworkPolicy enforcer (its own identity, as
    `k8py agent`'s netpol certificate)."""
    from k8py.api.wellknown import GROUP_AUTHENTICATED, GROUP_POLICY_AGENTS, POLICY_AGENT_USER_PREFIX
    from k8py.apiserver.inprocess import InProcessTransport
    from k8py.client.client import Client

    if node is None:
        return None
    user, groups = POLICY_AGENT_USER_PREFIX + node.name, (GROUP_POLICY_AGENTS, GROUP_AUTHENTICATED)
    return lambda: Client(InProcessTransport(api, user=user, groups=groups))


def node_lease_interval(grace: float) -> float:
    """How often the node hosts' agents renew their Lease: Kubernetes' 10 s, or a quarter
    of a shorter lab grace period (as 10 s is of the 40 s default), so a live node never
    looks silent for a whole grace period."""
    return max(0.5, min(10.0, grace / 4))


def _host_network(args: ServerArgs) -> HostNetwork:
    from k8py.nodehost.layout import HostNetwork
    return HostNetwork(str(args.data_path), args.node_network, args.cluster_cidr, args.service_cidr)


def _host_node(args: ServerArgs) -> LocalNode:
    """With node hosts, the machine itself is no node, but keeps host-gw routes to every
    podCIDR and runs a service proxy (NodePort on 127.0.0.1): a LocalNode of its own."""
    from k8py.component import LocalNode
    from k8py.proxy.run import missing_requirements

    cluster = _host_network(args)
    return LocalNode(name=f"k8py-host-{cluster.cid}", cluster_cidr=args.cluster_cidr, service_cidr=args.service_cidr,
                     ident=f"h{cluster.cid}", node_network=args.node_network, route_dev=cluster.bridge,
                     missing=tuple(missing_requirements()))


def embedded_node(args: ServerArgs) -> LocalNode:
    """The embedded agent's node: K8PY_AGENT_* over the flags (so that test clusters on one
    host do not collide), and what this host lacks to run containers."""
    from k8py.component import LocalNode
    from k8py.kubelet.agent import missing_requirements, options_from_env
    from k8py.kubelet.node import default_node_name

    options, rt = options_from_env()
    env = os.environ
    return LocalNode(name=rt["node_name"] or default_node_name(),
                     cluster_cidr=rt["cluster_cidr"] if "K8PY_AGENT_CLUSTER_CIDR" in env else args.cluster_cidr,
                     service_cidr=rt["service_cidr"] if "K8PY_AGENT_SERVICE_CIDR" in env else args.service_cidr,
                     pod_cidr=options.pod_cidr, ident=env.get("K8PY_AGENT_ID", ""),
                     missing=tuple(missing_requirements()))


async def _start_components(ctx: ClusterContext, args: ServerArgs, api: ApiServer, store: Store,
                            clock: RealClock, port: int) -> list[asyncio.Task[None]]:
    """The components, then the periodic compaction: tasks that `_shutdown` stops first."""
    tasks = run_components(ctx, args)
    if os.environ.get("K8PY_SERVER_LEASE_TTL"):  # lab: a dead server leaves the `kubernetes` endpoints sooner
        ttl = float(os.environ["K8PY_SERVER_LEASE_TTL"])
        api.server_leases.ttl, api.server_leases.interval = ttl, ttl * 2 / 3
    if _store_kind(args.store) == "sqlite":  # one server per SQLite store: another record is a dead predecessor's
        api.server_leases.ttl = 0.0
    # The `kubernetes` endpoints name this server (its port is known only now with --port 0) and every
    # other live one (after ready: writing loads the validation schemas).
    await api.set_endpoint(_advertise(args), port)
    _phase("components")
    if args.compaction_interval > 0:
        from k8py.apiserver.compaction import Compactor
        tasks.append(asyncio.create_task(Compactor(store, clock, args.compaction_interval).run(),
                                         name="k8py-compaction"))
    return tasks


async def _shutdown(tasks: list[asyncio.Task[None]], front: HttpFront, api: ApiServer, store: Store) -> None:
    """Reverse start order: the components (and compaction) have stopped, with everything
    they started, before the HTTPS front, the API server and the store close."""
    from k8py.cli import components

    await components.stop(tasks)
    await front.close()
    await api.close()
    await store.close()


def main(ns: argparse.Namespace) -> int:
    logging.basicConfig(level=os.environ.get("K8PY_LOG", "WARNING").upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from k8py.nodehost.errors import NodeHostError
    from k8py.store.errors import EtcdTLSError
    try:
        return asyncio.run(serve(args_from(ns)))
    except (OSError, ValueError, NodeHostError, EtcdTLSError) as e:
        print(f"k8py: cannot start: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C before serve() took over SIGINT: nothing to stop yet
        return 130


def main_apiserver() -> int:
    """`k8py kube-apiserver`, started by the supervisor: the server's arguments come in
    K8PY_SERVER_CONFIG; the scheduler and controller manager run elsewhere; SIGINT (a
    terminal's Ctrl-C, which the supervisor handles) is ignored, SIGTERM stops."""
    logging.basicConfig(level=os.environ.get("K8PY_LOG", "WARNING").upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from k8py.nodehost.errors import NodeHostError
    from k8py.store.errors import EtcdTLSError

    args = ServerArgs.from_json(os.environ["K8PY_SERVER_CONFIG"])
    args.control_plane, args.node_in_process, args.components = False, False, "inprocess"
    try:
        return asyncio.run(serve(args, signals=(signal.SIGTERM,)))
    except (OSError, ValueError, NodeHostError, EtcdTLSError) as e:
        print(f"k8py: cannot start: {e}", file=sys.stderr)
        return 1
