"""`k8py server` lifecycle in-process, with a fake ApiServer and store: start order, the ready
line, the kubeconfig, components, the debug compaction endpoint, and a clean stop."""

from __future__ import annotations

import asyncio
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

import k8py.store
from k8py.api.request import ApiRequest, ApiResponse
from k8py.apiserver import nodeproxy
from k8py.cli import server
from k8py.client.client import Client
from k8py.client.rest import RestTransport
from k8py.component import ClusterContext


class FakeStore:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.rev = 41
        self.compacted = 0
        self.api: FakeApi | None = None

    async def start(self) -> None:
        self.log.append("store.start")

    async def close(self) -> None:
        self.log.append("store.close")

    async def current_revision(self) -> int:
        return self.rev

    async def compact(self, rev: int) -> None:
        self.compacted = rev

    @property
    def compacted_revision(self) -> int:
        return self.compacted


class FakeApi:
    def __init__(self, store: FakeStore, config: Any, clock: Any) -> None:
        self.store, self.config = store, config
        inner = getattr(store, "inner", store)  # the server wraps the store in an EncryptingStore
        inner.api = self
        inner.log.append("api.init")

        self.endpoint: tuple[str, int] | None = None
        self.node_proxy: Any = None
        self.authorizer: Any = None
        self.metrics = types.SimpleNamespace(source=None)  # metrics.k8s.io: the node proxy sets its source
        self.aggregator = types.SimpleNamespace(client_cert=None)  # APIService backends: the server sets its cert
        self.server_leases = types.SimpleNamespace(ttl=15.0)

    def set_node_proxy(self, proxy: Any) -> None:
        self.node_proxy = proxy

    async def start(self) -> None:
        self.store.log.append("api.start")  # (an EncryptingStore passes `log` through to the FakeStore)

    async def set_endpoint(self, address: str, port: int) -> None:
        self.endpoint = (address, port)

    def authenticate_token(self, token: str) -> None:
        return None

    async def close(self) -> None:
        self.store.log.append("api.close")

    async def handle(self, req: ApiRequest) -> ApiResponse:
        return ApiResponse(200, {"kind": "NamespaceList", "items": [], "user": req.user})


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], dict[str, FakeStore]]:
    log: list[str] = []
    made: dict[str, FakeStore] = {}

    def open_store(url: str | None, data_dir: str, etcd_tls: object = None) -> FakeStore:
        log.append(f"open_store {url} {Path(data_dir).name}")
        made["store"] = FakeStore(log)
        return made["store"]

    mod = types.ModuleType("k8py.apiserver.server")
    mod.ApiServer = FakeApi  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "k8py.apiserver.server", mod)
    monkeypatch.setattr(k8py.store, "open_store", open_store, raising=False)
    return log, made


