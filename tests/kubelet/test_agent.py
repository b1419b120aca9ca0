"""The agent's node set-up: pod CIDR from node IPAM or the fallback, the node IP from the network."""

from __future__ import annotations

import asyncio
from pathlib import Path

from k8py.clock import FakeClock
from k8py.kubelet.agent import AgentOptions, NodeAgent
from k8py.runtime.fake import FakeRuntime

from helpers.api import start_api


class RecordingNetwork:
    def __init__(self) -> None:
        self.cidrs: list[str] = []

    async def start(self, pod_cidr: str) -> str:
        self.cidrs.append(pod_cidr)
        return "10.9.9.1"


async def _agent(tmp: Path, **opts: object) -> tuple[NodeAgent, RecordingNetwork, FakeClock, object]:
    clock = FakeClock()
    api, client = await start_api(clock)
    net = RecordingNetwork()
    o = AgentOptions(root_dir=str(tmp / "k"), log_root=str(tmp / "l"), **opts)  # type: ignore[arg-type]
    return NodeAgent(client, FakeRuntime(now=clock.now), net, "n1", clock, o), net, clock, client


async def _run_until_ready(agent: NodeAgent, clock: FakeClock, step: float) -> asyncio.Task[None]:
    task = asyncio.get_running_loop().create_task(agent.run())
    for _ in range(200):
        if agent.ready.is_set():
            break
        await clock.advance(step)
        await asyncio.sleep(0.001)
    assert agent.ready.is_set()
    return task


async def test_falls_back_when_no_pod_cidr_comes(tmp_path: Path) -> None:
    agent, net, clock, client = await _agent(tmp_path, pod_cidr_wait=3.0, fallback_pod_cidr="10.42.0.0/24")
    task = await _run_until_ready(agent, clock, 0.5)
    assert net.cidrs == ["10.42.0.0/24"]
    node = await client.get("nodes", "n1")  # type: ignore[attr-defined]
    assert {"type": "InternalIP", "address": "10.9.9.1"} in node["status"]["addresses"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_uses_the_pod_cidr_from_node_ipam(tmp_path: Path) -> None:
    agent, net, clock, client = await _agent(tmp_path, pod_cidr_wait=30.0)
    task = asyncio.get_running_loop().create_task(agent.run())
    for _ in range(100):
        if await client.get_or_none("nodes", "n1"):  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.005)
    await client.patch("nodes", "n1", {"spec": {"podCIDR": "10.42.7.0/24", "podCIDRs": ["10.42.7.0/24"]}})  # type: ignore[attr-defined]
    for _ in range(200):
        if agent.ready.is_set():
            break
        await clock.advance(0.2)
        await asyncio.sleep(0.001)
    assert net.cidrs == ["10.42.7.0/24"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
