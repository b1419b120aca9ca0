"""The kubelet honours a pod's RuntimeClass: handler `runc` runs, another handler gets
no sandbox and a FailedCreatePodSandBox event, as a node without that runtime answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_helpers import Harness, harness_fixture

BUSY = {"name": "main", "image": "busybox:1.28", "command": ["sleep", "3600"]}


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async for x in harness_fixture(tmp_path):
        yield x


async def runtime_class(h: Harness, name: str, handler: str) -> None:
    await h.client.create("runtimeclasses", {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                                             "metadata": {"name": name}, "handler": handler})


async def test_runc_handler_runs(h: Harness) -> None:
    await runtime_class(h, "standard", "runc")
    await h.create_pod("p", [BUSY], runtimeClassName="standard")

    async def running() -> bool:
        return (await h.pod("p")).get("status", {}).get("phase") == "Running"
    await h.until(running)


async def test_other_handler_gets_no_sandbox(h: Harness) -> None:
    await runtime_class(h, "kata", "kata")
    await h.create_pod("p", [BUSY], runtimeClassName="kata")

    async def failed() -> list[dict]:
        return await h.events("FailedCreatePodSandBox")
    evs = await h.until(failed, step=1.0)
    assert evs[0]["message"] == ('Failed to create pod sandbox: failed to get sandbox runtime: '
                                 'no runtime for "kata" is configured')
    assert not h.runtime.containers and (await h.pod("p")).get("status", {}).get("phase", "Pending") == "Pending"