async def test_serve_lifecycle(fakes: tuple[list[str], dict[str, FakeStore]], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    log, made = fakes
    ran: list[Any] = []

    async def component(ctx: ClusterContext) -> None:
        ran.append(ctx.options.simulated_nodes)
        try:
            await asyncio.Event().wait()
        finally:
            log.append("component.stopped")

    async def broken(ctx: ClusterContext) -> None:
        raise RuntimeError("crash")

    monkeypatch.setattr(server, "_builtin_components", lambda args: [])
    monkeypatch.setattr(server, "COMPONENTS", [("test", component), ("broken", broken)])
    attached: list[tuple[Any, Any, nodeproxy.ForwardingNodeProxy]] = []
    real_attach = nodeproxy.attach_to_server

    def attach(api: Any, front: Any, token: Any) -> nodeproxy.ForwardingNodeProxy:
        p = real_attach(api, front, token)
        attached.append((api, front, p))
        return p

    monkeypatch.setattr(nodeproxy, "attach_to_server", attach)
    stop = asyncio.Event()
    args = server.ServerArgs(data_dir=str(tmp_path / "data"), port=0, simulated_nodes=2)
    task = asyncio.create_task(server.serve(args, stop=stop))
    while "k8py: ready" not in (out := capsys.readouterr().out):
        assert not task.done(), task
        await asyncio.sleep(0.01)
    lines = out.strip().splitlines()
    assert len(lines) == 1
    kc = tmp_path / "data" / "kubeconfig"
    assert lines[0].startswith("k8py: ready at https://127.0.0.1:") and lines[0].endswith(f"export KUBECONFIG={kc}")
    assert "(store sqlite, data " in lines[0]
    cfg = yaml.safe_load(kc.read_text())
    assert lines[0].split()[3] == cfg["clusters"][0]["cluster"]["server"]
    port = int(lines[0].split()[3].rsplit(":", 1)[1])
    c = Client(RestTransport.from_kubeconfig(kc))
    try:
        assert (await c.raw("GET", "/api/v1/namespaces"))["user"] == "admin"
        res = await c.raw("POST", "/debug/k8py/compact")
        assert "41" in res["message"] and made["store"].compacted == 41
    finally:
        await c.close()
    assert ran == [2]
    # logs/exec of every node's pods are forwarded, with or without an embedded agent
    [(api, front, proxy)] = attached
    assert api.node_proxy == proxy.node_proxy and front.upgrade_handler == proxy.upgrade_handler
    assert proxy.ssl is not None  # it dials kubelets with the kubelet-client certificate, verifying theirs
    stop.set()
    assert await asyncio.wait_for(task, 30) == 0
    api = made["store"].api
    assert api is not None and api.endpoint == ("127.0.0.1", port)  # bound to port 0: endpoints told the real one
    from k8py.apiserver.encryption import EncryptingStore
    assert isinstance(api.store, EncryptingStore) and api.store.inner is made["store"]  # Secrets encrypted at rest
    assert log == ["open_store None data", "store.start", "api.init", "api.start", "component.stopped",
                   "api.close", "store.close"]


@pytest.mark.parametrize("no_agent,sim,want", [
    (True, 0, ["scheduler", "controller-manager"]),
    (True, 3, ["scheduler", "controller-manager", "simulated-nodes"]),
    (False, 0, ["scheduler", "controller-manager", "agent"]),
])
def test_builtin_components(no_agent: bool, sim: int, want: list[str]) -> None:
    comps = server._builtin_components(server.ServerArgs(no_agent=no_agent, simulated_nodes=sim))
    names = [name for name, _ in comps]
    assert [n for n in names if n in ("scheduler", "controller-manager", "simulated-nodes", "agent")] == want
    assert len(set(names)) == len(names) and all(callable(f) for _, f in comps)


@pytest.mark.parametrize("argv,want", [([], 300.0), (["--compaction-interval", "1m30s"], 90.0),
                                       (["--compaction-interval", "0"], 0.0)])
def test_compaction_interval_flag(argv: list[str], want: float) -> None:
    import argparse
    p = argparse.ArgumentParser()
    server.add_arguments(p)
    assert server.args_from(p.parse_args(argv)).compaction_interval == want


async def test_serve_compacts_periodically(fakes: tuple[list[str], dict[str, FakeStore]], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _, made = fakes
    monkeypatch.setattr(server, "_builtin_components", lambda args: [])
    stop = asyncio.Event()
    args = server.ServerArgs(data_dir=str(tmp_path / "data"), port=0, compaction_interval=0.01)
    task = asyncio.create_task(server.serve(args, stop=stop))
    try:
        # the first tick observes revision 41, the next compacts to it
        while "store" not in made or made["store"].compacted != 41:
            assert not task.done(), task
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 30) == 0


@pytest.mark.parametrize("argv,want", [
    ([], (True, 15.0, 10.0, 2.0)),  # Kubernetes' defaults
    (["--leader-elect-lease-duration", "3s", "--leader-elect-renew-deadline", "2s",
      "--leader-elect-retry-period", "500ms"], (True, 3.0, 2.0, 0.5)),
    (["--no-leader-elect"], (False, 15.0, 10.0, 2.0)),
])
def test_leader_elect_flags(argv: list[str], want: tuple[bool, float, float, float]) -> None:
    import argparse
    p = argparse.ArgumentParser()
    server.add_arguments(p)
    a = server.args_from(p.parse_args(argv))
    assert (a.leader_elect, a.leader_elect_lease_duration, a.leader_elect_renew_deadline,
            a.leader_elect_retry_period) == want


def test_leader_elected_components_and_bad_timings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse
    elected = dict(server._builtin_components(server.ServerArgs(no_agent=True)))
    plain = dict(server._builtin_components(server.ServerArgs(no_agent=True, leader_elect=False)))
    assert elected["scheduler"].__name__ == "run_elected" and plain["scheduler"].__name__ != "run_elected"
    p = argparse.ArgumentParser()
    server.add_arguments(p)
    ns = p.parse_args(["--data-dir", str(tmp_path / "d"), "--leader-elect-lease-duration", "10s"])
    assert server.main(ns) == 1
    assert "--leader-elect-lease-duration must be greater than" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()  # refused before anything was made


@pytest.mark.parametrize("name, module, user", [
    ("scheduler", "k8py.scheduler.run", "system:kube-scheduler"),
    ("controller-manager", "k8py.controllers.run", "system:kube-controller-manager"),
])
def test_components_run_as_their_own_users(name: str, module: str, user: str) -> None:
    """The scheduler and the controller manager act as their users (their bootstrap roles), not system:masters."""
    from k8py.cli.components import as_user
    from k8py.clock import RealClock
    from k8py.component import ClusterContext

    asked: list[tuple[str, tuple[str, ...]]] = []
    seen: list[Any] = []

    def client_as(user: str, groups: tuple[str, ...]) -> Any:
        asked.append((user, groups))
        return "client-of-" + user

    async def component(ctx: ClusterContext) -> None:
        seen.append(ctx.client())

    comp = dict(server._builtin_components(server.ServerArgs(no_agent=True, leader_elect=False)))[name]
    assert comp.__wrapped__.__module__ == module  # type: ignore[attr-defined]
    assert comp.__closure__ is not None and user in [c.cell_contents for c in comp.__closure__]
    ctx = ClusterContext(clock=RealClock(), client=lambda: "admin", client_as=client_as)  # type: ignore[arg-type,return-value]
    asyncio.run(as_user(user, component)(ctx))
    assert seen == ["client-of-" + user]
    assert asked == [(user, ("system:authenticated",))]
