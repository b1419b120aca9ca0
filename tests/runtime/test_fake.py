"""FakeRuntime: the in-memory ContainerRuntime kubelet tests use."""
from __future__ import annotations

import pytest

from k8py.runtime.errors import CreateContainerError, ImagePullError, StartError
from k8py.runtime.fake import FakeRuntime
from k8py.runtime.protocol import (
    ContainerConfig,
    ContainerRuntime,
    ContainerState,
    ExecResult,
    PodSandboxConfig,
    SandboxState,
)
from k8py.runtime.runc import RuncRuntime


def test_both_runtimes_satisfy_the_protocol() -> None:
    assert isinstance(FakeRuntime(), ContainerRuntime)
    missing = [m for m in dir(ContainerRuntime) if not m.startswith("_") and not hasattr(RuncRuntime, m)
               and m != "name"]
    assert missing == []


async def test_lifecycle() -> None:
    clock = iter(range(100, 200))
    rt = FakeRuntime(now=lambda: float(next(clock)))
    sid = await rt.run_pod_sandbox(PodSandboxConfig(name="p", namespace="ns", uid="u1"))
    with pytest.raises(CreateContainerError, match="not present"):
        await rt.create_container(sid, ContainerConfig(name="c", image="nginx"))
    await rt.pull_image("nginx")
    cid = await rt.create_container(sid, ContainerConfig(name="c", image="docker.io/library/nginx:latest"))
    assert (await rt.container_status(cid)).state == ContainerState.CREATED
    await rt.start_container(cid)
    rt.exec_results[("c", ("cat", "/ready"))] = ExecResult(1, b"", b"no")
    assert (await rt.exec_sync(cid, ["cat", "/ready"])).exit_code == 1
    rt.finish(cid, 137, "OOMKilled")
    st = await rt.container_status(cid)
    assert (st.state, st.exit_code, st.reason) == (ContainerState.EXITED, 137, "OOMKilled")
    assert st.started_at is not None and st.finished_at is not None and st.finished_at > st.started_at
    await rt.stop_pod_sandbox(sid)
    assert (await rt.pod_sandbox_status(sid)).state == SandboxState.NOTREADY
    await rt.remove_pod_sandbox(sid)
    assert await rt.list_containers() == [] and await rt.list_pod_sandboxes() == []
    assert [c[0] for c in rt.calls][:3] == ["run_pod_sandbox", "create_container", "pull_image"]


async def test_pull_errors() -> None:
    rt = FakeRuntime()
    rt.pull_errors["docker.io/library/nginx:nope"] = ImagePullError("nginx:nope", "not found", "not found")
    with pytest.raises(ImagePullError):
        await rt.pull_image("nginx:nope")
    assert await rt.image_status("nginx:nope") is None


async def test_create_and_start_raise_their_step_errors() -> None:
    """The runtime contract: every create failure is a CreateContainerError, every start failure a StartError."""
    rt = FakeRuntime()
    await rt.pull_image("nginx")
    cfg = ContainerConfig(name="c", image="docker.io/library/nginx:latest")
    with pytest.raises(CreateContainerError, match="not found"):
        await rt.create_container("no-such-sandbox", cfg)
    sid = await rt.run_pod_sandbox(PodSandboxConfig(name="p", namespace="ns", uid="u1"))
    cid = await rt.create_container(sid, cfg)
    await rt.start_container(cid)
    with pytest.raises(StartError, match="is running") as e:
        await rt.start_container(cid)
    assert e.value.reason == "StartError"
    with pytest.raises(StartError, match="not found"):
        await rt.start_container("no-such-container")
