"""The cluster DNS's component entry point (`dns/run.py`): it runs only next to a node
agent on a host with root, else it says what is missing; K8PY_DNS_UPSTREAM picks the
resolvers for names outside the cluster."""

from __future__ import annotations

import os

import pytest

from k8py.client.client import Client
from k8py.clock import FakeClock
from k8py.component import ClusterContext, LocalNode
from k8py.dns import run as dns_run


def _no_client() -> Client:
    raise AssertionError("a DNS that cannot run must not call the API")


def _ctx(node: LocalNode | None) -> ClusterContext:
    return ClusterContext(clock=FakeClock(), client=_no_client, node=node)


@pytest.mark.parametrize("euid,agent_missing,want", [
    (1000, (), "root"),
    (0, ("runc (apt install runc)",), "runc (apt install runc)"),
])
async def test_says_what_is_missing(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                    euid: int, agent_missing: tuple[str, ...], want: str) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    await dns_run.run(_ctx(LocalNode(name="n1", missing=agent_missing)))
    assert capsys.readouterr().err == f"k8py: running without the cluster DNS: missing {want}\n"


async def test_no_node_no_dns(capsys: pytest.CaptureFixture[str]) -> None:
    await dns_run.run(_ctx(None))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("value,want", [(None, None), ("none", []), ("", []),
                                        ("10.0.0.1, 10.0.0.2,", ["10.0.0.1", "10.0.0.2"])])
def test_upstreams(monkeypatch: pytest.MonkeyPatch, value: str | None, want: list[str] | None) -> None:
    if value is None:
        monkeypatch.delenv("K8PY_DNS_UPSTREAM", raising=False)
    else:
        monkeypatch.setenv("K8PY_DNS_UPSTREAM", value)
    assert dns_run._upstreams() == want
