"""CronJob controller: creates a Job from the jobTemplate at each scheduled time.

sync(key): refresh `status.active` from the Jobs the CronJob controls (a finished one
leaves it, with a SawCompletedJob event and lastSuccessfulTime); unless suspended,
find the most recent scheduled time not yet run (since lastScheduleTime or creation,
within startingDeadlineSeconds), honour concurrencyPolicy (Allow; Forbid skips while
a Job is active; Replace deletes the active ones), and create the Job
`<cronjob>-<scheduled time in minutes since the epoch>`; trim finished Jobs to the
history limits; requeue for the next scheduled time on the Clock.
Invariants: one Job per scheduled time (its name is derived from the time, so a
repeat sync gets AlreadyExists, not a second Job); only Jobs whose controllerRef
carries the CronJob's uid are touched; status goes through the status subresource.
"""

from __future__ import annotations

import copy
import logging

from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.events import NORMAL, WARNING, EventRecorder
from k8py.client.informer import SharedInformerFactory, split_key
from k8py.clock import Clock, parse_rfc3339, rfc3339
from k8py.controllers.base import Controller
from k8py.controllers.controllerutil import (
    controller_ref,
    creation_time,
    is_deleting,
    meta,
    new_controller_ref,
)
from k8py.controllers.cronschedule import parse_schedule
from k8py.controllers.errors import ScheduleError
from k8py.controllers.indexes import BY_CONTROLLER, ensure_indexes
from k8py.controllers.job import job_finished
from k8py.controllers.status import write_status

log = logging.getLogger(__name__)

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100


