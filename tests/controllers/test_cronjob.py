"""Cron schedules and the CronJob controller."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from k8py.clock import rfc3339
from k8py.controllers.cronjob import CronJobController
from k8py.controllers.cronschedule import parse_schedule
from k8py.controllers.errors import ScheduleError
from k8py.controllers.job import JobController

from ctrl_helpers import Cluster

Obj = dict[str, Any]


def ts(s: str) -> float:
    return datetime.strptime(s, "%Y-%m-%d %H:%M").replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize("spec,after,expected", [
    ("*/5 * * * *", "2024-01-01 10:02", "2024-01-01 10:05"),
    ("*/5 * * * *", "2024-01-01 10:05", "2024-01-01 10:10"),
    ("0 * * * *", "2024-01-01 10:00", "2024-01-01 11:00"),
    ("30 2 * * *", "2024-01-01 03:00", "2024-01-02 02:30"),
    ("0 0 1 * *", "2024-01-15 00:00", "2024-02-01 00:00"),
    ("0 9 * * MON-FRI", "2024-01-05 10:00", "2024-01-08 09:00"),   # Friday -> Monday
    ("0 0 13 * 5", "2024-01-01 00:00", "2024-01-05 00:00"),        # dom OR dow when both restricted
    ("0 0 29 FEB *", "2024-03-01 00:00", "2028-02-29 00:00"),
    ("15,45 1-3 * * *", "2024-01-01 01:46", "2024-01-01 02:15"),
    ("@hourly", "2024-01-01 10:30", "2024-01-01 11:00"),
    ("@daily", "2024-01-01 10:30", "2024-01-02 00:00"),
    ("@weekly", "2024-01-01 10:30", "2024-01-07 00:00"),
    ("@every 90s", "2024-01-01 10:00", "2024-01-01 10:01"),  # multiples of 90 s since the epoch
])
def test_next_after(spec: str, after: str, expected: str) -> None:
    nxt = parse_schedule(spec).next_after(ts(after))
    if spec.startswith("@every"):
        assert nxt is not None and nxt > ts(after) and nxt % 90 == 0 and nxt - ts(after) <= 90
    else:
        assert nxt == ts(expected)


def test_time_zone() -> None:
    # 09:00 in New York (UTC-5 in January) is 14:00 UTC
    assert parse_schedule("0 9 * * *", "America/New_York").next_after(ts("2024-01-01 00:00")) == ts("2024-01-01 14:00")


@pytest.mark.parametrize("spec", ["* * * *", "60 * * * *", "* 24 * * *", "* * * 13 *", "@sometimes",
                                  "TZ=UTC * * * * *", "5-1 * * * *", "*/0 * * * *", "x * * * *"])
def test_bad_schedules(spec: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(spec)


def cronjob(name: str = "hello", schedule: str = "*/1 * * * *", **spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": "default"},
            "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "OnFailure",
                "containers": [{"name": "hello", "image": "busybox", "command": ["date"]}]}}}}, **spec}}


async def jobs(c: Cluster) -> list[Obj]:
    return sorted(await c.list("jobs"), key=lambda j: j["metadata"]["name"])


async def n_jobs(c: Cluster, n: int) -> list[Obj] | None:
    js = await jobs(c)
    return js if len(js) == n else None


async def test_creates_one_job_per_scheduled_time(cluster: Cluster) -> None:
    c = cluster
    ctrl = CronJobController(c.client, c.factory, c.clock, c.recorder("cronjob-controller"))
    await c.start(ctrl)
    cj = await c.client.create("cronjobs", cronjob())
    assert await jobs(c) == []
    nxt = (int(c.clock.now() // 60) + 1) * 60
    await c.clock.advance(nxt - c.clock.now() + 1)
    (j,) = await c.until(lambda: n_jobs(c, 1), "first job")
    assert j["metadata"]["name"] == f"hello-{nxt // 60}"
    assert j["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == rfc3339(nxt)
    assert j["metadata"]["ownerReferences"][0]["uid"] == cj["metadata"]["uid"]

    async def status_has_active() -> Obj | None:
        o = await c.client.get("cronjobs", "hello", "default")
        st = o.get("status") or {}
        return o if st.get("active") and st.get("lastScheduleTime") == rfc3339(nxt) else None

    o = await c.until(status_has_active, "status")
    assert o["status"]["active"][0]["name"] == j["metadata"]["name"]
    await ctrl.sync("default/hello")  # again at the same time: no second job
    assert len(await jobs(c)) == 1
    await c.clock.advance(60)
    await c.until(lambda: n_jobs(c, 2), "second job a minute later")
    assert sorted(ctrl.recorder.for_reason("SuccessfulCreate")) == [
        f"Created job {j['metadata']['name']}" for j in await jobs(c)]


@pytest.mark.parametrize("policy,expected_jobs", [("Forbid", 1), ("Replace", 1), ("Allow", 2)])
async def test_concurrency_policy(cluster: Cluster, policy: str, expected_jobs: int) -> None:
    c = cluster
    await c.start(CronJobController(c.client, c.factory, c.clock, c.recorder("cronjob-controller")))
    await c.client.create("cronjobs", cronjob(concurrencyPolicy=policy))
    nxt = (int(c.clock.now() // 60) + 1) * 60
    await c.clock.advance(nxt - c.clock.now() + 1)
    (first,) = await c.until(lambda: n_jobs(c, 1), "first job")
    await c.clock.advance(60)  # the first job is still running

    async def settled() -> list[Obj] | None:
        js = await jobs(c)
        o = await c.client.get("cronjobs", "hello", "default")
        if o["status"].get("lastScheduleTime") != rfc3339(nxt + 60) and policy != "Forbid":
            return None
        return js if len(js) == expected_jobs else None

    js = await c.until(settled, f"{policy} outcome", steps=600)
    names = {j["metadata"]["name"] for j in js}
    if policy == "Replace":
        assert names == {f"hello-{(nxt + 60) // 60}"}
    if policy == "Forbid":
        assert names == {first["metadata"]["name"]}


async def test_history_limits_and_completed_jobs(cluster: Cluster) -> None:
    c = cluster
    ctrl = CronJobController(c.client, c.factory, c.clock, c.recorder("cronjob-controller"))
    await c.start(ctrl, JobController(c.client, c.factory, c.clock, c.recorder("job-controller")))
    await c.client.create("cronjobs", cronjob(successfulJobsHistoryLimit=1))
    nxt = (int(c.clock.now() // 60) + 1) * 60
    await c.clock.advance(nxt - c.clock.now() + 1)
    for i in range(3):
        await c.until(lambda i=i: _complete_jobs(c, min(i, 1), running=1), f"job {i} running")
        # the job's pod succeeds
        pods = [p for p in await c.list("pods") if (p.get("status") or {}).get("phase") != "Succeeded"]
        for p in pods:
            p["status"] = {"phase": "Succeeded"}
            await c.client.update_status("pods", p)
        await c.until(lambda: _complete_jobs(c, 1, running=0), f"job {i} done, older ones trimmed")
        await c.clock.advance(60)
    assert any(m.startswith("Saw completed job: hello-") and m.endswith(", status: Complete")
               for m in ctrl.recorder.for_reason("SawCompletedJob"))
    assert ctrl.recorder.for_reason("SuccessfulDelete")
    o = await c.client.get("cronjobs", "hello", "default")
    assert o["status"].get("lastSuccessfulTime")


async def _complete_jobs(c: Cluster, complete: int, running: int) -> bool:
    js = await jobs(c)
    done = [j for j in js if any(x["type"] == "Complete" for x in (j.get("status") or {}).get("conditions") or [])]
    return len(done) == complete and len(js) - len(done) == running
