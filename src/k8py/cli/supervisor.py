"""`k8py server --components processes`: the control plane as supervised processes.

This process (`k8py server`) starts `k8py kube-apiserver` (the store, the API server, its
HTTPS front, simulated nodes, ingress), waits for its one ready line (printed here,
once), then `k8py kubelet` (the embedded node's agent, proxy and DNS, `cli.nodeprocess`;
unless --no-agent or --nodes), `k8py kube-scheduler` and `k8py kube-controller-manager`,
which talk HTTPS to the API with their own client certificates (`cli.controlplane`). Each child gets
the server's arguments in K8PY_SERVER_CONFIG and is named after its component in `ps`.
Their stderr (and any stdout line but the ready one) comes out on this process's stderr,
each line prefixed `[<component>] `: one log.

Invariants: a child that exits is restarted after an exponential backoff (BACKOFF_BASE
doubling to BACKOFF_CAP, back to the base once it ran HEALTHY_AFTER seconds); the API
server comes back on the port it first bound, so the others reconnect to the same URL;
an API server that exits before it was ever ready ends the supervisor with its exit code
(bad flags, a busy port). SIGINT/SIGTERM stop the node, the scheduler and the controller
manager (SIGTERM, SIGKILL after STOP_GRACE) before the API server and its store. The children
run in sessions of their own, so that what is sent to this process's group (a terminal's
Ctrl-C, `timeout`) reaches this process only and the order is kept here; they get SIGKILL
if this process dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from k8py.cli.server import ServerArgs, args_from, join_cluster

if TYPE_CHECKING:
    import argparse

    from k8py.cli.mirrorpods import Static
    from k8py.client.client import Client

log = logging.getLogger("k8py.supervisor")

BACKOFF_BASE = 0.5  # seconds before the first restart
BACKOFF_CAP = 30.0
HEALTHY_AFTER = 60.0  # a child that ran this long restarts after BACKOFF_BASE again
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL on the way out
NODE_WAIT = 15.0  # at most this long after the API server, the ready line waits for the kubelet's endpoint
KUBELET_IDLE = b"k8py: kubelet idle"  # the kubelet's line when this host runs no node components
KUBELET_CONNECTED = b"k8py: kubelet connected"  # the kubelet's line once the API answered it
CONTROLLERS_WAIT = 3.0  # at most this long after the API server is ready, the controllers wait for the kubelet
APISERVER = "kube-apiserver"
CONTROLLERS = ("kube-scheduler", "kube-controller-manager")
KUBELET = "kubelet"  # the embedded node's agent, proxy and DNS (`cli.nodeprocess`)
READY_MARK = b"ready at "
PR_SET_PDEATHSIG = 1
KUBELET_PORT_FILE = "kubelet-port"  # in the data dir: the embedded node's endpoint keeps its port


def free_port(host: str) -> int:
    """A port free on `host` now (the API server binds it a moment later)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host if host not in ("", "0.0.0.0", "::") else "", 0))  # noqa: S104 - as the API server binds
        return int(s.getsockname()[1])


def kept_port(path: Path) -> int:
    """The port in `path` if it is free, else a free one (written there): the Node's status
    names the kubelet's port, and a restarted kubelet is reachable there again at once."""
    import socket

    try:
        port = int(path.read_text())
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("", port))  # noqa: S104 - the kubelet endpoint listens on every address
        return port
    except (OSError, ValueError):
        port = free_port("")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(port))
        return port


def next_backoff(delay: float, ran_for: float) -> float:
    """The wait before the next restart, given the last wait and how long the child ran."""
    if ran_for >= HEALTHY_AFTER:
        return BACKOFF_BASE
    return min(BACKOFF_CAP, delay * 2)


@dataclass
class Child:
    """One supervised process: its command, and what `ps` and its mirror pod show of it."""

    name: str
    argv: list[str]
    env: dict[str, str]
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0  # wall-clock time of the current process's start
    exits: list[int] = field(default_factory=list)


