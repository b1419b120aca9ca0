"""Pod workers over FakeRuntime and FakeClock: start, status, restart policies and
back-off, init containers, image pulls, adoption, orphans, graceful deletion."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from k8py.runtime.errors import ImagePullError
from k8py.runtime.protocol import ContainerState

from agent_helpers import Harness, cstatus, harness_fixture, make_harness

BUSY = {"name": "main", "image": "busybox:1.28", "command": ["sleep", "3600"]}


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async for x in harness_fixture(tmp_path):
        yield x


async def running(h: Harness, name: str) -> dict:
    async def ok() -> dict | None:
        p = await h.pod(name)
        return p if (p.get("status") or {}).get("phase") == "Running" else None
    return await h.until(ok)


async def test_node_is_registered_with_capacity_and_lease(h: Harness) -> None:
    node = await h.client.get("nodes", "node-1")
    st = node["status"]
    assert set(st["capacity"]) == {"cpu", "memory", "ephemeral-storage", "pods"}
    assert st["allocatable"]["pods"] == "110"
    assert {c["type"]: c["status"] for c in st["conditions"]} == {
        "Ready": "True", "MemoryPressure": "False", "DiskPressure": "False", "PIDPressure": "False"}
    assert {"type": "InternalIP", "address": "127.0.0.1"} in st["addresses"]
    assert st["nodeInfo"]["containerRuntimeVersion"].startswith("fake://")
    lease = await h.client.get("leases", "node-1", "kube-node-lease")
    assert lease["spec"]["holderIdentity"] == "node-1"


async def test_pod_starts_and_reports_status_and_events(h: Harness) -> None:
    await h.create_pod("web", [dict(BUSY, resources={"limits": {"cpu": "1", "memory": "64Mi"}})])
    p = await running(h, "web")
    st = p["status"]
    assert st["qosClass"] == "Guaranteed"
    assert st["hostIP"] == "127.0.0.1" and st["startTime"]
    conds = {c["type"]: c["status"] for c in st["conditions"]}
    assert conds == {"PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
                     "ContainersReady": "True", "PodScheduled": "True"}
    cs = cstatus(p)
    assert cs["ready"] and cs["started"] and cs["restartCount"] == 0 and "running" in cs["state"]
    assert cs["containerID"].startswith("runc://")
    (cfg, _), = [v for v in h.runtime.containers.values()]
    assert cfg.memory_limit_bytes == 64 << 20 and cfg.cpu_limit_millis == 1000
    assert cfg.labels["io.kubernetes.pod.name"] == "web"
    reasons = [e["reason"] for e in await h.events()]
    for r in ("Pulling", "Pulled", "Created", "Started"):
        assert r in reasons
    pulled = next(e for e in await h.events("Pulled"))
    assert pulled["message"].startswith('Successfully pulled image "busybox:1.28" in ')
    assert pulled["source"] == {"component": "kubelet", "host": "node-1"}


@pytest.mark.parametrize("policy, exit_code, phase, restarts", [
    ("Always", 0, "Running", True),
    ("OnFailure", 0, "Succeeded", False),
    ("OnFailure", 1, "Running", True),
    ("Never", 1, "Failed", False),
    ("Never", 0, "Succeeded", False),
])
async def test_restart_policy(h: Harness, policy: str, exit_code: int, phase: str, restarts: bool) -> None:
    await h.create_pod("p", [BUSY], restartPolicy=policy)
    await running(h, "p")
    h.runtime.finish(h.containers("main")[0].id, exit_code)
    await h.tick()
    if restarts:
        await h.until(lambda: len(h.containers("main")) == 2, step=1)
        p = await h.until(lambda: _restarted(h))
        assert cstatus(p)["lastState"]["terminated"]["exitCode"] == exit_code
    else:
        async def done() -> dict | None:
            p = await h.pod("p")
            return p if p["status"].get("phase") == phase else None
        p = await h.until(done)
        assert len(h.containers("main")) == 1
        assert cstatus(p)["state"]["terminated"]["exitCode"] == exit_code
        assert cstatus(p)["state"]["terminated"]["reason"] == ("Completed" if exit_code == 0 else "Error")
    assert p["status"]["phase"] == phase


async def _restarted(h: Harness) -> dict | None:
    p = await h.pod("p")
    cs = cstatus(p)
    return p if cs.get("restartCount") == 1 and "running" in cs.get("state", {}) else None


async def test_crash_loop_back_off_doubles(h: Harness) -> None:
    await h.create_pod("p", [BUSY])
    await running(h, "p")
    # first exit: restarted at once (Kubernetes starts the back-off after the first restart)
    h.runtime.finish(h.containers("main")[-1].id, 1)
    await h.until(lambda: len(h.containers("main")) == 2, step=0.5)
    # second exit: CrashLoopBackOff for 10 s
    h.runtime.finish(h.containers("main")[-1].id, 1)
    await h.tick()

    async def waiting() -> dict | None:
        p = await h.pod("p")
        w = cstatus(p).get("state", {}).get("waiting") or {}
        return p if w.get("reason") == "CrashLoopBackOff" else None
    p = await h.until(waiting)
    assert cstatus(p)["state"]["waiting"]["message"].startswith(
        "back-off 10s restarting failed container=main pod=p_default(")
    assert cstatus(p)["lastState"]["terminated"]["exitCode"] == 1
    assert p["status"]["phase"] == "Running"
    await h.tick(8)
    assert len(h.containers("main")) == 2
    await h.tick(3)
    await h.until(lambda: h.containers("main")[-1].attempt == 2)
    backoffs = await h.events("BackOff")
    assert backoffs and backoffs[0]["message"].startswith("Back-off restarting failed container main in pod p_default(")
    # third exit: 20 s
    h.runtime.finish(h.containers("main")[-1].id, 1)
    await h.tick(15)
    assert h.containers("main")[-1].attempt == 2
    await h.tick(6)
    await h.until(lambda: h.containers("main")[-1].attempt == 3)
    assert len(h.containers("main")) == 2  # older attempts are removed


async def test_oom_killed_is_reported(h: Harness) -> None:
    await h.create_pod("p", [BUSY], restartPolicy="Never")
    await running(h, "p")
    h.runtime.finish(h.containers("main")[0].id, 137, "OOMKilled")
    await h.tick()

    async def failed() -> dict | None:
        p = await h.pod("p")
        return p if p["status"].get("phase") == "Failed" else None
    p = await h.until(failed)
    t = cstatus(p)["state"]["terminated"]
    assert (t["reason"], t["exitCode"]) == ("OOMKilled", 137)


async def test_init_containers_run_in_order_before_containers(h: Harness) -> None:
    inits = [{"name": "init-a", "image": "busybox"}, {"name": "init-b", "image": "busybox"}]
    await h.create_pod("p", [BUSY], initContainers=inits)
    await h.until(lambda: h.containers("init-a"))
    assert not h.containers("init-b") and not h.containers("main")

    async def pending_init() -> dict | None:
        p = await h.pod("p")
        conds = {c["type"]: c for c in p["status"].get("conditions") or []}
        return p if conds.get("Initialized", {}).get("status") == "False" else None
    p = await h.until(pending_init)
    assert p["status"]["phase"] == "Pending"
    init_cond = next(c for c in p["status"]["conditions"] if c["type"] == "Initialized")
    assert init_cond["reason"] == "ContainersNotInitialized"
    assert cstatus(p)["state"]["waiting"]["reason"] == "PodInitializing"
    h.runtime.finish(h.containers("init-a")[0].id, 0)
    await h.until(lambda: h.containers("init-b"), step=1)
    assert not h.containers("main")
    h.runtime.finish(h.containers("init-b")[0].id, 0)
    await h.until(lambda: h.containers("main"), step=1)
    p = await running(h, "p")
    assert [s["state"]["terminated"]["reason"] for s in p["status"]["initContainerStatuses"]] == ["Completed"] * 2


async def test_failed_init_container_fails_a_never_pod(h: Harness) -> None:
    await h.create_pod("p", [BUSY], initContainers=[{"name": "init", "image": "busybox"}], restartPolicy="Never")
    await h.until(lambda: h.containers("init"))
    h.runtime.finish(h.containers("init")[0].id, 2)

    async def failed() -> dict | None:
        p = await h.pod("p")
        return p if p["status"].get("phase") == "Failed" else None
    await h.until(failed, step=1)
    assert not h.containers("main")


async def test_image_pull_error_then_back_off(h: Harness) -> None:
    h.runtime.pull_errors["docker.io/library/nosuch:latest"] = ImagePullError(
        "docker.io/library/nosuch:latest", "manifest unknown: manifest unknown", "not found")
    await h.create_pod("p", [{"name": "main", "image": "nosuch"}])

    async def reason(r: str) -> dict | None:
        p = await h.pod("p")
        w = cstatus(p).get("state", {}).get("waiting") or {}
        return p if w.get("reason") == r else None
    p = await h.until(lambda: reason("ErrImagePull"))
    assert "manifest unknown" in cstatus(p)["state"]["waiting"]["message"]
    assert p["status"]["phase"] == "Pending"
    await h.tick(1)
    await h.until(lambda: reason("ImagePullBackOff"), step=1)
    failed = [e["message"] for e in await h.events("Failed")]
    assert any(m.startswith('Failed to pull image "nosuch": ') for m in failed)


async def test_a_start_failure_is_a_waiting_reason(tmp_path: Path) -> None:
    """The runtime's StartError reaches the container's status as it is (reason and message)."""
    from k8py.runtime.errors import StartError
    from k8py.runtime.fake import FakeRuntime

    class Refusing(FakeRuntime):
        async def start_container(self, container_id: str) -> None:
            raise StartError("failed to start container: exec: no such file")

    h = await make_harness(tmp_path, runtime=Refusing())
    h.start()
    try:
        await h.until(lambda: h.agent.ready.is_set())
        await h.create_pod("p", [BUSY])

        async def waiting() -> dict | None:
            w = cstatus(await h.pod("p")).get("state", {}).get("waiting") or {}
            return w if w.get("reason") == "StartError" else None
        w = await h.until(waiting)
        assert w["message"] == "failed to start container: exec: no such file"
        failed = [e["message"] for e in await h.events("Failed")]
        assert "Error: failed to start container: exec: no such file" in failed
    finally:
        await h.stop()


async def test_missing_secret_is_a_config_error(h: Harness) -> None:
    env = [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "password"}}}]
    await h.create_pod("p", [dict(BUSY, env=env)])

    async def reason() -> dict | None:
        p = await h.pod("p")
        w = cstatus(p).get("state", {}).get("waiting") or {}
        return p if w.get("reason") == "CreateContainerConfigError" else None
    p = await h.until(reason)
    assert cstatus(p)["state"]["waiting"]["message"] == 'secret "nope" not found'
    await h.client.create("secrets", {"metadata": {"name": "nope"}, "stringData": {"password": "x"}}, "default")
    await h.until(lambda: h.containers("main"), step=1)
    (cfg, _), = list(h.runtime.containers.values())
    assert ("PW", "x") in cfg.env


async def test_graceful_deletion_stops_containers_and_deletes_the_pod(h: Harness) -> None:
    await h.create_pod("p", [BUSY], terminationGracePeriodSeconds=7)
    await running(h, "p")
    await h.client.delete("pods", "p", "default")

    async def gone() -> bool:
        return await h.client.get_or_none("pods", "p", "default") is None
    await h.until(gone)
    stops = [c for c in h.runtime.calls if c[0] == "stop_container"]
    assert stops and stops[0][1][1] == 7.0
    assert not h.runtime.sandboxes and not h.runtime.containers
    assert not (h.tmp / "kubelet" / "pods").exists() or not list((h.tmp / "kubelet" / "pods").iterdir())
    killing = await h.events("Killing")
    assert killing[0]["message"] == "Stopping container main"


async def test_a_deleted_pod_reports_its_stopped_containers_unready_before_it_goes(h: Harness) -> None:
    await h.create_pod("p", [BUSY], terminationGracePeriodSeconds=7)
    await running(h, "p")
    patches: list[dict] = []
    patch = h.client.patch

    async def recording(resource: str, name: str, body: dict, *args: object, **kw: object) -> dict:
        if kw.get("subresource") == "status":
            patches.append(body["status"])
        return await patch(resource, name, body, *args, **kw)
    h.client.patch = recording  # type: ignore[method-assign]
    await h.client.delete("pods", "p", "default")

    async def gone() -> bool:
        return await h.client.get_or_none("pods", "p", "default") is None
    await h.until(gone)
    last = patches[-1]  # written after the stop, before the pod was deleted
    conds = {c["type"]: c for c in last["conditions"]}
    assert conds["Ready"]["status"] == conds["ContainersReady"]["status"] == "False"
    assert "terminated" in last["containerStatuses"][0]["state"]
    # stopped with SIGTERM (143, the fake runtime's graceful stop): a terminal Failed, as the kubelet's getPhase
    assert last["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 143
    assert last["phase"] == "Failed"


async def test_restarted_agent_adopts_running_containers(tmp_path: Path) -> None:
    h1 = await make_harness(tmp_path)
    h1.start()
    await h1.until(lambda: h1.agent.ready.is_set())
    await h1.create_pod("p", [BUSY])
    await running(h1, "p")
    await h1.stop()
    cid = h1.containers("main")[0].id
    # a new agent on the same runtime and API (the agent process restarted)
    from k8py.kubelet.agent import NodeAgent
    h1.agent = NodeAgent(h1.client, h1.runtime, None, "node-1", h1.clock, h1.agent.options)
    h1.runtime.calls.clear()
    h1.start()
    await h1.until(lambda: h1.agent.ready.is_set())
    await h1.until(lambda: "p" in [w.key.split("/")[1] for w in h1.agent.workers.values()])
    await h1.tick(2)
    assert [c.id for c in h1.containers("main")] == [cid]
    assert h1.containers("main")[0].state == ContainerState.RUNNING
    assert not [c for c in h1.runtime.calls if c[0] in ("create_container", "run_pod_sandbox", "stop_container")]
    await h1.stop()


async def test_orphaned_sandboxes_are_removed(tmp_path: Path) -> None:
    from k8py.runtime.fake import FakeRuntime
    from k8py.runtime.protocol import PodSandboxConfig

    rt = FakeRuntime()
    sid = await rt.run_pod_sandbox(PodSandboxConfig(name="old", namespace="default", uid="gone-uid"))
    h = await make_harness(tmp_path, runtime=rt)
    h.start()
    await h.until(lambda: h.agent.ready.is_set())
    await h.until(lambda: sid not in rt.sandboxes)
    await h.stop()


async def test_liveness_failure_kills_and_restarts(h: Harness) -> None:
    from k8py.runtime.protocol import ExecResult

    probe = {"exec": {"command": ["check"]}, "periodSeconds": 1, "failureThreshold": 2}
    await h.create_pod("p", [dict(BUSY, livenessProbe=probe)])
    await running(h, "p")
    h.runtime.exec_results[("main", ("check",))] = ExecResult(1, b"not ok", b"")
    await h.until(lambda: len(h.containers("main")) == 2, step=1)
    unhealthy = await h.events("Unhealthy")
    assert unhealthy[0]["message"] == "Liveness probe failed: not ok"
    killing = await h.events("Killing")
    assert killing[0]["message"] == "Container main failed liveness probe, will be restarted"


async def test_readiness_probe_gates_ready(h: Harness) -> None:
    from k8py.runtime.protocol import ExecResult

    h.runtime.exec_results[("main", ("ready",))] = ExecResult(1, b"", b"")
    probe = {"exec": {"command": ["ready"]}, "periodSeconds": 1, "failureThreshold": 1}
    await h.create_pod("p", [dict(BUSY, readinessProbe=probe)])
    p = await running(h, "p")
    ready = {c["type"]: c for c in p["status"]["conditions"]}["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "ContainersNotReady"
    assert ready["message"] == "containers with unready status: [main]"
    h.runtime.exec_results[("main", ("ready",))] = ExecResult(0, b"", b"")

    async def is_ready() -> bool:
        p = await h.pod("p")
        return {c["type"]: c["status"] for c in p["status"]["conditions"]}["Ready"] == "True"
    await h.until(is_ready, step=1)


async def test_readiness_is_probed_while_a_deleted_pod_drains(h: Harness) -> None:
    import asyncio

    from k8py.runtime.protocol import ExecResult

    ready = {"exec": {"command": ["ready"]}, "periodSeconds": 1, "failureThreshold": 1}
    live = {"exec": {"command": ["live"]}, "periodSeconds": 1, "failureThreshold": 1}
    await h.create_pod("p", [dict(BUSY, readinessProbe=ready, livenessProbe=live)], terminationGracePeriodSeconds=30)
    await h.until(lambda: ready_status(h), step=1)
    release = asyncio.Event()
    stop = h.runtime.stop_container

    async def slow_stop(cid: str, timeout: float) -> None:  # the container drains until released
        await release.wait()
        await stop(cid, timeout)
    h.runtime.stop_container = slow_stop  # type: ignore[method-assign]
    await h.client.delete("pods", "p", "default")
    await h.until(lambda: h.events("Killing"))  # the drain has begun
    h.runtime.exec_results[("main", ("live",))] = ExecResult(1, b"", b"")  # no restart while draining
    h.runtime.exec_results[("main", ("ready",))] = ExecResult(1, b"", b"")  # the app stops being ready

    async def unready_while_draining() -> bool:
        p = await h.pod("p")
        conds = {c["type"]: c["status"] for c in p["status"]["conditions"]}
        return conds["Ready"] == "False" and "running" in p["status"]["containerStatuses"][0]["state"]
    await h.until(unready_while_draining, step=1)
    assert len(h.containers("main")) == 1  # the failing liveness probe restarted nothing
    release.set()

    async def gone() -> bool:
        return await h.client.get_or_none("pods", "p", "default") is None
    await h.until(gone)


async def ready_status(h: Harness) -> bool:
    p = await h.pod("p")
    return {c["type"]: c["status"] for c in (p.get("status") or {}).get("conditions") or []}.get("Ready") == "True"


async def test_a_changed_container_spec_restarts_the_container(h: Harness) -> None:
    p = await h.create_pod("p", [BUSY], restartPolicy="Never", terminationGracePeriodSeconds=5)
    await running(h, "p")
    first = h.containers("main")[0]
    c = dict(BUSY, image="busybox:1.27.2")
    await h.client.patch("pods", "p", {"spec": {"containers": [c]}}, "default", patch_type="strategic")
    await h.until(lambda: len(h.containers("main")) == 2, step=1)
    latest = h.containers("main")[-1]
    assert (latest.attempt, latest.image) == (1, "busybox:1.27.2")
    assert ("stop_container", (first.id, 5.0)) in h.runtime.calls
    killing = [e["message"] for e in await h.events("Killing")]
    assert "Container main definition changed, will be restarted" in killing
    assert p["metadata"]["name"] == "p"
