"""`k8py server --components processes`: the control plane as supervised processes.

This process (`k8py server`) starts `k8py kube-apiserver` (the store, the API server, its
HTTPS front and the embedded node's components), waits for its one ready line (printed
here, once), then `k8py kube-scheduler` and `k8py kube-controller-manager`, which talk
HTTPS to the API with their own client certificates (`cli.controlplane`). Each child gets
the server's arguments in K8PY_SERVER_CONFIG and is named after its component in `ps`.
Their stderr (and any stdout line but the ready one) comes out on this process's stderr,
each line prefixed `[<component>] `: one log.

Invariants: a child that exits is restarted after an exponential backoff (BACKOFF_BASE
doubling to BACKOFF_CAP, back to the base once it ran HEALTHY_AFTER seconds); the API
server comes back on the port it first bound, so the others reconnect to the same URL;
an API server that exits before it was ever ready ends the supervisor with its exit code
(bad flags, a busy port). SIGINT/SIGTERM stop the scheduler and the controller manager
(SIGTERM, SIGKILL after STOP_GRACE) before the API server and its store. The children
ignore SIGINT (a terminal's Ctrl-C reaches the whole process group: the order is kept
here) and get SIGTERM if this process dies (PR_SET_PDEATHSIG).
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
from typing import IO, TYPE_CHECKING

from k8py.cli.server import ServerArgs, args_from

if TYPE_CHECKING:
    import argparse

    from k8py.cli.mirrorpods import Static

log = logging.getLogger("k8py.supervisor")

BACKOFF_BASE = 0.5  # seconds before the first restart
BACKOFF_CAP = 30.0
HEALTHY_AFTER = 60.0  # a child that ran this long restarts after BACKOFF_BASE again
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL on the way out
APISERVER = "kube-apiserver"
CONTROLLERS = ("kube-scheduler", "kube-controller-manager")
READY_MARK = b"ready at "
PR_SET_PDEATHSIG = 1


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
    """In the child, before exec: ignore SIGINT, and die with the supervisor."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Supervisor:
    """Starts, restarts and stops the control plane's processes."""

    def __init__(self, args: ServerArgs, out: IO[str] | None = None, err: IO[bytes] | None = None) -> None:
        self.args = args
        self.out = out or sys.stdout
        self.err = err or sys.stderr.buffer
        self.stopping = asyncio.Event()
        self.ready = asyncio.Event()
        self.url = ""
        self.children: dict[str, Child] = {}
        self._controllers_stopped = False

    def _child(self, name: str) -> Child:
        env = dict(os.environ, K8PY_SERVER_CONFIG=self.args.to_json(), K8PY_SERVER_URL=self.url)
        argv = [sys.executable, "-m", "k8py.cli.main", name, "--data-dir", str(self.args.data_path)]
        child = self.children[name] = Child(name, argv, env)
        return child

    async def run(self, stop: asyncio.Event) -> int:
        """Run until `stop` is set; returns the exit code."""
        self.args.data_dir = str(self.args.data_path)
        api = asyncio.create_task(self._keep(self._child(APISERVER)), name="k8py-supervise-apiserver")
        ready = asyncio.create_task(self.ready.wait())
        await asyncio.wait([api, ready, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if api.done():  # it never came up
            return api.result()
        if not self.ready.is_set():  # stopped while starting
            self.stopping.set()
            await self._stop([self.children[APISERVER]], [api])
            return 0
        if not self.args.port:  # restarts bind the port the first start got
            self.args.port = int(self.url.rsplit(":", 1)[1])
            self.children[APISERVER].env["K8PY_SERVER_CONFIG"] = self.args.to_json()
        others = [asyncio.create_task(self._keep(self._child(n)), name=f"k8py-supervise-{n}") for n in CONTROLLERS]
        mirrors = self._mirror_pods()
        await stop.wait()
        self.stopping.set()
        if mirrors is not None:
            mirrors.cancel()
            await asyncio.gather(mirrors, return_exceptions=True)
        await self._stop([self.children[n] for n in CONTROLLERS], others)
        self._controllers_stopped = True
        await self._stop([self.children[APISERVER]], [api])
        return 0

    def _mirror_pods(self) -> asyncio.Task[None] | None:
        """With the embedded node, its kube-system mirror pods (`cli.mirrorpods`), written as admin."""
        if self.args.no_agent or self.args.nodes is not None:
            return None
        from k8py.apiserver.certs import CA_CERT, Pki
        from k8py.cli.mirrorpods import MirrorPods
        from k8py.client.client import Client
        from k8py.client.rest import RestTransport
        from k8py.kubelet.node import default_node_name

        pki = Pki(dir=self.args.data_path / "pki", agent_token="")
        node = os.environ.get("K8PY_AGENT_NODE_NAME") or default_node_name()

        async def run() -> None:
            try:
                client = Client(RestTransport(self.url, ca_file=str(pki.dir / CA_CERT),
                                              cert_file=str(pki.admin_cert), key_file=str(pki.admin_key)))
            except OSError as e:
                log.warning("no mirror pods: %s", e)
                return
            try:
                await MirrorPods(client, node, self.statics).run()
            finally:
                await client.close()
        return asyncio.create_task(run(), name="k8py-mirror-pods")

    def statics(self) -> list[Static]:
        """What the mirror pods show: each child, and the node's DNS and proxy in the API server's."""
        from k8py.cli.mirrorpods import Static

        out = []
        for c in self.children.values():
            if c.proc is None:
                continue
            running = c.proc.returncode is None
            out.append(Static(c.name, c.proc.pid, c.restarts, c.started_at, running=running))
            if c.name == APISERVER:
                out += [Static(n, c.proc.pid, c.restarts, c.started_at, "node", running) for n in ("kube-dns",
                                                                                                  "kube-proxy")]
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

    async def _keep(self, child: Child) -> int:
        """Run `child`, restarting it with backoff, until stopping; returns its last exit code."""
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
                                                    preexec_fn=_child_setup)
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
            if stdout and name == APISERVER and READY_MARK in line:
                if not self.ready.is_set():
                    text = line.decode(errors="replace")
                    self.url = text.split("ready at ", 1)[1].split()[0]
                    self.out.write(text)
                    self.out.flush()
                    self.ready.set()
                    continue
            self.err.write(b"[" + name.encode() + b"] " + line)
            self.err.flush()

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
    try:
        return asyncio.run(supervise(args_from(ns)))
    except KeyboardInterrupt:  # Ctrl-C before the supervisor took over SIGINT
        return 130
