"""The service proxy's component entry point (`proxy/run.py`): it runs only next to a node
agent on a host with root and nftables, else it says what is missing and returns."""

from __future__ import annotations

import os
import shutil

import pytest

from k8py.client.client import Client
from k8py.clock import FakeClock
from k8py.component import ClusterContext, LocalNode
from k8py.proxy.run import run, table_name


def _no_client() -> Client:
    raise AssertionError("a proxy that cannot run must not call the API")


def _ctx(node: LocalNode | None) -> ClusterContext:
    return ClusterContext(clock=FakeClock(), client=_no_client, node=node)


@pytest.mark.parametrize("euid,nft,agent_missing,want", [
    (1000, None, (), "root, nftables (apt install nftables)"),
    (0, "/usr/sbin/nft", ("runc (apt install runc)",), "runc (apt install runc)"),
    (1000, "/usr/sbin/nft", ("root (run k8py server as root)",), "root"),  # its own first
])
async def test_says_what_is_missing(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                    euid: int, nft: str | None, agent_missing: tuple[str, ...], want: str) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    monkeypatch.setattr(shutil, "which", lambda name: nft if name == "nft" else "/usr/bin/" + name)
    await run(_ctx(LocalNode(name="n1", missing=agent_missing)))
    assert capsys.readouterr().err == f"k8py: running without the service proxy: missing {want}\n"


async def test_no_node_no_proxy(capsys: pytest.CaptureFixture[str]) -> None:
    await run(_ctx(None))
    assert capsys.readouterr().err == ""


def test_table_name() -> None:
    assert (table_name(""), table_name("ab12cd")) == ("k8py", "k8py-ab12cd")
