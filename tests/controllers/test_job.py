"""Job controller: completions and parallelism, back-off and failure, deadline, TTL."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.client.client import Client
from k8py.clock import rfc3339
from k8py.controllers.job import JobController

from ctrl_helpers import Cluster

Obj = dict[str, Any]


def job(name: str = "pi", **spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "default"},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "pi", "image": "perl", "command": ["perl", "-e", "1"]}]}}, **spec}}


async def start(c: Cluster) -> JobController:
    ctrl = JobController(c.client, c.factory, c.clock, c.recorder("job-controller"))
    await c.start(ctrl)
    return ctrl


async def live_pods(c: Cluster) -> list[Obj]:
    return [p for p in await c.list("pods") if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")]


async def n_active(c: Cluster, n: int) -> list[Obj] | None:
    pods = await live_pods(c)
    return pods if len(pods) == n else None


async def finish(client: Client, pod: Obj, phase: str, at: float) -> None:
    live = await client.get("pods", pod["metadata"]["name"], "default")
    code = 0 if phase == "Succeeded" else 1
    live["status"] = {"phase": phase, "containerStatuses": [{
        "name": "pi", "ready": False, "restartCount": 0, "image": "perl", "imageID": "",
        "state": {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                 "finishedAt": rfc3339(at)}}}]}
    await client.update_status("pods", live)


async def condition(c: Cluster, name: str, ctype: str) -> Obj | None:
    j = await c.client.get("jobs", name, "default")
    for x in (j.get("status") or {}).get("conditions") or []:
        if x["type"] == ctype and x["status"] == "True":
            return j
    return None


@pytest.mark.parametrize("completions,parallelism,waves", [(1, 1, [1]), (3, 2, [2, 1]), (4, 4, [4])])
async def test_runs_pods_until_completions_succeed(cluster: Cluster, completions: int, parallelism: int,
                                                   waves: list[int]) -> None:
    c = cluster
    ctrl = await start(c)
    created = await c.client.create("jobs", job(completions=completions, parallelism=parallelism))
    for n in waves:
        pods = await c.until(lambda n=n: n_active(c, n), f"{n} active pods")
        for p in pods:
            assert p["metadata"]["name"].startswith("pi-")
            assert p["metadata"]["labels"]["job-name"] == "pi"
            assert p["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
            await finish(c.client, p, "Succeeded", c.clock.now())
    j = await c.until(lambda: condition(c, "pi", "Complete"), "complete")
    assert j["status"]["succeeded"] == completions
    assert not j["status"].get("active")
    assert j["status"]["startTime"] and j["status"]["completionTime"]
    assert {x["type"] for x in j["status"]["conditions"]} == {"SuccessCriteriaMet", "Complete"}
    assert ctrl.recorder.for_reason("Completed") == ["Job completed"]
    assert len(ctrl.recorder.for_reason("SuccessfulCreate")) == completions


async def test_failed_pods_are_retried_with_backoff_until_the_limit(cluster: Cluster) -> None:
    c = cluster
    ctrl = await start(c)
    await c.client.create("jobs", job(backoffLimit=1))
    (p1,) = await c.until(lambda: n_active(c, 1), "first pod")
    await finish(c.client, p1, "Failed", c.clock.now())
    await c.until(lambda: _failed(c, 1), "one failure counted")
    for _ in range(50):
        await c.clock.advance(0.1)  # 5 s: inside the 10 s back-off
    assert await live_pods(c) == []
    await c.clock.advance(6)
    (p2,) = await c.until(lambda: n_active(c, 1), "retry after back-off")
    assert p2["metadata"]["name"] != p1["metadata"]["name"]
    await finish(c.client, p2, "Failed", c.clock.now())
    j = await c.until(lambda: condition(c, "pi", "Failed"), "failed")
    failed = next(x for x in j["status"]["conditions"] if x["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert j["status"]["failed"] == 2
    assert ctrl.recorder.for_reason("BackoffLimitExceeded") == ["Job has reached the specified backoff limit"]


async def _failed(c: Cluster, n: int) -> bool:
    j = await c.client.get("jobs", "pi", "default")
    return (j.get("status") or {}).get("failed") == n


async def test_deadline_fails_the_job_and_stops_its_pods(cluster: Cluster) -> None:
    c = cluster
    await start(c)
    await c.client.create("jobs", job(activeDeadlineSeconds=30, parallelism=2, completions=4))
    await c.until(lambda: n_active(c, 2), "two pods")
    await c.clock.advance(31)
    j = await c.until(lambda: condition(c, "pi", "Failed"), "deadline exceeded")
    assert next(x for x in j["status"]["conditions"] if x["type"] == "Failed")["reason"] == "DeadlineExceeded"
    await c.until(lambda: _none_active(c), "pods stopped")


async def _none_active(c: Cluster) -> bool:
    return not await live_pods(c)


async def test_ttl_after_finished_deletes_the_job(cluster: Cluster) -> None:
    c = cluster
    await start(c)
    await c.client.create("jobs", job(ttlSecondsAfterFinished=100))
    (p,) = await c.until(lambda: n_active(c, 1), "pod")
    await finish(c.client, p, "Succeeded", c.clock.now())
    await c.until(lambda: condition(c, "pi", "Complete"), "complete")
    await c.clock.advance(50)
    assert await c.client.get_or_none("jobs", "pi", "default") is not None
    await c.clock.advance(51)
    await c.until(lambda: _gone(c), "job deleted after its TTL")


async def _gone(c: Cluster) -> bool:
    return await c.client.get_or_none("jobs", "pi", "default") is None


async def test_suspend_stops_pods_and_resume_restarts_them(cluster: Cluster) -> None:
    c = cluster
    ctrl = await start(c)
    await c.client.create("jobs", job(parallelism=2, completions=2))
    await c.until(lambda: n_active(c, 2), "two pods")
    await c.client.patch("jobs", "pi", {"spec": {"suspend": True}}, "default")
    await c.until(lambda: _none_active(c), "suspended: no pods")
    j = await c.until(lambda: condition(c, "pi", "Suspended"), "Suspended condition")
    assert not j["status"].get("active")
    await c.client.patch("jobs", "pi", {"spec": {"suspend": False}}, "default")
    await c.until(lambda: n_active(c, 2), "resumed: two pods again")

    async def resumed() -> bool:
        o = await c.client.get("jobs", "pi", "default")
        return any(x["type"] == "Suspended" and x["status"] == "False" and x["reason"] == "JobResumed"
                   for x in o["status"].get("conditions") or [])

    await c.until(resumed, "JobResumed")
    assert ctrl.recorder.for_reason("Resumed") == ["Job resumed"]


@pytest.mark.parametrize("idx,text", [(set(), ""), ({0}, "0"), ({0, 1, 2, 4}, "0-2,4"), ({1, 3, 5, 6}, "1,3,5-6")])
def test_compress_indexes(idx: set[int], text: str) -> None:
    from k8py.controllers.job import compress_indexes
    assert compress_indexes(idx) == text


async def test_indexed_job_runs_each_index_once(cluster: Cluster) -> None:
    c = cluster
    await start(c)
    await c.client.create("jobs", job(completions=3, parallelism=2, completionMode="Indexed"))
    pods = await c.until(lambda: n_active(c, 2), "two indexed pods")
    idx = sorted(int(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]) for p in pods)
    assert idx == [0, 1]
    for p in pods:
        i = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        assert p["metadata"]["name"].startswith(f"pi-{i}-") and p["spec"]["hostname"] == f"pi-{i}"
        assert p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == i
        (env,) = [e for e in p["spec"]["containers"][0]["env"] if e["name"] == "JOB_COMPLETION_INDEX"]
        assert (env["valueFrom"]["fieldRef"]["fieldPath"]
                == "metadata.labels['batch.kubernetes.io/job-completion-index']")
    await finish(c.client, pods[1], "Succeeded", c.clock.now())
    (third,) = [p for p in await c.until(lambda: n_active(c, 2), "index 2 started")
                if p["metadata"]["name"] != pods[0]["metadata"]["name"]]
    assert third["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == "2"
    await finish(c.client, pods[0], "Succeeded", c.clock.now())
    await finish(c.client, third, "Succeeded", c.clock.now())
    j = await c.until(lambda: condition(c, "pi", "Complete"), "complete")
    assert j["status"]["completedIndexes"] == "0-2"


SIDECAR = {"name": "log", "image": "busybox", "restartPolicy": "Always", "command": ["sh", "-c", "sleep 3600"]}


def _sidecar_status(restarts: int, terminated: bool) -> Obj:
    state = {"terminated": {"exitCode": 137, "reason": "Error"}} if terminated else {"running": {}}
    return {"name": "log", "ready": not terminated, "started": not terminated, "restartCount": restarts,
            "image": "busybox", "imageID": "", "state": state}


async def test_a_pod_with_a_sidecar_counts_once_succeeded_whatever_the_sidecars_exit_code(cluster: Cluster) -> None:
    c = cluster
    await start(c)
    j = job()
    j["spec"]["template"]["spec"]["initContainers"] = [SIDECAR]
    await c.client.create("jobs", j)
    (p,) = await c.until(lambda: n_active(c, 1), "pod")
    assert p["spec"]["initContainers"][0]["restartPolicy"] == "Always"
    await finish(c.client, p, "Succeeded", c.clock.now())
    live = await c.client.get("pods", p["metadata"]["name"], "default")
    live["status"]["initContainerStatuses"] = [_sidecar_status(0, terminated=True)]  # stopped by the kubelet
    await c.client.update_status("pods", live)
    done = await c.until(lambda: condition(c, "pi", "Complete"), "complete")
    assert done["status"]["succeeded"] == 1 and not done["status"].get("failed")


async def test_sidecar_restarts_count_against_the_backoff_limit_with_on_failure(cluster: Cluster) -> None:
    c = cluster
    await start(c)
    j = job(backoffLimit=2)
    j["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    j["spec"]["template"]["spec"]["initContainers"] = [SIDECAR]
    await c.client.create("jobs", j)
    (p,) = await c.until(lambda: n_active(c, 1), "pod")
    live = await c.client.get("pods", p["metadata"]["name"], "default")
    live["status"] = {"phase": "Running", "initContainerStatuses": [_sidecar_status(3, terminated=False)],
                      "containerStatuses": [{"name": "pi", "ready": True, "restartCount": 0, "image": "perl",
                                             "imageID": "", "state": {"running": {}}}]}
    await c.client.update_status("pods", live)
    failed = await c.until(lambda: condition(c, "pi", "Failed"), "back-off limit")
    assert next(x for x in failed["status"]["conditions"] if x["type"] == "Failed")["reason"] == "BackoffLimitExceeded"
