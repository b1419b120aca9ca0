"""Job controller: runs pods of a Job until enough succeed, or gives up.

sync(key): counts the Job's pods (by controllerRef uid) as active, succeeded and
failed by their phase (a pod with sidecars is Succeeded once its main containers
succeeded and the kubelet stopped its sidecars, whatever their exit codes); the Job
fails when failures exceed backoffLimit (BackoffLimitExceeded) or it outlives
activeDeadlineSeconds (DeadlineExceeded) — its active pods are then deleted; it
completes when `completions` pods succeeded (or, without completions, when one
succeeded and none is active). Otherwise it keeps min(parallelism,
completions - succeeded) pods active, recreating failed ones after an exponential
back-off (10 s doubling, at most 6 min). In Indexed mode each index 0..completions-1
gets its own pod (annotation/label `batch.kubernetes.io/job-completion-index`,
hostname `<job>-<i>`, $JOB_COMPLETION_INDEX) until it succeeds, and
status.completedIndexes lists the done ones ("0-2,4"). A suspended Job has no active
pods (Suspended condition; resuming restarts the deadline clock). Finished
Jobs with ttlSecondsAfterFinished are deleted that long after they finished (the
ttl-after-finished controller). Invariants: expectations stop double creation before
the informer catches up; counts in status never decrease; finished Jobs are left
alone; status is written via the status subresource only when it changes.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import NamedTuple

from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.events import NORMAL, WARNING, EventRecorder
from k8py.client.informer import SharedInformerFactory, split_key
from k8py.clock import Clock, parse_rfc3339, rfc3339
from k8py.controllers.base import Controller
from k8py.controllers.controllerutil import (
    container_statuses,
    deletion_rank,
    get_condition,
    is_deleting,
    is_pod_ready,
    key_of,
    meta,
    new_controller_ref,
)
from k8py.controllers.expectations import Expectations
from k8py.controllers.indexes import BY_CONTROLLER, ensure_indexes
from k8py.controllers.podcontrol import create_pods, delete_pods
from k8py.controllers.refmanager import resolve_controller_ref
from k8py.controllers.status import non_empty, write_status

log = logging.getLogger(__name__)

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
BACKOFF_BASE = 10.0
BACKOFF_MAX = 360.0


def _finished_at(pod: Obj) -> float | None:
    """When a terminated pod finished (latest container finishedAt), if known."""
    times = []
    for cs in container_statuses(pod):
        t = ((cs.get("state") or {}).get("terminated") or {}).get("finishedAt")
        if t:
            try:
                times.append(parse_rfc3339(t))
            except ValueError:
                pass
    return max(times) if times else None


def completion_index(pod: Obj) -> int | None:
    v = (meta(pod).get("annotations") or {}).get(COMPLETION_INDEX)
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def compress_indexes(idx: set[int]) -> str:
    """{0, 1, 2, 4} -> "0-2,4" (status.completedIndexes)."""
    out: list[str] = []
    run: list[int] = []
    for i in sorted(idx):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [i]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def job_finished(job: Obj) -> str | None:
    """"Complete" or "Failed" when the Job has finished."""
    st = job.get("status") or {}
    for t in ("Complete", "Failed"):
        c = get_condition(st, t)
        if c is not None and c.get("status") == "True":
            return t
    return None


def _init_container_statuses(pod: Obj) -> list[Obj]:
    return list((pod.get("status") or {}).get("initContainerStatuses") or [])


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def _int_or(spec: Obj, field: str, default: int) -> int:
    v = spec.get(field)
    return int(v) if v is not None else default


def is_indexed(spec: Obj) -> bool:
    return spec.get("completionMode") == "Indexed" and spec.get("completions") is not None


@dataclass
class JobPods:
    """A Job's pods as one sync counts them. `succeeded` and `failed` never go below
    the Job's status (pods may be gone since); `restarts` counts container restarts of
    active pods when the template restarts OnFailure (init containers' and sidecars' too,
    as Kubernetes' pastBackoffLimitOnFailure)."""

    active: list[Obj]
    terminating: list[Obj]
    failed_pods: list[Obj]
    succeeded: int
    failed: int
    restarts: int
    done_idx: set[int]  # the completion indexes of succeeded pods


def count_pods(spec: Obj, status: Obj, pods: list[Obj]) -> JobPods:
    active = [p for p in pods if _phase(p) not in ("Succeeded", "Failed") and not is_deleting(p)]
    failed_pods = [p for p in pods if _phase(p) == "Failed"]
    restarts = 0
    if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") == "OnFailure":
        restarts = sum(int(cs.get("restartCount") or 0) for p in active
                       for cs in _init_container_statuses(p) + container_statuses(p))
    return JobPods(
        active=active,
        terminating=[p for p in pods if is_deleting(p) and _phase(p) not in ("Succeeded", "Failed")],
        failed_pods=failed_pods,
        succeeded=max(sum(1 for p in pods if _phase(p) == "Succeeded"), int(status.get("succeeded") or 0)),
        failed=max(len(failed_pods), int(status.get("failed") or 0)),
        restarts=restarts,
        done_idx={i for i in (completion_index(p) for p in pods if _phase(p) == "Succeeded") if i is not None},
    )


class Finish(NamedTuple):
    """How a Job finished: its condition (Complete or Failed), reason and message, and
    the type of the event that says so."""

    condition: str
    reason: str
    message: str
    event_type: str


def finish_of(spec: Obj, status: Obj, pods: JobPods, now: float) -> Finish | None:
    """Failed (back-off limit, then deadline) or Complete (enough succeeded), if the Job
    has finished."""
    completions = spec.get("completions")
    indexed = is_indexed(spec)
    deadline = spec.get("activeDeadlineSeconds")
    if pods.failed + pods.restarts > _int_or(spec, "backoffLimit", 6):
        return Finish("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit", WARNING)
    if deadline is not None and status.get("startTime") and \
            now - parse_rfc3339(status["startTime"]) >= int(deadline):
        return Finish("Failed", "DeadlineExceeded", "Job was active longer than specified deadline", WARNING)
    if (completions is not None and not indexed and pods.succeeded >= int(completions)) or \
            (indexed and len(pods.done_idx) >= int(completions or 0)) or \
            (completions is None and pods.succeeded > 0 and not pods.active):
        return Finish("Complete", "CompletionsReached", "Reached expected number of succeeded pods", NORMAL)
    return None


def wanted_pods(spec: Obj, pods: JobPods) -> tuple[int, list[int | None]]:
    """How many pods should be active, and the completion indexes of those to create
    (None each when the Job is not Indexed)."""
    completions = spec.get("completions")
    parallelism = _int_or(spec, "parallelism", 1)
    active = len(pods.active)
    if completions is None:
        want = 0 if pods.succeeded > 0 else parallelism
    else:
        want = max(0, min(parallelism, int(completions) - pods.succeeded))
    if not is_indexed(spec):
        return want, [None] * max(0, want - active)
    taken = pods.done_idx | {i for i in (completion_index(p) for p in pods.active) if i is not None}
    missing: list[int | None] = [i for i in range(int(completions or 0)) if i not in taken]
    indexes = missing[:max(0, parallelism - active)]
    return active + len(indexes), indexes


def _replace_condition(status: Obj, cond: Obj) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != cond["type"]] + [cond]