def _child_setup() -> None:
    """In the child (a session of its own), before exec: ignore SIGINT, and be killed with
    the supervisor (kill -9 of `k8py server` stays a kill -9 of the whole control plane)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Supervisor:
    """Starts, restarts and stops the control plane's processes."""

    def __init__(self, args: ServerArgs, out: IO[str] | None = None, err: IO[bytes] | None = None) -> None:
        self.args = args
        self.out = out or sys.stdout
        self.err = err or sys.stderr.buffer
        self.stopping = asyncio.Event()
        self.ready = asyncio.Event()  # the ready line is printed
        self.api_ready = asyncio.Event()  # the API server printed its ready line
        self.node_up = asyncio.Event()  # the kubelet's endpoint answers (or it never will)
        self._ready_line = ""
        self.kubelet_connected = asyncio.Event()  # the kubelet reached the API, or runs nothing
        controllers = asyncio.Event()
        self.go: dict[str, asyncio.Event | None] = {APISERVER: None, KUBELET: self.api_ready,
                                                    **{n: controllers for n in CONTROLLERS}}
        self.url = ""
        self.children: dict[str, Child] = {}
        self._controllers_stopped = False
        self.kubelet_port = 0
        self.admin: Client | None = None

    def _child(self, name: str) -> Child:
        env = dict(os.environ, K8PY_SERVER_CONFIG=self.args.to_json(), K8PY_SERVER_URL=self.url,
                   K8PY_KUBELET_PORT=str(self.kubelet_port))
        argv = [sys.executable, "-m", "k8py.cli.main", name, "--data-dir", str(self.args.data_path)]
        child = self.children[name] = Child(name, argv, env)
        return child

    async def run(self, stop: asyncio.Event) -> int:
        """Run until `stop` is set; returns the exit code. The API server first, the kubelet
        once it is ready, the scheduler and the controller manager once the kubelet reached
        the API (or said it runs nothing, or CONTROLLERS_WAIT passed): on a small machine,
        processes importing at once slow each other down, and the way to a Ready node goes
        through the API server and then the kubelet (not later: the node may wait for its
        podCIDR from the controller manager's node IPAM)."""
        self._prepare()
        names = [APISERVER, *([KUBELET] if self.embedded_node else []), *CONTROLLERS]
        keepers = [asyncio.create_task(self._keep(self._child(n), self.go[n]),
                                       name=f"k8py-supervise-{n}") for n in names]
        api, others = keepers[0], keepers[1:]
        ready = asyncio.create_task(self._announce())
        gate = asyncio.create_task(self._open_controllers())
        await asyncio.wait([api, ready, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        gate.cancel()
        mirrors = self._mirror_pods() if self.ready.is_set() and not api.done() else None
        if not api.done():
            await stop.wait()
        self.stopping.set()
        if mirrors is not None:
            mirrors.cancel()
            await asyncio.gather(mirrors, return_exceptions=True)
        await self._stop([self.children[n] for n in names[1:]], others)
        self._controllers_stopped = True
        await self._stop([self.children[APISERVER]], [api])
        if self.admin is not None:
            await self.admin.close()
        return 0 if self.ready.is_set() else api.result()  # an API server that never came up: its code

    def _prepare(self) -> None:
        """The data dir made absolute; the API server's port chosen now (restarts keep it, and
        the others know the URL before it answers); the kubelet's port kept across starts."""
        from k8py.apiserver.kubeconfig import server_url

        self.args.data_dir = str(self.args.data_path)
        if not self.args.port:
            self.args.port = free_port(self.args.bind)
        self.url = server_url(self.args.bind, self.args.port)
        if self.embedded_node:
            self.kubelet_port = kept_port(self.args.data_path / KUBELET_PORT_FILE)

    def _admin(self) -> Client | None:
        """A client of the API as admin (made once; None if the PKI cannot be read)."""
        if self.admin is None:
            from k8py.apiserver.certs import CA_CERT, Pki
            from k8py.client.client import Client
            from k8py.client.rest import RestTransport

            pki = Pki(dir=self.args.data_path / "pki", agent_token="")
            try:
                self.admin = Client(RestTransport(self.url, ca_file=str(pki.dir / CA_CERT),
                                                  cert_file=str(pki.admin_cert), key_file=str(pki.admin_key)))
            except OSError as e:
                log.warning("cannot read the admin credentials: %s", e)
        return self.admin

    def _mirror_pods(self) -> asyncio.Task[None] | None:
        """With the embedded node, its kube-system mirror pods (`cli.mirrorpods`), written as admin."""
        from k8py.cli.mirrorpods import MirrorPods

        client = self._admin() if self.embedded_node else None
        if client is None:
            return None
        return asyncio.create_task(MirrorPods(client, self.node_name, self.statics).run(), name="k8py-mirror-pods")

    @property
    def node_name(self) -> str:
        from k8py.kubelet.node import default_node_name
        return os.environ.get("K8PY_AGENT_NODE_NAME") or default_node_name()

    @property
    def embedded_node(self) -> bool:
        return not self.args.no_agent and self.args.nodes is None

    def statics(self) -> list[Static]:
        """What the mirror pods show: each child, and the node's DNS and proxy in the API server's."""
        from k8py.cli.mirrorpods import Static

        out = []
        for c in self.children.values():
            if c.proc is None:
                continue
            running = c.proc.returncode is None
            if c.name == KUBELET:
                out += [Static(n, c.proc.pid, c.restarts, c.started_at, "node", running) for n in ("kube-dns",
                                                                                                  "kube-proxy")]
            else:
                out.append(Static(c.name, c.proc.pid, c.restarts, c.started_at, running=running))
        return out

    async def _stop(self, children: list[Child], keepers: list[asyncio.Task[int]]) -> None:
        for child in children:
            if child.proc is not None and child.proc.returncode is None:
                child.proc.send_signal(signal.SIGTERM)
        done, pending = await asyncio.wait(keepers, timeout=STOP_GRACE)
        for child in children:
            if pending and child.proc is not None and child.proc.returncode is None:
                log.warning("%s did not stop in %.0fs: killing it", child.name, STOP_GRACE)
                child.proc.kill()
        await asyncio.gather(*keepers, return_exceptions=True)

    async def _keep(self, child: Child, after: asyncio.Event | None = None) -> int:
        """Run `child` (once `after` is set), restarting it with backoff, until stopping;
        returns its last exit code."""
        if after is not None:
            await asyncio.wait([asyncio.create_task(after.wait()), asyncio.create_task(self.stopping.wait())],
                               return_when=asyncio.FIRST_COMPLETED)
            if self.stopping.is_set():
                return 0
        delay = BACKOFF_BASE
        while True:
            t0 = time.monotonic()
            code = await self._run_once(child)
            child.exits.append(code)
            if self.stopping.is_set() or (child.name == APISERVER and not self.ready.is_set()):
                return code
            delay = next_backoff(delay, time.monotonic() - t0) if child.restarts else BACKOFF_BASE
            self._say(child.name, f"exited with code {code}; restarting in {delay:.1f}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            if self.stopping.is_set():
                return code
            child.restarts += 1

    async def _run_once(self, child: Child) -> int:
        child.env["K8PY_SERVER_URL"] = self.url
        proc = await asyncio.create_subprocess_exec(*child.argv, env=child.env, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                    start_new_session=True, preexec_fn=_child_setup)
        child.proc, child.started_at = proc, time.time()
        if self.stopping.is_set() and (child.name != APISERVER or self._controllers_stopped):
            proc.send_signal(signal.SIGTERM)  # started while stopping: `_stop` may have passed it by
        assert proc.stdout is not None and proc.stderr is not None
        await asyncio.gather(self._pump(child.name, proc.stdout, stdout=True), self._pump(child.name, proc.stderr))
        return await proc.wait()

    async def _pump(self, name: str, stream: asyncio.StreamReader, stdout: bool = False) -> None:
        """Copy a child's lines to stderr with its prefix; the API server's first ready line
        goes to stdout once, as `k8py server` prints it."""
        while line := await stream.readline():
            if stdout and name == APISERVER and READY_MARK in line and not self._ready_line:
                self._ready_line = line.decode(errors="replace")
                self.api_ready.set()
                continue
            if stdout and name == KUBELET and line.startswith(KUBELET_IDLE):
                self.node_up.set()
                self.kubelet_connected.set()
            if stdout and name == KUBELET and line.startswith(KUBELET_CONNECTED):
                self.kubelet_connected.set()
                continue
            self.err.write(b"[" + name.encode() + b"] " + line)
            self.err.flush()

    async def _open_controllers(self) -> None:
        await self.api_ready.wait()
        if self.embedded_node:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.kubelet_connected.wait(), CONTROLLERS_WAIT)
        event = self.go[CONTROLLERS[0]]
        assert event is not None
        event.set()

    async def _announce(self) -> None:
        """Print the ready line once the API server is ready and, with the embedded node, its
        kubelet endpoint answers (so that logs and exec reach the node's pods at once, as
        when it ran in the same process), or NODE_WAIT passed."""
        await self.api_ready.wait()
        if self.embedded_node:
            probe = asyncio.create_task(self._probe_kubelet())  # once the kubelet reached the API
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.node_up.wait(), NODE_WAIT)
            probe.cancel()
        self.out.write(self._ready_line)
        self.out.flush()
        self.ready.set()

    async def _probe_kubelet(self) -> None:
        """Set `node_up` once the Node's status names the kubelet's endpoint (its InternalIP
        and this start's port), which the API server's node proxy dials."""
        await self.kubelet_connected.wait()  # not before: its imports would slow the kubelet's start
        client = self._admin()
        while client is not None and not self.node_up.is_set():
            try:
                st = ((await client.get_or_none("nodes", self.node_name)) or {}).get("status") or {}
            except Exception:  # noqa: BLE001 - the API may be restarting: ask again
                st = {}
            port = ((st.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
            if port == self.kubelet_port and any(a.get("type") == "InternalIP" for a in st.get("addresses") or []):
                self.node_up.set()
            await asyncio.sleep(0.05)

    def _say(self, name: str, message: str) -> None:
        self.err.write(f"[supervisor] {name} {message}\n".encode())
        self.err.flush()


async def supervise(args: ServerArgs, stop: asyncio.Event | None = None) -> int:
    """`k8py server --components processes`: supervise until SIGINT or SIGTERM."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return await Supervisor(args).run(stop)


def main(ns: argparse.Namespace) -> int:
    logging.basicConfig(level=os.environ.get("K8PY_LOG", "WARNING").upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from k8py.nodehost.errors import NodeHostError
    from k8py.store.errors import EtcdTLSError

    args = args_from(ns)
    try:
        asyncio.run(join_cluster(args))  # the data dir, and the cluster's keys on a --join
        return asyncio.run(supervise(args))
    except (OSError, ValueError, NodeHostError, EtcdTLSError) as e:
        print(f"k8py: cannot start: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C before the supervisor took over SIGINT
        return 130
