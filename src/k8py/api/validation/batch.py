"""batch/v1: Jobs and CronJobs.

`validate_job` checks counts, the completion mode, that a given selector selects the
template, a template whose restartPolicy is OnFailure or Never, and what an update may
not change; `validate_cronjob` adds the schedule (`cron_error`), history limits and the
52-character name limit. Invariants: as in `meta`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from k8py.api.validation.field import (
    IMMUTABLE,
    Raw,
    go_label_selector,
    go_map,
    invalid,
    required,
)
from k8py.api.validation.meta import (
    ErrorList,
    dict_of,
    selector_matches,
    validate_enum,
    validate_immutable,
    validate_label_selector,
    validate_labels,
    validate_nonnegative,
    validate_positive,
)
from k8py.api.validation.pod import validate_pod_template


def _job_spec(v: ErrorList, spec: dict[str, Any], path: str) -> None:
    for f in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"):
        validate_nonnegative(v, spec.get(f), f"{path}.{f}")
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None:
        validate_positive(v, ads, f"{path}.activeDeadlineSeconds")
    validate_enum(v, spec.get("completionMode"), f"{path}.completionMode", ("NonIndexed", "Indexed"))
    prp = spec.get("podReplacementPolicy")
    if spec.get("podFailurePolicy") is not None:
        validate_enum(v, prp, f"{path}.podReplacementPolicy", ("Failed",))
    else:
        validate_enum(v, prp, f"{path}.podReplacementPolicy", ("Failed", "TerminatingOrFailed"))
    if spec.get("completionMode") == "Indexed" and spec.get("completions") is None:
        v.add(required(f"{path}.completions", "when completion mode is Indexed"))
    sel = spec.get("selector")
    tmpl = spec.get("template")
    if sel is not None and tmpl is not None:
        labels = dict_of(dict_of(dict_of(tmpl).get("metadata")).get("labels"))
        before = len(v.errs)
        validate_label_selector(v, dict_of(sel), f"{path}.selector")
        if len(v.errs) == before and selector_matches(dict_of(sel), labels) is False:
            v.add(invalid(f"{path}.template.metadata.labels", Raw(go_map(labels)),
                          "`selector` does not match template `labels`"))
    if tmpl is None:
        v.add(required(f"{path}.template"))
        return
    validate_pod_template(v, tmpl, f"{path}.template", ("OnFailure", "Never"))


def validate_job(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = dict_of(obj.get("spec"))
    _job_spec(v, spec, "spec")
    if old is not None:
        ospec = dict_of(old.get("spec"))
        if ospec.get("selector") is not None:
            validate_immutable(v, spec.get("selector"), ospec.get("selector"), "spec.selector",
                       Raw(go_label_selector(dict_of(spec.get("selector")))))
        if ospec.get("completions") is not None and spec.get("completionMode") != "Indexed":
            validate_immutable(v, spec.get("completions"), ospec.get("completions"), "spec.completions")
        if spec.get("template") != ospec.get("template"):
            v.add(invalid("spec.template", Raw("core.PodTemplateSpec{...}"), IMMUTABLE))


_CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def cron_error(sched: str) -> str:
    """Why a cron schedule is invalid, or "" (five fields, macros or @every)."""
    s = sched.strip()
    if s.startswith(("TZ=", "CRON_TZ=")):
        return "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
    if s in _CRON_MACROS:
        return ""
    if s.startswith("@every "):
        return "" if re.fullmatch(r"@every (\d+(ns|us|µs|ms|s|m|h))+", s) else "unparseable duration"
    fields = s.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    names_ = [r"jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec", r"sun|mon|tue|wed|thu|fri|sat"]
    atom = r"(\*|\?|\d+|[a-z]{3})(-(\d+|[a-z]{3}))?(/\d+)?"
    for f in fields:
        for part in f.lower().split(","):
            if not re.fullmatch(atom, part):
                return f"failed to parse int from {part}: strconv.Atoi: parsing {json.dumps(part)}: invalid syntax"
            for word in re.findall(r"[a-z]{3}", part):
                if not any(re.fullmatch(n, word) for n in names_):
                    return f"failed to parse int from {word}"
    return ""


def validate_cronjob(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = dict_of(obj.get("spec"))
    sched = spec.get("schedule")
    if not sched:
        v.add(required("spec.schedule"))
    else:
        msg = cron_error(sched)
        if msg:
            v.add(invalid("spec.schedule", sched, msg))
    validate_enum(v, spec.get("concurrencyPolicy"), "spec.concurrencyPolicy", ("Allow", "Forbid", "Replace"))
    for f in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        validate_nonnegative(v, spec.get(f), f"spec.{f}")
    name = dict_of(obj.get("metadata")).get("name") or ""
    if len(name) > 52:
        v.add(invalid("metadata.name", name, "must be no more than 52 characters"))
    jt = spec.get("jobTemplate")
    if jt is None:
        v.add(required("spec.jobTemplate"))
    else:
        validate_labels(v, dict_of(dict_of(jt).get("metadata")).get("labels"), "spec.jobTemplate.metadata.labels")
        _job_spec(v, dict_of(dict_of(jt).get("spec")), "spec.jobTemplate.spec")