class JobController(Controller):
    name = "job-controller"

    def __init__(self, client: Client, factory: SharedInformerFactory, clock: Clock,
                 recorder: EventRecorder | None = None, workers: int = 2) -> None:
        super().__init__(client, factory, clock, recorder, workers)
        self.expectations = Expectations(clock)
        self.jobs = self.informer("jobs")
        self.pods = self.informer("pods")
        ensure_indexes(self.pods)
        self.watch(self.jobs, self.enqueue, self._job_deleted)
        self.pods.add_event_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    def _job_deleted(self, job: Obj) -> None:
        self.expectations.delete(key_of(job))

    def _pod_added(self, pod: Obj) -> None:
        job = resolve_controller_ref(self.jobs, "Job", pod)
        if job is None:
            return
        if is_deleting(pod):
            self.expectations.deletion_observed(key_of(job), key_of(pod))
        self.expectations.creation_observed(key_of(job), key_of(pod))
        self.enqueue(job)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        job = resolve_controller_ref(self.jobs, "Job", new)
        if job is None:
            return
        if is_deleting(new) and not is_deleting(old):
            self.expectations.deletion_observed(key_of(job), key_of(new))
        self.enqueue(job)

    def _pod_deleted(self, pod: Obj) -> None:
        job = resolve_controller_ref(self.jobs, "Job", pod)
        if job is not None:
            self.expectations.pod_deleted(key_of(job), key_of(pod))
            self.enqueue(job)

    def condition(self, ctype: str, reason: str, message: str) -> Obj:
        now = rfc3339(self.clock.now())
        return {"type": ctype, "status": "True", "lastProbeTime": now, "lastTransitionTime": now,
                "reason": reason, "message": message}

    # -- sync -----------------------------------------------------------------
    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        job = self.jobs.get(ns, name)
        if job is None:
            self.expectations.delete(key)
            return
        if job_finished(job):
            await self._expire(job)
            return
        spec = job.get("spec") or {}
        status = copy.deepcopy(job.get("status") or {})
        pods = count_pods(spec, status, self.pods.by_index(BY_CONTROLLER, meta(job)["uid"]))
        now = self.clock.now()
        if not status.get("startTime") and not spec.get("suspend"):
            status["startTime"] = rfc3339(now)
        if is_indexed(spec):
            status["completedIndexes"] = compress_indexes(pods.done_idx)
        finish = finish_of(spec, status, pods, now)
        err = await self._reconcile(key, job, status, pods, finish, now)
        self._requeue_at_deadline(key, spec, status, finish, now)
        self._fill_status(status, pods, finish, now)
        if not await self._write_status(job, status, finish):
            return  # the Job is gone
        if err is not None:
            raise err

    async def _reconcile(self, key: str, job: Obj, status: Obj, pods: JobPods, finish: Finish | None,
                         now: float) -> BaseException | None:
        """Make the active pods what the Job wants now: none once it failed or while it is
        suspended, else as many as parallelism and the completions left allow (once the
        expectations are met). The first error of a pod write is returned."""
        if finish is not None:
            if finish.condition == "Failed" and pods.active:
                return await self._delete_active(job, pods)
            return None
        if (job.get("spec") or {}).get("suspend"):
            return await self._suspend(job, status, pods)
        if not self.expectations.satisfied(key):
            return None
        self._note_resumed(job, status, now)
        return await self._scale(key, job, pods, now)

    async def _delete_active(self, job: Obj, pods: JobPods) -> BaseException | None:
        err = await self._delete_pods(job, pods.active)
        pods.active = []
        return err

    async def _suspend(self, job: Obj, status: Obj, pods: JobPods) -> BaseException | None:
        err = await self._delete_active(job, pods) if pods.active else None
        cur = get_condition(status, "Suspended")
        if cur is None or cur.get("status") != "True":
            _replace_condition(status, self.condition("Suspended", "JobSuspended", "Job suspended"))
            self.recorder.event(job, NORMAL, "Suspended", "Job suspended")
        return err

    def _note_resumed(self, job: Obj, status: Obj, now: float) -> None:
        """A suspended Job that is no longer: Suspended False, and the deadline counts
        from now."""
        cur = get_condition(status, "Suspended")
        if cur is None or cur.get("status") != "True":
            return
        resumed = self.condition("Suspended", "JobResumed", "Job resumed")
        resumed["status"] = "False"
        _replace_condition(status, resumed)
        status["startTime"] = rfc3339(now)
        self.recorder.event(job, NORMAL, "Resumed", "Job resumed")

    async def _scale(self, key: str, job: Obj, pods: JobPods, now: float) -> BaseException | None:
        """Create the missing pods (after the back-off of the failed ones), or delete the
        surplus."""
        want, indexes = wanted_pods(job.get("spec") or {}, pods)
        if len(pods.active) < want:
            delay = self._backoff_remaining(pods.failed_pods, pods.failed, now)
            if delay > 0:
                self.enqueue_after(key, delay)
                return None
            return await self._create_pods(job, indexes)
        if len(pods.active) > want:
            victims = sorted(pods.active, key=deletion_rank)[:len(pods.active) - want]
            err = await self._delete_pods(job, victims)
            pods.active = [p for p in pods.active if p not in victims]
            return err
        return None

    def _requeue_at_deadline(self, key: str, spec: Obj, status: Obj, finish: Finish | None, now: float) -> None:
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None and finish is None and status.get("startTime"):
            left = parse_rfc3339(status["startTime"]) + int(deadline) - now
            self.enqueue_after(key, max(left, 0) + 0.001)

    def _fill_status(self, status: Obj, pods: JobPods, finish: Finish | None, now: float) -> None:
        """The counts, and for a finished Job its conditions (the interim one first)."""
        status["active"] = len(pods.active)
        status["ready"] = sum(1 for p in pods.active if is_pod_ready(p))
        status["succeeded"] = pods.succeeded
        status["failed"] = pods.failed
        status["terminating"] = len(pods.terminating)
        if finish is None:
            return
        interim = "SuccessCriteriaMet" if finish.condition == "Complete" else "FailureTarget"
        for t in (interim, finish.condition):
            if get_condition(status, t) is None:
                status.setdefault("conditions", []).append(self.condition(t, finish.reason, finish.message))
        if finish.condition == "Complete":
            status["completionTime"] = rfc3339(now)

    async def _write_status(self, job: Obj, status: Obj, finish: Finish | None) -> bool:
        """Write the status if it changed; for a Job that just finished, record it and
        start its time to live. False when the Job is gone."""
        status = non_empty(status)
        if status == non_empty(job.get("status") or {}):
            return True
        updated = await write_status(self.client, "jobs", job, status)
        if updated is None:
            return False
        if finish is not None:
            complete = finish.condition == "Complete"
            self.recorder.event(job, finish.event_type, "Completed" if complete else finish.reason,
                                "Job completed" if complete else finish.message)
            await self._expire(updated)
        return True

    def _backoff_remaining(self, failed_pods: list[Obj], failed: int, now: float) -> float:
        if failed == 0:
            return 0.0
        delay = min(BACKOFF_BASE * 2 ** (failed - 1), BACKOFF_MAX)
        last = max((t for t in (_finished_at(p) for p in failed_pods) if t is not None), default=None)
        if last is None:
            return 0.0
        return max(0.0, last + delay - now)

    def new_pod(self, job: Obj, index: int | None) -> Obj:
        """A pod of the Job; with a completion index (Indexed mode): named `<job>-<i>-xxxxx`,
        hostname `<job>-<i>`, the index in an annotation, a label and $JOB_COMPLETION_INDEX."""
        template = copy.deepcopy((job.get("spec") or {}).get("template") or {})
        tmd = template.get("metadata") or {}
        spec = template.get("spec") or {}
        md: Obj = {"generateName": f"{meta(job)['name']}-", "namespace": meta(job).get("namespace"),
                   "labels": dict(tmd.get("labels") or {}),
                   "ownerReferences": [new_controller_ref(job, "batch/v1", "Job")]}
        if tmd.get("annotations"):
            md["annotations"] = dict(tmd["annotations"])
        if index is not None:
            md["generateName"] = f"{meta(job)['name']}-{index}-"
            md.setdefault("annotations", {})[COMPLETION_INDEX] = str(index)
            md["labels"][COMPLETION_INDEX] = str(index)
            spec["hostname"] = f"{meta(job)['name']}-{index}"
            env = {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                "fieldPath": f"metadata.labels['{COMPLETION_INDEX}']"}}}
            for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
                if not any(e.get("name") == "JOB_COMPLETION_INDEX" for e in c.get("env") or []):
                    c.setdefault("env", []).append(dict(env))
        return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec}

    async def _create_pods(self, job: Obj, indexes: list[int | None]) -> BaseException | None:
        self.expectations.expect_creations(
            key_of(job), len(indexes), {key_of(p) for p in self.pods.by_index(BY_CONTROLLER, meta(job)["uid"])})
        todo = iter(indexes)
        return await create_pods(self.client, self.recorder, self.expectations, job, len(indexes),
                                 lambda: self.new_pod(job, next(todo)))

    async def _delete_pods(self, job: Obj, pods: list[Obj]) -> BaseException | None:
        self.expectations.expect_deletions(key_of(job), [key_of(p) for p in pods])
        return await delete_pods(self.client, self.recorder, self.expectations, job, pods)

    async def _expire(self, job: Obj) -> None:
        """ttlSecondsAfterFinished: delete the finished Job (and, through the garbage
        collector, its pods) once the time is up."""
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        kind = job_finished(job)
        if ttl is None or kind is None:
            return
        cond = get_condition(job.get("status") or {}, kind) or {}
        try:
            since = parse_rfc3339(cond.get("lastTransitionTime") or "")
        except ValueError:
            since = self.clock.now()
        left = since + int(ttl) - self.clock.now()
        if left > 0:
            self.enqueue_after(job, left)
            return
        try:
            await self.client.delete("jobs", meta(job)["name"], meta(job).get("namespace"),
                                     propagation_policy="Background", preconditions={"uid": meta(job)["uid"]})
        except ApiError as e:
            if not (e.not_found or e.conflict):
                raise