class CronJobController(Controller):
    name = "cronjob-controller"

    def __init__(self, client: Client, factory: SharedInformerFactory, clock: Clock,
                 recorder: EventRecorder | None = None, workers: int = 2) -> None:
        super().__init__(client, factory, clock, recorder, workers)
        self.cronjobs = self.informer("cronjobs")
        self.jobs = self.informer("jobs")
        ensure_indexes(self.jobs)
        self._created: set[str] = set()  # Jobs created, perhaps not yet in the cache
        self.watch(self.cronjobs, self.enqueue)
        self.watch(self.jobs, self._job_changed, self._job_changed)

    def _job_changed(self, job: Obj) -> None:
        ref = controller_ref(job)
        if ref is not None and ref.get("kind") == "CronJob":
            self.enqueue(f"{meta(job).get('namespace')}/{ref.get('name')}")

    async def sync(self, key: str) -> None:
        ns, name = split_key(key)
        cj = self.cronjobs.get(ns, name)
        if cj is None or is_deleting(cj):
            return
        spec = cj.get("spec") or {}
        status = copy.deepcopy(cj.get("status") or {})
        jobs: list[Obj] = self.jobs.by_index(BY_CONTROLLER, meta(cj)["uid"])
        now = self.clock.now()
        # 1. the active list follows the Jobs
        old_refs = {r.get("name"): r for r in status.get("active") or []}
        active_names = set(old_refs)
        active: list[Obj] = []
        for j in sorted(jobs, key=lambda j: meta(j)["name"]):
            done = job_finished(j)
            if done is None:
                old = old_refs.get(meta(j)["name"])
                active.append(old if old is not None and old.get("uid") == meta(j)["uid"] else {
                    "apiVersion": "batch/v1", "kind": "Job", "name": meta(j)["name"], "namespace": ns,
                    "uid": meta(j)["uid"], "resourceVersion": meta(j).get("resourceVersion")})
                continue
            if meta(j)["name"] in active_names:
                self.recorder.event(cj, NORMAL, "SawCompletedJob",
                                          f"Saw completed job: {meta(j)['name']}, status: {done}")
            if done == "Complete":
                ct = (j.get("status") or {}).get("completionTime")
                if ct and (not status.get("lastSuccessfulTime")
                           or parse_rfc3339(ct) > parse_rfc3339(status["lastSuccessfulTime"])):
                    status["lastSuccessfulTime"] = ct
        live = {meta(j)["name"] for j in jobs}
        self._created &= {r.get("name") for r in status.get("active") or []}
        # a Job we created that the cache has not shown yet stays active
        for r in status.get("active") or []:
            if r.get("name") not in live and r.get("name") in self._created:
                active.append(r)
        status["active"] = active
        if not active:
            status.pop("active")
        if spec.get("suspend"):
            await self._write_status(cj, status)
            return
        try:
            sched = parse_schedule(spec.get("schedule", ""), spec.get("timeZone"))
        except ScheduleError as e:
            self.recorder.event(cj, WARNING, "UnparseableSchedule",
                                      f"unparseable schedule: {spec.get('schedule')!r} : {e}")
            await self._write_status(cj, status)
            return
        # 2. the most recent unmet schedule time
        earliest = creation_time(cj)
        if status.get("lastScheduleTime"):
            earliest = parse_rfc3339(status["lastScheduleTime"])
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None:
            earliest = max(earliest, now - int(deadline))
        scheduled: float | None = None
        missed = 0
        t = sched.next_after(earliest)
        while t is not None and t <= now:
            scheduled = t
            missed += 1
            t = sched.next_after(t)
        if missed > MAX_MISSED:
            self.recorder.event(cj, WARNING, "TooManyMissedTimes",
                                      f"too many missed start times: {missed}. Set or decrease "
                                      ".spec.startingDeadlineSeconds or check clock skew")
        if scheduled is not None:
            await self._run(cj, spec, status, scheduled)
        await self._cleanup(cj, spec, jobs)
        await self._write_status(cj, status)
        nxt = sched.next_after(now)
        if nxt is not None:
            self.enqueue_after(key, nxt - now + 0.001)

    async def _run(self, cj: Obj, spec: Obj, status: Obj, scheduled: float) -> None:
        ns = meta(cj).get("namespace")
        policy = spec.get("concurrencyPolicy") or "Allow"
        active = status.get("active") or []
        if active and policy == "Forbid":
            return
        if active and policy == "Replace":
            for r in active:
                try:
                    await self.client.delete("jobs", r["name"], ns, propagation_policy="Background")
                    self.recorder.event(cj, NORMAL, "SuccessfulDelete", f"Deleted job {r['name']}")
                except ApiError as e:
                    if not e.not_found:
                        raise
            status.pop("active", None)
        tmpl = copy.deepcopy(spec.get("jobTemplate") or {})
        tmd = tmpl.get("metadata") or {}
        name = f"{meta(cj)['name']}-{int(scheduled // 60)}"
        job: Obj = {
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": ns, "labels": dict(tmd.get("labels") or {}),
                         "annotations": {**(tmd.get("annotations") or {}), SCHEDULED_TIMESTAMP: rfc3339(scheduled)},
                         "ownerReferences": [new_controller_ref(cj, "batch/v1", "CronJob")]},
            "spec": tmpl.get("spec") or {},
        }
        try:
            created = await self.client.create("jobs", job, ns)
        except ApiError as e:
            if not e.already_exists:
                self.recorder.event(cj, WARNING, "FailedCreate", f"Error creating job: {e.body.get('message', e)}")
                raise
            status["lastScheduleTime"] = rfc3339(scheduled)
            return
        self._created.add(name)
        self.recorder.event(cj, NORMAL, "SuccessfulCreate", f"Created job {name}")
        status.setdefault("active", []).append({
            "apiVersion": "batch/v1", "kind": "Job", "name": name, "namespace": ns,
            "uid": meta(created)["uid"], "resourceVersion": meta(created).get("resourceVersion")})
        status["lastScheduleTime"] = rfc3339(scheduled)

    async def _cleanup(self, cj: Obj, spec: Obj, jobs: list[Obj]) -> None:
        ns = meta(cj).get("namespace")
        for kind, limit in (("Complete", spec.get("successfulJobsHistoryLimit", 3)),
                            ("Failed", spec.get("failedJobsHistoryLimit", 1))):
            if limit is None:
                continue
            done = [j for j in jobs if job_finished(j) == kind and not is_deleting(j)]
            done.sort(key=lambda j: ((j.get("status") or {}).get("startTime") or "", meta(j)["name"]))
            for j in done[:max(0, len(done) - int(limit))]:
                try:
                    await self.client.delete("jobs", meta(j)["name"], ns, propagation_policy="Background")
                    self.recorder.event(cj, NORMAL, "SuccessfulDelete", f"Deleted job {meta(j)['name']}")
                except ApiError as e:
                    if not e.not_found:
                        raise

    async def _write_status(self, cj: Obj, status: Obj) -> None:
        if status != (cj.get("status") or {}):
            await write_status(self.client, "cronjobs", cj, status)

