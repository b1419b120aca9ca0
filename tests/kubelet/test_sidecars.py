"""Sidecar containers (init containers with restartPolicy Always) in the pod worker, over
FakeRuntime and FakeClock: start order, startup probes gating the next init container,
restarts whatever the pod's restartPolicy, stop order, phase and readiness."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from k8py.clock import FakeClock
from k8py.kubelet import status as pstatus
from k8py.kubelet.sidecars import TerminationOrder, mains_done
from k8py.kubelet.status import ContainerView
from k8py.runtime.protocol import ContainerState, ContainerStatus, ExecResult

from agent_helpers import Harness, cstatus, harness_fixture

MAIN = {"name": "main", "image": "busybox:1.28", "command": ["sleep", "3600"]}


def sidecar(name: str = "side", **kw: Any) -> dict:
    return {"name": name, "image": "busybox:1.28", "restartPolicy": "Always", "command": ["sleep", "3600"], **kw}


def init(name: str) -> dict:
    return {"name": name, "image": "busybox:1.28"}


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async for x in harness_fixture(tmp_path):
        yield x


def istatus(pod: dict, name: str) -> dict:
    for s in (pod.get("status") or {}).get("initContainerStatuses") or []:
        if s["name"] == name:
            return s
    return {}


async def phase_is(h: Harness, name: str, phase: str) -> dict:
    async def ok() -> dict | None:
        p = await h.pod(name)
        return p if (p.get("status") or {}).get("phase") == phase else None
    return await h.until(ok, step=0.5)


def conds(pod: dict) -> dict[str, dict]:
    return {c["type"]: c for c in pod["status"]["conditions"]}


async def test_sidecars_start_in_order_and_keep_running_beside_the_containers(h: Harness) -> None:
    await h.create_pod("p", [MAIN], initContainers=[init("init-a"), sidecar(), init("init-b")])
    await h.until(lambda: h.containers("init-a"))
    await h.tick()
    assert not h.containers("side") and not h.containers("init-b") and not h.containers("main")
    h.runtime.finish(h.containers("init-a")[0].id, 0)
    await h.until(lambda: h.containers("init-b"), step=0.5)  # the sidecar started, then init-b
    assert h.containers("side")[0].state == ContainerState.RUNNING
    assert not h.containers("main")
    p = await h.pod("p")
    assert p["status"]["phase"] == "Pending"
    assert conds(p)["Initialized"]["message"] == "containers with incomplete status: [init-b]"
    h.runtime.finish(h.containers("init-b")[0].id, 0)
    p = await phase_is(h, "p", "Running")
    await h.until(lambda: h.containers("main"))
    starts = [h.runtime.containers[c[1][0]][1].name for c in h.runtime.calls if c[0] == "start_container"]
    assert starts == ["init-a", "side", "init-b", "main"]
    side = istatus(p, "side")
    assert "running" in side["state"] and side["started"] is True and side["ready"] is True
    done = istatus(p, "init-a")
    assert done["state"]["terminated"]["reason"] == "Completed" and done["ready"] is True and done["started"] is False
    assert {t: c["status"] for t, c in conds(p).items()} == {
        "PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True", "ContainersReady": "True",
        "PodScheduled": "True"}
    assert [s["name"] for s in p["status"]["initContainerStatuses"]] == ["init-a", "side", "init-b"]
    assert h.containers("side")[0].state == ContainerState.RUNNING and len(h.containers("side")) == 1


async def test_a_sidecars_startup_probe_gates_the_next_init_container(h: Harness) -> None:
    h.runtime.exec_results[("side", ("started",))] = ExecResult(1, b"not yet", b"")
    probe = {"exec": {"command": ["started"]}, "periodSeconds": 1, "failureThreshold": 30}
    await h.create_pod("p", [MAIN], initContainers=[sidecar(startupProbe=probe), init("init-b")])
    await h.until(lambda: h.containers("side"))
    await h.tick(3)
    await h.tick(3)
    assert not h.containers("init-b")
    p = await h.pod("p")
    side = istatus(p, "side")
    assert "running" in side["state"] and side["started"] is False and side["ready"] is False
    assert conds(p)["Initialized"]["message"] == "containers with incomplete status: [side init-b]"
    assert p["status"]["phase"] == "Pending"
    h.runtime.exec_results[("side", ("started",))] = ExecResult(0, b"", b"")
    await h.until(lambda: h.containers("init-b"), step=0.5)
    p = await h.pod("p")
    assert istatus(p, "side")["started"] is True


async def test_a_failed_sidecar_is_restarted_while_the_main_container_keeps_running(h: Harness) -> None:
    await h.create_pod("p", [MAIN], initContainers=[sidecar()], restartPolicy="Never")
    await phase_is(h, "p", "Running")
    await h.until(lambda: h.containers("main"))
    main_id = h.containers("main")[0].id
    h.runtime.finish(h.containers("side")[0].id, 1)
    await h.until(lambda: h.containers("side")[-1].state == ContainerState.RUNNING
                  and h.containers("side")[-1].attempt == 1, step=0.5)

    async def restarted() -> dict | None:
        p = await h.pod("p")
        return p if istatus(p, "side").get("restartCount") == 1 and "running" in istatus(p, "side")["state"] else None
    p = await h.until(restarted, step=0.5)
    assert istatus(p, "side")["lastState"]["terminated"]["exitCode"] == 1
    assert cstatus(p, "main")["restartCount"] == 0 and "running" in cstatus(p, "main")["state"]
    assert [c.id for c in h.containers("main")] == [main_id]
    assert p["status"]["phase"] == "Running"
    # a second failure: CrashLoopBackOff for 10 s, as for any container
    h.runtime.finish(h.containers("side")[-1].id, 1)

    async def backing_off() -> dict | None:
        p = await h.pod("p")
        w = istatus(p, "side").get("state", {}).get("waiting") or {}
        return p if w.get("reason") == "CrashLoopBackOff" else None
    p = await h.until(backing_off, step=0.5)
    assert p["status"]["phase"] == "Running"
    assert conds(p)["Ready"]["message"] == "containers with unready status: [side]"
    await h.until(lambda: h.containers("side")[-1].attempt == 2, timeout=10, step=1)
    assert [c.id for c in h.containers("main")] == [main_id]


@pytest.mark.parametrize("policy, exit_code, phase", [("Never", 0, "Succeeded"), ("Never", 1, "Failed"),
                                                      ("OnFailure", 0, "Succeeded")])
async def test_the_pod_ends_when_its_main_containers_are_done_and_its_sidecars_are_stopped(
        h: Harness, policy: str, exit_code: int, phase: str) -> None:
    await h.create_pod("p", [MAIN], initContainers=[sidecar("side-1"), sidecar("side-2")], restartPolicy=policy,
                       terminationGracePeriodSeconds=5)
    await phase_is(h, "p", "Running")
    await h.until(lambda: h.containers("main"))
    h.runtime.calls.clear()
    h.runtime.finish(h.containers("main")[0].id, exit_code)
    p = await phase_is(h, "p", phase)
    stops = [(h.runtime.containers[c[1][0]][1].name, c[1][1]) for c in h.runtime.calls if c[0] == "stop_container"]
    assert stops[:2] == [("side-2", 5.0), ("side-1", 5.0)]  # reverse order, with the pod's grace period
    assert not [c for c in h.runtime.calls if c[0] == "start_container"]  # no sidecar restarted
    for name in ("side-1", "side-2"):
        assert "terminated" in istatus(p, name)["state"]
        assert istatus(p, name)["restartCount"] == 0
    assert cstatus(p, "main")["state"]["terminated"]["exitCode"] == exit_code
    assert all(c.state == ContainerState.EXITED for c in h.containers())


async def test_with_restart_policy_always_the_main_container_restarts_and_sidecars_stay(h: Harness) -> None:
    await h.create_pod("p", [MAIN], initContainers=[sidecar()])
    await phase_is(h, "p", "Running")
    await h.until(lambda: h.containers("main"))
    side_id = h.containers("side")[0].id
    h.runtime.finish(h.containers("main")[0].id, 0)
    await h.until(lambda: len(h.containers("main")) == 2, step=0.5)
    assert [c.id for c in h.containers("side")] == [side_id]
    assert h.containers("side")[0].state == ContainerState.RUNNING
    assert (await h.pod("p"))["status"]["phase"] == "Running"


async def test_deletion_stops_the_containers_then_the_sidecars_in_reverse_order(h: Harness) -> None:
    await h.create_pod("p", [MAIN, dict(MAIN, name="main-2")], initContainers=[sidecar("side-1"), sidecar("side-2")],
                       terminationGracePeriodSeconds=7)
    await phase_is(h, "p", "Running")
    await h.until(lambda: h.containers("main-2"))
    names = {c.id: c.name for c in h.containers()}
    await h.client.delete("pods", "p", "default")

    async def gone() -> bool:
        return await h.client.get_or_none("pods", "p", "default") is None
    await h.until(gone)
    stops = [names[c[1][0]] for c in h.runtime.calls if c[0] == "stop_container"]
    assert sorted(stops[:2]) == ["main", "main-2"] and stops[2:] == ["side-2", "side-1"]


async def test_the_ready_condition_counts_the_sidecars_readiness(h: Harness) -> None:
    h.runtime.exec_results[("side", ("ready",))] = ExecResult(1, b"", b"")
    probe = {"exec": {"command": ["ready"]}, "periodSeconds": 1, "failureThreshold": 1}
    await h.create_pod("p", [MAIN], initContainers=[sidecar(readinessProbe=probe)])
    p = await phase_is(h, "p", "Running")
    await h.until(lambda: h.containers("main"))
    p = await h.pod("p")
    side = istatus(p, "side")
    assert side["started"] is True and side["ready"] is False
    assert conds(p)["Initialized"]["status"] == "True"
    assert conds(p)["Ready"]["status"] == "False"
    assert conds(p)["Ready"]["message"] == "containers with unready status: [side]"
    h.runtime.exec_results[("side", ("ready",))] = ExecResult(0, b"", b"")

    async def ready() -> bool:
        p = await h.pod("p")
        return conds(p)["Ready"]["status"] == "True" and istatus(p, "side")["ready"] is True
    await h.until(ready, step=1)


async def test_a_sidecars_liveness_failure_restarts_it(h: Harness) -> None:
    probe = {"exec": {"command": ["alive"]}, "periodSeconds": 1, "failureThreshold": 2}
    await h.create_pod("p", [MAIN], initContainers=[sidecar(livenessProbe=probe)])
    await phase_is(h, "p", "Running")
    await h.until(lambda: h.containers("main"))
    h.runtime.exec_results[("side", ("alive",))] = ExecResult(1, b"dead", b"")
    await h.until(lambda: len(h.containers("side")) == 2, step=1)
    assert len(h.containers("main")) == 1
    killing = [e["message"] for e in await h.events("Killing")]
    assert "Container side failed liveness probe, will be restarted" in killing


# ------------------------------------------------------------------ pure functions

def _rec(name: str, state: ContainerState, exit_code: int | None = None, attempt: int = 0) -> ContainerStatus:
    return ContainerStatus(id=f"{name}-{attempt}", name=name, sandbox_id="sb", image="busybox", image_id="",
                           state=state, created_at=1.0, started_at=1.0, finished_at=2.0 if exit_code is not None
                           else None, exit_code=exit_code, attempt=attempt)


def _view(spec: dict, *records: ContainerStatus, started: bool = True, ready: bool = True) -> ContainerView:
    return ContainerView(spec=spec, records=list(records), started=started, ready=ready)


def _phase(policy: str, side: ContainerView, main: ContainerView) -> str:
    spec = {"restartPolicy": policy, "initContainers": [side.spec], "containers": [main.spec]}
    inits = pstatus.init_container_statuses([side], {})
    return pstatus.phase(spec, inits, [pstatus.container_status(main, {})])


@pytest.mark.parametrize("policy, side_state, main_exit, expected", [
    ("Never", ContainerState.RUNNING, 0, "Running"),  # the sidecar still runs: not yet Succeeded
    ("Never", ContainerState.EXITED, 0, "Succeeded"),  # a stopped sidecar (exit 137/143) does not count
    ("Never", ContainerState.EXITED, 1, "Failed"),
    ("OnFailure", ContainerState.EXITED, 0, "Succeeded"),
    ("OnFailure", ContainerState.RUNNING, 1, "Running"),
    ("Always", ContainerState.EXITED, 0, "Running"),
    ("Never", ContainerState.RUNNING, None, "Running"),
])
def test_phase_with_sidecars(policy: str, side_state: ContainerState, main_exit: int | None, expected: str) -> None:
    side = _view(sidecar(), _rec("side", side_state, 143 if side_state == ContainerState.EXITED else None))
    main = _view(MAIN, _rec("main", ContainerState.EXITED if main_exit is not None else ContainerState.RUNNING,
                            main_exit))
    assert _phase(policy, side, main) == expected


def test_phase_is_pending_until_the_sidecar_has_started_but_not_once_the_pod_was_initialized() -> None:
    side = _view(sidecar(), _rec("side", ContainerState.RUNNING), started=False, ready=False)
    assert _phase("Always", side, _view(MAIN)) == "Pending"
    # the sidecar restarts after the main container ran: the pod does not go back to Pending
    restarting = _view(sidecar(), _rec("side", ContainerState.EXITED, 1), _rec("side", ContainerState.RUNNING,
                                                                              attempt=1), started=False, ready=False)
    assert _phase("Always", restarting, _view(MAIN, _rec("main", ContainerState.RUNNING))) == "Running"


def test_mains_done_follows_the_pods_restart_policy() -> None:
    ok = [_view(MAIN, _rec("main", ContainerState.EXITED, 0))]
    failed = [_view(MAIN, _rec("main", ContainerState.EXITED, 2))]
    running = [_view(MAIN, _rec("main", ContainerState.RUNNING))]
    assert mains_done("Never", ok) and mains_done("Never", failed) and mains_done("OnFailure", ok)
    assert not mains_done("OnFailure", failed) and not mains_done("Always", ok) and not mains_done("Never", running)


async def test_termination_order_waits_for_the_containers_then_gives_up_at_the_grace_period() -> None:
    clock = FakeClock()
    spec = {"initContainers": [init("i"), sidecar("s1"), sidecar("s2")], "containers": [MAIN]}
    order = TerminationOrder(spec, ["s1", "s2", "main"], clock)
    assert order.waits_for("s1") == ["main", "s2"] and order.waits_for("s2") == ["main"]
    assert order.waits_for("main") == [] and order.waits_for("i") == []
    s2 = asyncio.ensure_future(order.wait_for_turn("s2", 10))
    await asyncio.sleep(0)
    assert not s2.done()
    order.terminated("main")
    assert await s2 == 0.0
    s1 = asyncio.ensure_future(order.wait_for_turn("s1", 10))  # s2 never stops: s1 waits out its grace
    for _ in range(5):
        await asyncio.sleep(0)
    assert not s1.done()
    await clock.advance(10)
    assert await s1 == 10.0
