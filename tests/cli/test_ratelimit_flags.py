"""`k8py server --kube-api-qps/--kube-api-burst`: the flags reach the components'
options, and the controller manager gives each controller a limiter of its own."""

from __future__ import annotations

import argparse

import pytest

from k8py.cli import server
from k8py.client.client import Client
from k8py.client.ratelimit import RateLimit, TokenBucket
from k8py.clock import FakeClock
from k8py.controllers.manager import ControllerManager, ControllerManagerOptions


@pytest.mark.parametrize("argv, want", [
    ([], (0.0, 0)),  # 0: each component's Kubernetes default
    (["--kube-api-qps", "200", "--kube-api-burst", "400"], (200.0, 400)),
    (["--kube-api-qps", "-1"], (-1.0, 0)),
])
def test_flags(argv: list[str], want: tuple[float, int]) -> None:
    p = argparse.ArgumentParser()
    server.add_arguments(p)
    a = server.args_from(p.parse_args(argv))
    assert (a.kube_api_qps, a.kube_api_burst) == want


class NoTransport:
    async def request(self, *a: object, **k: object) -> tuple[int, object]:
        raise AssertionError("no request expected")

    def stream(self, *a: object, **k: object) -> object:
        raise AssertionError("no request expected")

    async def close(self) -> None:
        pass


def test_each_controller_has_its_own_limiter() -> None:
    cm = ControllerManager(Client(NoTransport()), FakeClock(), ControllerManagerOptions(
        enabled=("replicaset", "deployment", "job"), rate_limit=RateLimit(20.0, 30)))
    limiters = [c.client.rate_limiter for c in cm.controllers.values()]
    assert all(isinstance(b, TokenBucket) and (b.qps, b.burst) == (20.0, 30) for b in limiters)
    assert len({id(b) for b in limiters}) == 3
    unlimited = ControllerManager(Client(NoTransport()), FakeClock(),
                                  ControllerManagerOptions(enabled=("replicaset",)))
    assert unlimited.controllers["replicaset"].client.rate_limiter is None
