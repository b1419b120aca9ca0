"""Leader election on a Lease (FakeClock, in-memory store, in-process API): one leader at a
time, a standby takes over only once the Lease expired (or was released), a leader that
cannot renew stops leading."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.events import EventRecorder
from k8py.client.leaderelection import LeaderElectionConfig, LeaderElector
from k8py.clock import FakeClock
from tests.helpers.api import eventually, start_api

LAB = LeaderElectionConfig(lease_duration=3.0, renew_deadline=2.0, retry_period=0.5)


class Candidate:
    """An elector running `lead` (which records that it runs) as a task."""

    def __init__(self, client: Client, clock: FakeClock, identity: str,
                 config: LeaderElectionConfig = LAB) -> None:
        self.recorder = EventRecorder(client, "kube-scheduler", clock)
        self.elector = LeaderElector(client, clock, "kube-scheduler", identity, config, recorder=self.recorder)
        self.leading = False
        self.task = asyncio.ensure_future(self.elector.run(self._lead))

    async def _lead(self) -> None:
        self.leading = True
        try:
            await asyncio.Event().wait()
        finally:
            self.leading = False

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.recorder.close()


@pytest.fixture
async def env() -> AsyncIterator[tuple[ApiServer, Client, FakeClock]]:
    clock = FakeClock()
    api, client = await start_api(clock)
    try:
        yield api, client, clock
    finally:
        await api.close()


async def run_for(clock: FakeClock, seconds: float, step: float = 0.25) -> None:
    for _ in range(round(seconds / step)):
        await clock.advance(step)
        await asyncio.sleep(0.001)


async def holder(client: Client) -> Any:
    return (await client.get("leases", "kube-scheduler", "kube-system"))["spec"]


async def test_the_first_candidate_leads_and_the_lease_names_it(env: Any) -> None:
    _, client, clock = env
    a = Candidate(client, clock, "host_127.0.0.1:6443", LeaderElectionConfig())
    try:
        await eventually(lambda: a.leading, what="a leads")
        spec = await holder(client)
        assert spec["holderIdentity"] == "host_127.0.0.1:6443"
        assert spec["leaseDurationSeconds"] == 15 and spec["leaseTransitions"] == 0
        assert spec["acquireTime"] == spec["renewTime"]
        await run_for(clock, 2.5)
        assert (await holder(client))["renewTime"] > spec["renewTime"]  # renewed every retry period
        await a.recorder.flush()
        events = (await client.list("events", "kube-system"))["items"]
        assert [(e["reason"], e["message"], e["involvedObject"]["kind"]) for e in events] == [
            ("LeaderElection", "host_127.0.0.1:6443 became leader", "Lease")]
    finally:
        await a.stop()


async def test_a_standby_takes_over_only_when_the_lease_expired(env: Any) -> None:
    _, client, clock = env
    a = Candidate(client, clock, "a")
    await eventually(lambda: a.leading, what="a leads")
    b = Candidate(client, clock, "b")
    try:
        await run_for(clock, 10)  # a renews: b stands by
        assert a.leading and not b.leading
        a.elector._release = _no_release  # type: ignore[method-assign]  # a dies as with kill -9
        await a.stop()
        await run_for(clock, 2.0)  # the Lease has not expired yet (3 s unchanged, seen by b)
        assert not b.leading
        await run_for(clock, 2.0)
        await eventually(lambda: b.leading, what="b leads")
        spec = await holder(client)
        assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
    finally:
        await b.stop()


async def _no_release() -> None:
    return None


async def test_a_released_lease_is_taken_at_the_next_retry(env: Any) -> None:
    _, client, clock = env
    a = Candidate(client, clock, "a")
    await eventually(lambda: a.leading, what="a leads")
    b = Candidate(client, clock, "b")
    try:
        await run_for(clock, 1)
        await a.stop()  # a graceful stop releases the Lease
        assert (await holder(client))["holderIdentity"] == ""
        await run_for(clock, 0.5)
        await eventually(lambda: b.leading, what="b leads")
    finally:
        await b.stop()


async def test_a_leader_that_cannot_renew_stops_before_the_lease_expires(env: Any) -> None:
    _, client, clock = env
    a = Candidate(client, clock, "a")
    await eventually(lambda: a.leading, what="a leads")
    b = Candidate(client, clock, "b")
    try:
        async def broken(*_a: Any, **_k: Any) -> Any:
            raise ApiError(503, {"reason": "ServiceUnavailable", "message": "etcd unavailable"})
        a.elector.client = _Broken(client, broken)  # type: ignore[assignment]
        await run_for(clock, LAB.renew_deadline + 0.5)
        assert not a.leading and not b.leading  # a stopped; b still waits for the expiry
        await run_for(clock, 1.5)
        await eventually(lambda: b.leading, what="b leads")
    finally:
        await a.stop()
        await b.stop()


class _Broken:
    """A client whose every call fails."""

    def __init__(self, inner: Client, fail: Any) -> None:
        self.inner, self.fail = inner, fail

    def __getattr__(self, name: str) -> Any:
        return self.fail


@pytest.mark.parametrize("duration, deadline, retry", [(10, 10, 2), (15, 2, 2), (15, 10, 0), (5, 10, 2)])
def test_bad_timings_are_refused(duration: float, deadline: float, retry: float) -> None:
    with pytest.raises(ValueError, match="leader-elect"):
        LeaderElectionConfig(duration, deadline, retry).validate()
