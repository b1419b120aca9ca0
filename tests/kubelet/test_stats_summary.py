"""The kubelet's Summary API: the node from /proc (busy CPU time, MemTotal - MemAvailable),
each running container from the runtime's cgroup stats, pods as their containers' sums;
stopped containers and containers without stats are left out; served at /stats/summary."""

from __future__ import annotations

import os
from pathlib import Path

from k8py.kubelet.stats import summary
from k8py.runtime.fake import FakeRuntime
from k8py.runtime.protocol import ContainerConfig, ContainerStats, PodSandboxConfig

MI = 1 << 20


def _proc(tmp_path: Path) -> Path:
    (tmp_path / "stat").write_text("cpu  100 20 30 5000 7 1 2 3 0 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n")
    (tmp_path / "meminfo").write_text("MemTotal:       8000000 kB\nMemFree:        1000000 kB\n"
                                      "MemAvailable:   6000000 kB\n")
    return tmp_path


async def _container(rt: FakeRuntime, sid: str, name: str, stats: ContainerStats | None, start: bool = True) -> str:
    cid = await rt.create_container(sid, ContainerConfig(name=name, image="busybox"))
    if start:
        await rt.start_container(cid)
    if stats is not None:
        rt.stats[cid] = stats
    return cid


async def test_summary_of_node_pods_and_containers(tmp_path: Path) -> None:
    rt = FakeRuntime()
    await rt.pull_image("busybox")
    sid = await rt.run_pod_sandbox(PodSandboxConfig(name="web", namespace="default", uid="u1"))
    await _container(rt, sid, "app", ContainerStats(1.0, 3_000_000_000, 100 * MI, 120 * MI))
    await _container(rt, sid, "side", ContainerStats(1.0, 1_000_000_000, 20 * MI, 30 * MI))
    await _container(rt, sid, "nostats", None)
    await _container(rt, sid, "created", ContainerStats(1.0, 5, 5, 5), start=False)
    doc = await summary(rt, "n1", _proc(tmp_path))
    node = doc["node"]
    assert node["nodeName"] == "n1"
    hz = os.sysconf("SC_CLK_TCK")
    assert node["cpu"]["usageCoreNanoSeconds"] == (100 + 20 + 30 + 1 + 2 + 3) * 1_000_000_000 // hz
    assert node["memory"]["workingSetBytes"] == 2_000_000 * 1024
    assert node["memory"]["usageBytes"] == 7_000_000 * 1024
    [pod] = doc["pods"]
    assert pod["podRef"] == {"name": "web", "namespace": "default", "uid": "u1"}
    assert [c["name"] for c in pod["containers"]] == ["app", "side"]
    assert pod["containers"][0]["cpu"]["usageCoreNanoSeconds"] == 3_000_000_000
    assert pod["containers"][0]["memory"]["workingSetBytes"] == 100 * MI
    assert pod["cpu"]["usageCoreNanoSeconds"] == 4_000_000_000
    assert pod["memory"] == {"time": pod["memory"]["time"], "workingSetBytes": 120 * MI, "usageBytes": 150 * MI}


async def test_stopped_sandboxes_are_left_out(tmp_path: Path) -> None:
    rt = FakeRuntime()
    await rt.pull_image("busybox")
    sid = await rt.run_pod_sandbox(PodSandboxConfig(name="gone", namespace="default", uid="u2"))
    await _container(rt, sid, "app", ContainerStats(1.0, 1, 1, 1))
    await rt.stop_pod_sandbox(sid)
    assert (await summary(rt, "n1", _proc(tmp_path)))["pods"] == []

