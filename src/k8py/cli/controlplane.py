"""`k8py kube-scheduler` and `k8py kube-controller-manager`: one control-plane component in a
process of its own, as the supervisor (`cli.supervisor`) starts them.

The process runs the component's single entry point, `<component>/run.py:run(ctx)`, as
`k8py server` runs it in process, with REST clients of the API server at K8PY_SERVER_URL,
each authenticated by the component's own client certificate (`<data-
dir>/pki/<component>.crt`, CN system:kube-scheduler or system:kube-controller-manager),
and the server's settings from K8PY_SERVER_CONFIG. With leader election (the default) it
runs only while it holds its Lease, as in process. It starts once the API answers (the
supervisor starts every process at once). SIGTERM stops it; SIGINT is ignored (the
supervisor stops the components in order). A component that crashes ends the process with
a non-zero code: the supervisor restarts it, and it starts again from a fresh list.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from k8py.client.client import Client

if TYPE_CHECKING:
    from k8py.cli.server import ServerArgs
    from k8py.component import ClusterContext, Component

COMPONENTS = ("kube-scheduler", "kube-controller-manager")


def _entry_point(name: str) -> Component:
    if name == "kube-scheduler":
        from k8py.scheduler.run import run as run_scheduler
        return run_scheduler
    from k8py.controllers.run import run as run_controllers
    return run_controllers


def context(name: str, args: ServerArgs, url: str, made: list[Client]) -> ClusterContext:
    """The component's context: a new REST client per `client()` (appended to `made`, for
    closing), as the component's user."""
    from k8py.apiserver.certs import CA_CERT, Pki
    from k8py.cli.server import cluster_options
    from k8py.client.client import Client
    from k8py.client.rest import RestTransport
    from k8py.clock import RealClock
    from k8py.component import ClusterContext, TokenCredentials

    pki = Pki(dir=args.data_path / "pki", agent_token="")
    cert, key = pki.component_cert(name)
    ca = str(pki.dir / CA_CERT)

    def client() -> Client:
        made.append(Client(RestTransport(url, ca_file=ca, cert_file=str(cert), key_file=str(key))))
        return made[-1]
    return ClusterContext(clock=RealClock(), client=client, options=cluster_options(args), server_url=url,
                          credentials=TokenCredentials("", pki.dir / CA_CERT))


async def files_exist(*paths: Path, poll: float = 0.05) -> None:
    """Return once every path exists (the API server makes the PKI on its first start)."""
    while not all(p.exists() for p in paths):
        await asyncio.sleep(poll)


async def api_answers(client: Client, poll: float = 0.05) -> None:
    """Return once the API server answers /readyz with 200 (the supervisor starts every
    process at once, and the API server may be starting or restarting)."""
    while True:
        try:
            await client.raw("GET", "/readyz")
            return
        except Exception:  # noqa: BLE001 - not up yet: refused, reset, 5xx
            await asyncio.sleep(poll)


async def run(name: str, args: ServerArgs, url: str) -> None:
    """Run component `name` until cancelled (SIGTERM cancels it)."""
    from k8py.cli.components import elected

    main = asyncio.current_task()
    assert main is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    component = _entry_point(name)
    if args.leader_elect:
        component = elected(name, component, args.leader_election())
    made: list[Client] = []
    pki = args.data_path / "pki"
    await files_exist(pki / f"{name}.crt", pki / f"{name}.key", pki / "ca.crt")
    try:
        ctx = context(name, args, url, made)
        await api_answers(ctx.client())
        await component(ctx)
    finally:
        for client in made:
            await client.close()


def main(name: str) -> int:
    from k8py.cli.server import ServerArgs

    logging.basicConfig(level=os.environ.get("K8PY_LOG", "WARNING").upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    args = ServerArgs.from_json(os.environ["K8PY_SERVER_CONFIG"])
    try:
        asyncio.run(run(name, args, os.environ["K8PY_SERVER_URL"]))
    except asyncio.CancelledError:
        return 0
    return 1  # a component returns only when it failed
