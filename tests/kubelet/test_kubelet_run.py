"""The node agent's component entry point (`kubelet/run.py`): without what it needs on
the host it says exactly what is missing and returns."""

from __future__ import annotations

import os
import shutil

import pytest

from k8py.client.client import Client
from k8py.clock import FakeClock
from k8py.component import ClusterContext, LocalNode
from k8py.kubelet.agent import missing_requirements
from k8py.kubelet.run import run


def _no_client() -> Client:
    raise AssertionError("an agent that cannot run must not call the API")


async def test_agent_says_what_is_missing(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "runc" else "/usr/bin/" + name)
    ctx = ClusterContext(clock=FakeClock(), client=_no_client,
                         node=LocalNode(name="n1", missing=tuple(missing_requirements())))
    await run(ctx)
    assert capsys.readouterr().err == ("k8py: running without the node agent (no containers): missing root "
                                       "(run k8py server as root), runc (apt install runc)\n")


async def test_no_node_no_agent(capsys: pytest.CaptureFixture[str]) -> None:
    await run(ClusterContext(clock=FakeClock(), client=_no_client))
    assert capsys.readouterr().err == ""
