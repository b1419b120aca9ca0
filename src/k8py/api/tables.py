"""Server-side printing: objects as a `meta.k8s.io/v1` Table, as `kubectl get` asks (as=Table).

`to_table(resource, objs, now)` gives the columns Kubernetes prints for each kind
(pkg/printers/internalversion), with every cell filled — the server always prints
wide, and kubectl hides columns of priority 1 unless `-o wide`. Invariants: one row
per object, in order; `len(cells) == len(columnDefinitions)`; never raises on odd
objects (missing fields print as Kubernetes prints zero values); pure (time comes
from `now`, seconds since the epoch).
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k8py.api import schema
from k8py.api.errors import QuantityError, SelectorError
from k8py.api.quantity import format_quantity, parse_quantity
from k8py.api.resources import Resource
from k8py.api.selectors import label_selector_from_dict
from k8py.api.wellknown import (
    ANNOTATION_IS_DEFAULT_CLASS,
    ANNOTATION_IS_DEFAULT_CLASS_BETA,
    LABEL_NODE_ROLE,
    LABEL_NODE_ROLE_PREFIX,
)

Row = list[Any]
Column = dict[str, Any]


# ---------------------------------------------------------------------------------------
# Durations and timestamps


def human_duration(seconds: float) -> str:
    """Kubernetes' duration.HumanDuration: 5s, 2m5s, 15m, 5h3m, 10h, 3d4h, 30d, 2y100d, 9y."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return _two_units(minutes, "m", s % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return _two_units(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _two_units(hours // 24, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        return _two_units(hours // 24 // 365, "y", (hours // 24) % 365, "d")
    return f"{hours // 24 // 365}y"


def _two_units(big: int, big_unit: str, small: int, small_unit: str) -> str:
    """"5h3m", or "5h" when the smaller unit counts 0."""
    return f"{big}{big_unit}" if small == 0 else f"{big}{big_unit}{small}{small_unit}"


def parse_time(ts: Any) -> float | None:
    """RFC 3339 (with optional fraction) to seconds since the epoch; None when unset or bad."""
    if not isinstance(ts, str) or not ts:
        return None
    try:
        t = _dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.UTC)
    return t.timestamp()


def since(ts: Any, now: float) -> str:
    """translateTimestampSince: "<unknown>" for an unset time."""
    t = parse_time(ts)
    return "<unknown>" if t is None else human_duration(now - t)


# ---------------------------------------------------------------------------------------
# Helpers


def _d(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _l(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def _int(x: Any) -> int:
    return x if isinstance(x, int) and not isinstance(x, bool) else 0


def _doc(defn: str, fld: str, fallback: str = "") -> str:
    try:
        d = schema.definitions().get(defn, {})
        return str(d.get("properties", {}).get(fld, {}).get("description", fallback))
    except (OSError, ValueError):
        return fallback


def _meta_doc(fld: str) -> str:
    return _doc("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", fld)


def col(name: str, type_: str = "string", description: str = "", priority: int = 0, fmt: str = "") -> Column:
    return {"name": name, "type": type_, "format": fmt, "description": description, "priority": priority}


def _name_col() -> Column:
    return col("Name", "string", _meta_doc("name"), fmt="name")


def _age_col() -> Column:
    return col("Age", "string", _meta_doc("creationTimestamp"))


def _wide_template_cols(selector_doc: str = "", with_selector: bool = True) -> list[Column]:
    cols = [col("Containers", "string", "Names of each container in the template.", 1),
            col("Images", "string", "Images referenced by each container in the template.", 1)]
    if with_selector:
        cols.append(col("Selector", "string", selector_doc, 1))
    return cols


def format_labels(labels: Any) -> str:
    """labels.FormatLabels: sorted k=v joined by ',', "<none>" when empty."""
    labels = _d(labels)
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def selector_string(sel: Any) -> str:
    """metav1.FormatLabelSelector: the selector's string, "<none>" when empty, "<error>" when invalid."""
    try:
        s = str(label_selector_from_dict(sel if isinstance(sel, dict) else None))
    except (SelectorError, TypeError, ValueError):
        return "<error>"
    return s or "<none>"


def _containers_images(spec: Any) -> tuple[str, str]:
    cs = [_d(c) for c in _l(_d(spec).get("containers"))]
    return ",".join(str(c.get("name", "")) for c in cs), ",".join(str(c.get("image", "")) for c in cs)


def _qty_string(v: Any, default: str = "0") -> str:
    if v is None:
        return default
    try:
        return format_quantity(v)
    except (QuantityError, TypeError, ValueError):
        return str(v)


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return _d(obj.get("metadata"))


def _name(obj: dict[str, Any]) -> str:
    return str(_meta(obj).get("name", ""))


def _age(obj: dict[str, Any], now: float) -> str:
    return since(_meta(obj).get("creationTimestamp"), now)


def _more(items: list[str], count: int, max_: int, empty: str) -> str:
    ret = ",".join(items)
    if count > max_:
        return f"{ret} + {count - max_} more..."
    return ret or empty


# ---------------------------------------------------------------------------------------
# Pods


def _is_restartable_init(c: dict[str, Any] | None) -> bool:
    return c is not None and c.get("restartPolicy") == "Always"


def _latest(a: float | None, b: Any) -> float | None:
    t = parse_time(b)
    if t is None:
        return a
    return t if a is None or t > a else a


@dataclass
class _Restarts:
    """Restarts of some containers: how many, and when the last one terminated."""

    count: int = 0
    last: float | None = None

    def add(self, cs: dict[str, Any]) -> None:
        """Count a container status's restarts."""
        self.count += _int(cs.get("restartCount"))
        self.last = _latest(self.last, _d(_d(cs.get("lastState")).get("terminated")).get("finishedAt"))


@dataclass
class _PodCells:
    """What printPod accumulates while it walks a pod's container statuses."""

    reason: str
    ready: int = 0
    restarts: _Restarts = field(default_factory=_Restarts)


def pod_status(pod: dict[str, Any], now: float) -> tuple[str, str, str]:
    """(READY, STATUS, RESTARTS) cells of a pod, with Kubernetes' printPod logic."""
    spec, status = _d(pod.get("spec")), _d(pod.get("status"))
    phase = status.get("phase") or ""
    conditions = [_d(c) for c in _l(status.get("conditions"))]
    init_specs = {str(_d(c).get("name")): _d(c) for c in _l(spec.get("initContainers"))}
    total = len(_l(spec.get("containers"))) + sum(1 for c in init_specs.values() if _is_restartable_init(c))
    cells = _PodCells(reason=status.get("reason") or phase)
    if any(c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated" for c in conditions):
        cells.reason = "SchedulingGated"
    sidecar_restarts = _Restarts()
    init_statuses = [_d(c) for c in _l(status.get("initContainerStatuses"))]
    initializing = _init_containers(cells, sidecar_restarts, init_specs, init_statuses)
    initialized = any(c.get("type") == "Initialized" and c.get("status") == "True" for c in conditions)
    if not initializing or initialized:
        cells.restarts = sidecar_restarts  # the init containers' own restarts no longer show
        _containers(cells, [_d(c) for c in _l(status.get("containerStatuses"))], conditions)
    meta = _meta(pod)
    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        cells.reason = "Unknown"
    elif meta.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        cells.reason = "Terminating"
    restarts = cells.restarts
    restarts_s = str(restarts.count)
    if restarts.count and restarts.last is not None:
        restarts_s = f"{restarts.count} ({human_duration(now - restarts.last)} ago)"
    return f"{cells.ready}/{total}", cells.reason, restarts_s


def _init_containers(cells: _PodCells, sidecar_restarts: _Restarts, specs: dict[str, dict[str, Any]],
                     statuses: list[dict[str, Any]]) -> bool:
    """Walk the init container statuses up to the first one not done; True if there is one
    (the pod is still initializing, and `cells.reason` says at which step)."""
    for i, cs in enumerate(statuses):
        cells.restarts.add(cs)
        restartable = _is_restartable_init(specs.get(str(cs.get("name"))))
        if restartable:
            sidecar_restarts.add(cs)
        state = _d(cs.get("state"))
        term = state.get("terminated")
        if term is not None and _int(_d(term).get("exitCode")) == 0:
            continue
        if restartable and cs.get("started"):
            if cs.get("ready"):
                cells.ready += 1
            continue
        cells.reason = _init_reason(state, i, len(specs))
        return True
    return False


def _init_reason(state: dict[str, Any], i: int, n: int) -> str:
    """The STATUS of a pod whose init container `i` (of `n`) is not done."""
    term, waiting = state.get("terminated"), state.get("waiting")
    if term is not None:
        term = _d(term)
        if term.get("reason"):
            return "Init:" + str(term["reason"])
        if _int(term.get("signal")):
            return f"Init:Signal:{term['signal']}"
        return f"Init:ExitCode:{_int(term.get('exitCode'))}"
    if waiting is not None and _d(waiting).get("reason") and _d(waiting)["reason"] != "PodInitializing":
        return "Init:" + str(_d(waiting)["reason"])
    return f"Init:{i}/{n}"


def _containers(cells: _PodCells, statuses: list[dict[str, Any]], conditions: list[dict[str, Any]]) -> None:
    """Walk the app container statuses, last first: the first container's reason wins."""
    has_running = False
    for cs in reversed(statuses):
        cells.restarts.add(cs)
        state = _d(cs.get("state"))
        waiting, term = state.get("waiting"), state.get("terminated")
        if waiting is not None and _d(waiting).get("reason"):
            cells.reason = str(_d(waiting)["reason"])
        elif term is not None and _d(term).get("reason"):
            cells.reason = str(_d(term)["reason"])
        elif term is not None:
            term = _d(term)
            cells.reason = (f"Signal:{term['signal']}" if _int(term.get("signal"))
                            else f"ExitCode:{_int(term.get('exitCode'))}")
        elif cs.get("ready") and state.get("running") is not None:
            has_running = True
            cells.ready += 1
    if cells.reason == "Completed" and has_running:
        ready_cond = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        cells.reason = "Running" if ready_cond else "NotReady"


def _pod_cols() -> list[Column]:
    return [
        _name_col(),
        col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
        col("Status", "string", "The aggregate status of the containers in this pod."),
        col("Restarts", "string", "The number of times the containers in this pod have been restarted and when the "
                                  "last container in this pod has restarted."),
        _age_col(),
        col("IP", "string", _doc("io.k8s.api.core.v1.PodStatus", "podIP"), 1),
        col("Node", "string", _doc("io.k8s.api.core.v1.PodSpec", "nodeName"), 1),
        col("Nominated Node", "string", _doc("io.k8s.api.core.v1.PodStatus", "nominatedNodeName"), 1),
        col("Readiness Gates", "string", _doc("io.k8s.api.core.v1.PodSpec", "readinessGates"), 1),
    ]


def _pod_row(pod: dict[str, Any], now: float) -> Row:
    ready, reason, restarts = pod_status(pod, now)
    spec, status = _d(pod.get("spec")), _d(pod.get("status"))
    ips = _l(status.get("podIPs"))
    ip = str(_d(ips[0]).get("ip", "")) if ips else str(status.get("podIP") or "")
    gates = _l(spec.get("readinessGates"))
    gates_s = "<none>"
    if gates:
        conds = {_d(c).get("type"): _d(c).get("status") for c in _l(status.get("conditions"))}
        true = sum(1 for g in gates if conds.get(_d(g).get("conditionType")) == "True")
        gates_s = f"{true}/{len(gates)}"
    return [_name(pod), ready, reason, restarts, _age(pod, now), ip or "<none>", spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", gates_s]


def _pod_conditions(pod: dict[str, Any]) -> list[dict[str, str]] | None:
    phase = _d(pod.get("status")).get("phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return None


# ---------------------------------------------------------------------------------------
# Workloads


def _deployment_cols() -> list[Column]:
    return [_name_col(),
            col("Ready", "string", "Number of the pod with ready state"),
            col("Up-to-date", "string", _doc("io.k8s.api.apps.v1.DeploymentStatus", "updatedReplicas")),
            col("Available", "string", _doc("io.k8s.api.apps.v1.DeploymentStatus", "availableReplicas")),
            _age_col()] + _wide_template_cols(_doc("io.k8s.api.apps.v1.DeploymentSpec", "selector"))


def _deployment_row(obj: dict[str, Any], now: float) -> Row:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    tspec = _d(_d(spec.get("template")).get("spec"))
    c, i = _containers_images(tspec)
    return [_name(obj), f"{_int(status.get('readyReplicas'))}/{_int(spec.get('replicas'))}",
            _int(status.get("updatedReplicas")), _int(status.get("availableReplicas")), _age(obj, now),
            c, i, selector_string(spec.get("selector"))]


def _replicaset_cols(kind: str = "ReplicaSet") -> list[Column]:
    d = f"io.k8s.api.apps.v1.{kind}" if kind == "ReplicaSet" else "io.k8s.api.core.v1.ReplicationController"
    return [_name_col(),
            col("Desired", "integer", _doc(d + "Spec", "replicas")),
            col("Current", "integer", _doc(d + "Status", "replicas")),
            col("Ready", "integer", _doc(d + "Status", "readyReplicas")),
            _age_col()] + _wide_template_cols(_doc(d + "Spec", "selector"))


def _replicaset_row(obj: dict[str, Any], now: float) -> Row:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    c, i = _containers_images(_d(_d(spec.get("template")).get("spec")))
    return [_name(obj), _int(spec.get("replicas")), _int(status.get("replicas")), _int(status.get("readyReplicas")),
            _age(obj, now), c, i, selector_string(spec.get("selector"))]


def _rc_row(obj: dict[str, Any], now: float) -> Row:
    row = _replicaset_row(obj, now)
    row[-1] = format_labels(_d(obj.get("spec")).get("selector"))
    return row


def _daemonset_cols() -> list[Column]:
    d = "io.k8s.api.apps.v1.DaemonSetStatus"
    return [_name_col(),
            col("Desired", "integer", _doc(d, "desiredNumberScheduled")),
            col("Current", "integer", _doc(d, "currentNumberScheduled")),
            col("Ready", "integer", _doc(d, "numberReady")),
            col("Up-to-date", "integer", _doc(d, "updatedNumberScheduled")),
            col("Available", "integer", _doc(d, "numberAvailable")),
            col("Node Selector", "string", _doc("io.k8s.api.core.v1.PodSpec", "nodeSelector")),
            _age_col()] + _wide_template_cols(_doc("io.k8s.api.apps.v1.DaemonSetSpec", "selector"))


def _daemonset_row(obj: dict[str, Any], now: float) -> Row:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    tspec = _d(_d(spec.get("template")).get("spec"))
    c, i = _containers_images(tspec)
    return [_name(obj), _int(status.get("desiredNumberScheduled")), _int(status.get("currentNumberScheduled")),
            _int(status.get("numberReady")), _int(status.get("updatedNumberScheduled")),
            _int(status.get("numberAvailable")), format_labels(tspec.get("nodeSelector")), _age(obj, now),
            c, i, selector_string(spec.get("selector"))]


def _statefulset_cols() -> list[Column]:
    return [_name_col(), col("Ready", "string", "Number of the pod with ready state"), _age_col()] + \
        _wide_template_cols(with_selector=False)


def _statefulset_row(obj: dict[str, Any], now: float) -> Row:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    c, i = _containers_images(_d(_d(spec.get("template")).get("spec")))
    return [_name(obj), f"{_int(status.get('readyReplicas'))}/{_int(spec.get('replicas'))}", _age(obj, now), c, i]


def _job_cols() -> list[Column]:
    return [_name_col(),
            col("Status", "string", "Status of the job."),
            col("Completions", "string", "The completion status of the job."),
            col("Duration", "string", "Time required to complete the job."),
            _age_col()] + _wide_template_cols(_doc("io.k8s.api.batch.v1.JobSpec", "selector"))


def _has_cond(status: dict[str, Any], type_: str) -> bool:
    return any(_d(c).get("type") == type_ and _d(c).get("status") == "True" for c in _l(status.get("conditions")))


def _job_row(obj: dict[str, Any], now: float) -> Row:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    succeeded = _int(status.get("succeeded"))
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{_int(spec.get('completions'))}"
    elif _int(spec.get("parallelism")) > 1:
        completions = f"{succeeded}/1 of {_int(spec.get('parallelism'))}"
    else:
        completions = f"{succeeded}/1"
    start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    duration = "" if start is None else human_duration((end if end is not None else now) - start)
    if _has_cond(status, "Complete"):
        state = "Complete"
    elif _has_cond(status, "Failed"):
        state = "Failed"
    elif _meta(obj).get("deletionTimestamp"):
        state = "Terminating"
    elif _has_cond(status, "Suspended"):
        state = "Suspended"
    elif _has_cond(status, "FailureTarget"):
        state = "FailureTarget"
    elif _has_cond(status, "SuccessCriteriaMet"):
        state = "SuccessCriteriaMet"
    else:
        state = "Running"
    c, i = _containers_images(_d(_d(spec.get("template")).get("spec")))
    return [_name(obj), state, completions, duration, _age(obj, now), c, i, selector_string(spec.get("selector"))]


def _cronjob_cols() -> list[Column]:
    d = "io.k8s.api.batch.v1.CronJob"
    return [_name_col(),
            col("Schedule", "string", _doc(d + "Spec", "schedule")),
            col("Timezone", "string", _doc(d + "Spec", "timeZone")),
            col("Suspend", "boolean", _doc(d + "Spec", "suspend")),
            col("Active", "integer", _doc(d + "Status", "active")),
            col("Last Schedule", "string", _doc(d + "Status", "lastScheduleTime")),
            _age_col()] + _wide_template_cols(_doc("io.k8s.api.batch.v1.JobSpec", "selector"))


def _cronjob_row(obj: dict[str, Any], now: float) -> Row:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    suspend = spec.get("suspend")
    last = status.get("lastScheduleTime")
    jspec = _d(_d(spec.get("jobTemplate")).get("spec"))
    c, i = _containers_images(_d(_d(jspec.get("template")).get("spec")))
    sel = jspec.get("selector")
    return [_name(obj), spec.get("schedule", ""), spec.get("timeZone") or "<none>",
            "<unset>" if suspend is None else ("True" if suspend else "False"),
            len(_l(status.get("active"))), since(last, now) if last else "<none>", _age(obj, now),
            c, i, selector_string(sel)]


def _hpa_cols() -> list[Column]:
    d = "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler"
    return [_name_col(),
            col("Reference", "string", _doc(d + "Spec", "scaleTargetRef")),
            col("Targets", "string", _doc(d + "Spec", "metrics")),
            col("MinPods", "string", _doc(d + "Spec", "minReplicas")),
            col("MaxPods", "string", _doc(d + "Spec", "maxReplicas")),
            col("Replicas", "string", _doc(d + "Status", "currentReplicas")),
            _age_col()]


def _metric_target(target: dict[str, Any]) -> str:
    if target.get("averageValue") is not None:
        return _qty_string(target["averageValue"])
    if target.get("value") is not None:
        return _qty_string(target["value"])
    if target.get("averageUtilization") is not None:
        return f"{target['averageUtilization']}%"
    return "<auto>"


def _metric_current(cur: dict[str, Any], target: dict[str, Any]) -> str:
    if target.get("averageValue") is not None:
        return _qty_string(cur["averageValue"]) if cur.get("averageValue") is not None else "<unknown>"
    if target.get("value") is not None:
        return _qty_string(cur["value"]) if cur.get("value") is not None else "<unknown>"
    if cur.get("averageUtilization") is not None:
        return f"{cur['averageUtilization']}%"
    return "<unknown>"


def hpa_targets(spec_metrics: list[Any], statuses: list[Any]) -> str:
    """formatHPAMetrics: e.g. "cpu: 50%/80%", at most two, then " + N more..."."""
    items: list[str] = []
    for idx, m in enumerate(spec_metrics):
        m = _d(m)
        st = _d(statuses[idx]) if idx < len(statuses) else {}
        mtype = m.get("type")
        key = {"Resource": "resource", "ContainerResource": "containerResource", "Pods": "pods",
               "Object": "object", "External": "external"}.get(str(mtype), "")
        src, cur = _d(m.get(key)), _d(_d(st.get(key)).get("current"))
        target = _d(src.get("target"))
        if mtype in ("Resource", "ContainerResource"):
            name = str(src.get("name", ""))
            if mtype == "ContainerResource":
                name = f"{name}/{src.get('container', '')}"
            items.append(f"{name}: {_metric_current(cur, target)}/{_metric_target(target)}")
        elif mtype in ("Pods", "Object", "External"):
            cur_s = _metric_current(cur, target)
            tgt = _metric_target(target)
            if target.get("averageValue") is not None and mtype != "Pods":
                tgt += " (avg)"
            items.append(f"{cur_s}/{tgt}")
        else:
            items.append("<unknown type>")
    count = len(items)
    if not items:
        return "<none>"
    ret = ", ".join(items[:2])
    return f"{ret} + {count - 2} more..." if count > 2 else ret


def _hpa_row(obj: dict[str, Any], now: float) -> Row:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    ref = _d(spec.get("scaleTargetRef"))
    mn = spec.get("minReplicas")
    return [_name(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}",
            hpa_targets(_l(spec.get("metrics")), _l(status.get("currentMetrics"))),
            "<unset>" if mn is None else str(mn), _int(spec.get("maxReplicas")),
            _int(status.get("currentReplicas")), _age(obj, now)]


def _apiservice_cols() -> list[Column]:
    return [_name_col(), col("Service", "string", "The reference to the service that hosts this API endpoint."),
            col("Available", "string", "Whether this service is available."), _age_col()]


def _apiservice_row(obj: dict[str, Any], now: float) -> Row:
    svc = _d(_d(obj.get("spec")).get("service"))
    where = f"{svc.get('namespace', '')}/{svc.get('name', '')}" if svc else "Local"
    avail = "Unknown"
    for c in _l(_d(obj.get("status")).get("conditions")):
        if _d(c).get("type") == "Available":
            avail = c.get("status", "Unknown") if c.get("status") == "True" else \
                f"{c.get('status', 'Unknown')} ({c.get('reason', '')})"
    return [_name(obj), where, avail, _age(obj, now)]


def _metrics_cols() -> list[Column]:
    return [_name_col(), col("CPU", "string", "CPU usage"), col("Memory", "string", "Memory usage"),
            col("Window", "string", "Interval the usage was measured over")]


def _metrics_row(obj: dict[str, Any], now: float) -> Row:
    """metrics-server's columns; a pod's usage is its containers' sum."""
    usages = [_d(obj.get("usage"))] if "usage" in obj else [_d(_d(c).get("usage")) for c in _l(obj.get("containers"))]
    cpu = sum((parse_quantity(u.get("cpu") or "0") for u in usages), start=parse_quantity("0"))
    mem = sum((parse_quantity(u.get("memory") or "0") for u in usages), start=parse_quantity("0"))
    return [_name(obj), f"{int(cpu * 10**9)}n", f"{int(mem) // 1024}Ki" if mem else format_quantity(0),
            str(obj.get("window") or "")]


def _controllerrevision_cols() -> list[Column]:
    return [_name_col(), col("Controller", "string", "Controller of the object"),
            col("Revision", "string", _doc("io.k8s.api.apps.v1.ControllerRevision", "revision")), _age_col()]


def _controllerrevision_row(obj: dict[str, Any], now: float) -> Row:
    ctrl = "<none>"
    for ref in _l(_meta(obj).get("ownerReferences")):
        ref = _d(ref)
        if ref.get("controller"):
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            kind = str(ref.get("kind", "")).lower()
            ctrl = f"{kind}.{group}/{ref.get('name', '')}" if group else f"{kind}/{ref.get('name', '')}"
    return [_name(obj), ctrl, _int(obj.get("revision")), _age(obj, now)]


# ---------------------------------------------------------------------------------------
# Services and endpoints


def _service_cols() -> list[Column]:
    d = "io.k8s.api.core.v1.ServiceSpec"
    return [_name_col(), col("Type", "string", _doc(d, "type")), col("Cluster-IP", "string", _doc(d, "clusterIP")),
            col("External-IP", "string", _doc(d, "externalIPs")), col("Port(s)", "string", _doc(d, "ports")),
            _age_col(), col("Selector", "string", _doc(d, "selector"), 1)]


def _lb_ingress(status: dict[str, Any], wide: bool = True) -> str:
    ips = []
    for ing in _l(_d(status.get("loadBalancer")).get("ingress")):
        ing = _d(ing)
        if ing.get("ip"):
            ips.append(str(ing["ip"]))
        elif ing.get("hostname"):
            ips.append(str(ing["hostname"]))
    r = ",".join(ips)
    if not wide and len(r) > 16:
        r = r[:13] + "..."
    return r


def service_external_ip(svc: dict[str, Any]) -> str:
    spec = _d(svc.get("spec"))
    stype = spec.get("type") or "ClusterIP"
    ext = [str(x) for x in _l(spec.get("externalIPs"))]
    if stype in ("ClusterIP", "NodePort"):
        return ",".join(ext) if ext else "<none>"
    if stype == "LoadBalancer":
        lb = _lb_ingress(_d(svc.get("status")))
        if ext:
            return ",".join(([*lb.split(",")] if lb else []) + ext)
        return lb or "<pending>"
    if stype == "ExternalName":
        return str(spec.get("externalName", ""))
    return "<unknown>"


def service_ports(ports: Any) -> str:
    pieces = []
    for p in _l(ports):
        p = _d(p)
        proto = p.get("protocol") or "TCP"
        if _int(p.get("nodePort")) > 0:
            pieces.append(f"{_int(p.get('port'))}:{p['nodePort']}/{proto}")
        else:
            pieces.append(f"{_int(p.get('port'))}/{proto}")
    return ",".join(pieces)


def _service_row(obj: dict[str, Any], now: float) -> Row:
    spec = _d(obj.get("spec"))
    cips = _l(spec.get("clusterIPs"))
    cip = str(cips[0]) if cips else str(spec.get("clusterIP") or "<none>")
    return [_name(obj), spec.get("type") or "ClusterIP", cip, service_external_ip(obj),
            service_ports(spec.get("ports")) or "<none>", _age(obj, now), format_labels(spec.get("selector"))]


def _host_port(ip: str, port: int) -> str:
    try:
        if ipaddress.ip_address(ip).version == 6:
            return f"[{ip}]:{port}"
    except ValueError:
        pass
    return f"{ip}:{port}"


def endpoints_string(ep: dict[str, Any]) -> str:
    """formatEndpoints: at most three ip:port, then " + N more..."; "<none>" without subsets."""
    subsets = _l(ep.get("subsets"))
    if not subsets:
        return "<none>"
    items: list[str] = []
    count = 0
    for ss in subsets:
        ss = _d(ss)
        addrs = [str(_d(a).get("ip", "")) for a in _l(ss.get("addresses"))]
        ports = _l(ss.get("ports"))
        if not ports:
            count += len(addrs)
            items.extend(addrs)
            continue
        for p in ports:
            count += len(addrs)
            items.extend(_host_port(a, _int(_d(p).get("port"))) for a in addrs)
    shown = items[:3]
    ret = ",".join(shown)
    return f"{ret} + {count - 3} more..." if count > 3 else ret


def _endpoints_row(obj: dict[str, Any], now: float) -> Row:
    return [_name(obj), endpoints_string(obj), _age(obj, now)]


def _endpointslice_cols() -> list[Column]:
    d = "io.k8s.api.discovery.v1.EndpointSlice"
    return [_name_col(), col("AddressType", "string", _doc(d, "addressType")),
            col("Ports", "string", _doc(d, "ports")), col("Endpoints", "string", _doc(d, "endpoints")), _age_col()]


def _endpointslice_row(obj: dict[str, Any], now: float) -> Row:
    ports = []
    for p in _l(obj.get("ports")):
        p = _d(p)
        ports.append(str(p["port"]) if p.get("port") is not None else (str(p["name"]) if p.get("name") else "*"))
    addrs = [str(a) for e in _l(obj.get("endpoints")) for a in _l(_d(e).get("addresses"))]
    return [_name(obj), obj.get("addressType", ""), _more(ports[:3], len(ports), 3, "<unset>"),
            _more(addrs[:3], len(addrs), 3, "<unset>"), _age(obj, now)]


# ---------------------------------------------------------------------------------------
# Cluster, config, storage


def _node_cols() -> list[Column]:
    info = "io.k8s.api.core.v1.NodeSystemInfo"
    addrs = _doc("io.k8s.api.core.v1.NodeStatus", "addresses")
    return [_name_col(), col("Status", "string", "The status of the node"),
            col("Roles", "string", "The roles of the node"), _age_col(),
            col("Version", "string", _doc(info, "kubeletVersion")),
            col("Internal-IP", "string", addrs, 1), col("External-IP", "string", addrs, 1),
            col("OS-Image", "string", _doc(info, "osImage"), 1),
            col("Kernel-Version", "string", _doc(info, "kernelVersion"), 1),
            col("Container-Runtime", "string", _doc(info, "containerRuntimeVersion"), 1)]


def node_roles(node: dict[str, Any]) -> list[str]:
    roles = set()
    for k, v in _d(_meta(node).get("labels")).items():
        if k.startswith(LABEL_NODE_ROLE_PREFIX):
            role = k[len(LABEL_NODE_ROLE_PREFIX):]
            if role:
                roles.add(role)
        elif k == LABEL_NODE_ROLE and v:
            roles.add(str(v))
    return sorted(roles)


def node_status(node: dict[str, Any]) -> str:
    status = []
    for c in _l(_d(node.get("status")).get("conditions")):
        c = _d(c)
        if c.get("type") == "Ready":
            status = ["Ready" if c.get("status") == "True" else "NotReady"]
    if not status:
        status = ["Unknown"]
    if _d(node.get("spec")).get("unschedulable"):
        status.append("SchedulingDisabled")
    return ",".join(status)


def _node_address(node: dict[str, Any], type_: str) -> str:
    for a in _l(_d(node.get("status")).get("addresses")):
        if _d(a).get("type") == type_:
            return str(_d(a).get("address", ""))
    return "<none>"


def _node_row(obj: dict[str, Any], now: float) -> Row:
    info = _d(_d(obj.get("status")).get("nodeInfo"))
    return [_name(obj), node_status(obj), ",".join(node_roles(obj)) or "<none>", _age(obj, now),
            info.get("kubeletVersion", ""), _node_address(obj, "InternalIP"), _node_address(obj, "ExternalIP"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


def _namespace_cols() -> list[Column]:
    return [_name_col(), col("Status", "string", "The status of the namespace"), _age_col()]


def _namespace_row(obj: dict[str, Any], now: float) -> Row:
    return [_name(obj), _d(obj.get("status")).get("phase", ""), _age(obj, now)]


def _configmap_cols() -> list[Column]:
    return [_name_col(), col("Data", "string", _doc("io.k8s.api.core.v1.ConfigMap", "data")), _age_col()]


def _configmap_row(obj: dict[str, Any], now: float) -> Row:
    return [_name(obj), len(_d(obj.get("data"))) + len(_d(obj.get("binaryData"))), _age(obj, now)]


def _secret_cols() -> list[Column]:
    d = "io.k8s.api.core.v1.Secret"
    return [_name_col(), col("Type", "string", _doc(d, "type")), col("Data", "string", _doc(d, "data")), _age_col()]


def _secret_row(obj: dict[str, Any], now: float) -> Row:
    return [_name(obj), obj.get("type", ""), len(_d(obj.get("data"))), _age(obj, now)]


def _serviceaccount_cols() -> list[Column]:
    return [_name_col(), col("Secrets", "string", _doc("io.k8s.api.core.v1.ServiceAccount", "secrets")), _age_col()]


def _serviceaccount_row(obj: dict[str, Any], now: float) -> Row:
    return [_name(obj), len(_l(obj.get("secrets"))), _age(obj, now)]


def _event_cols() -> list[Column]:
    d = "io.k8s.api.core.v1.Event"
    return [col("Last Seen", "string", _doc(d, "lastTimestamp")), col("Type", "string", _doc(d, "type")),
            col("Reason", "string", _doc(d, "reason")), col("Object", "string", _doc(d, "involvedObject")),
            col("Subobject", "string", _doc("io.k8s.api.core.v1.ObjectReference", "fieldPath"), 1),
            col("Source", "string", _doc(d, "source"), 1), col("Message", "string", _doc(d, "message")),
            col("First Seen", "string", _doc(d, "firstTimestamp"), 1), col("Count", "string", _doc(d, "count"), 1),
            col("Name", "string", _meta_doc("name"), 1, fmt="name")]


def _event_row(obj: dict[str, Any], now: float) -> Row:
    # Accept both core/v1 and events.k8s.io/v1 field names (same storage).
    io = _d(obj.get("involvedObject") or obj.get("regarding"))
    first_ts = obj.get("firstTimestamp") or obj.get("deprecatedFirstTimestamp")
    last_ts = obj.get("lastTimestamp") or obj.get("deprecatedLastTimestamp")
    first = since(first_ts, now) if first_ts else since(obj.get("eventTime"), now)
    last = since(last_ts, now) if last_ts else first
    count = _int(obj.get("count") if "count" in obj else obj.get("deprecatedCount"))
    series = obj.get("series")
    if isinstance(series, dict):
        last = since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1
    kind = str(io.get("kind", "")).lower()
    target = f"{kind}/{io['name']}" if io.get("name") else kind
    src = _d(obj.get("source") or obj.get("deprecatedSource"))
    component = src.get("component") or obj.get("reportingController") or obj.get("reportingComponent") or ""
    instance = src.get("host") or obj.get("reportingInstance") or ""
    source = f"{component}, {instance}" if instance else component
    message = str(obj.get("message") or obj.get("note") or "").strip()
    return [last, obj.get("type", ""), obj.get("reason", ""), target, io.get("fieldPath", ""), source, message,
            first, count, _name(obj)]


_ACCESS_MODE_SHORT = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                      ("ReadWriteOncePod", "RWOP"))


def access_modes(modes: Any) -> str:
    ms = _l(modes)
    return ",".join(short for long_, short in _ACCESS_MODE_SHORT if long_ in ms)


def _pv_cols() -> list[Column]:
    d = "io.k8s.api.core.v1.PersistentVolumeSpec"
    return [_name_col(), col("Capacity", "string", _doc(d, "capacity")),
            col("Access Modes", "string", _doc(d, "accessModes")),
            col("Reclaim Policy", "string", _doc(d, "persistentVolumeReclaimPolicy")),
            col("Status", "string", _doc("io.k8s.api.core.v1.PersistentVolumeStatus", "phase")),
            col("Claim", "string", _doc(d, "claimRef")), col("StorageClass", "string", "StorageClass of the pv"),
            col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
            col("Reason", "string", _doc("io.k8s.api.core.v1.PersistentVolumeStatus", "reason")), _age_col(),
            col("VolumeMode", "string", _doc(d, "volumeMode"), 1)]


def _pv_row(obj: dict[str, Any], now: float) -> Row:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    claim = ""
    if spec.get("claimRef") is not None:
        cr = _d(spec["claimRef"])
        claim = f"{cr.get('namespace', '')}/{cr.get('name', '')}"
    phase = "Terminating" if _meta(obj).get("deletionTimestamp") else status.get("phase", "")
    sc = _d(_meta(obj).get("annotations")).get("volume.beta.kubernetes.io/storage-class") or \
        spec.get("storageClassName") or ""
    return [_name(obj), _qty_string(_d(spec.get("capacity")).get("storage")), access_modes(spec.get("accessModes")),
            spec.get("persistentVolumeReclaimPolicy", ""), phase, claim, sc,
            spec.get("volumeAttributesClassName") or "<unset>", status.get("reason", ""), _age(obj, now),
            spec.get("volumeMode") or "<unset>"]


def _pvc_cols() -> list[Column]:
    d = "io.k8s.api.core.v1.PersistentVolumeClaimSpec"
    return [_name_col(), col("Status", "string", _doc("io.k8s.api.core.v1.PersistentVolumeClaimStatus", "phase")),
            col("Volume", "string", _doc(d, "volumeName")),
            col("Capacity", "string", _doc("io.k8s.api.core.v1.PersistentVolumeClaimStatus", "capacity")),
            col("Access Modes", "string", _doc("io.k8s.api.core.v1.PersistentVolumeClaimStatus", "accessModes")),
            col("StorageClass", "string", "StorageClass of the pvc"),
            col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"), _age_col(),
            col("VolumeMode", "string", _doc(d, "volumeMode"), 1)]


def _pvc_row(obj: dict[str, Any], now: float) -> Row:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    phase = "Terminating" if _meta(obj).get("deletionTimestamp") else status.get("phase", "")
    capacity = modes = ""
    if spec.get("volumeName"):
        modes = access_modes(status.get("accessModes"))
        capacity = _qty_string(_d(status.get("capacity")).get("storage"))
    sc = _d(_meta(obj).get("annotations")).get("volume.beta.kubernetes.io/storage-class") or \
        spec.get("storageClassName") or ""
    return [_name(obj), phase, spec.get("volumeName", ""), capacity, modes, sc,
            spec.get("volumeAttributesClassName") or "<unset>", _age(obj, now), spec.get("volumeMode") or "<unset>"]


def _storageclass_cols() -> list[Column]:
    d = "io.k8s.api.storage.v1.StorageClass"
    return [_name_col(), col("Provisioner", "string", _doc(d, "provisioner")),
            col("ReclaimPolicy", "string", _doc(d, "reclaimPolicy")),
            col("VolumeBindingMode", "string", _doc(d, "volumeBindingMode")),
            col("AllowVolumeExpansion", "string", _doc(d, "allowVolumeExpansion")), _age_col()]


def is_default_class(obj: dict[str, Any]) -> bool:
    ann = _d(_meta(obj).get("annotations"))
    return ann.get(ANNOTATION_IS_DEFAULT_CLASS) == "true" or ann.get(ANNOTATION_IS_DEFAULT_CLASS_BETA) == "true"


def _storageclass_row(obj: dict[str, Any], now: float) -> Row:
    name = _name(obj) + (" (default)" if is_default_class(obj) else "")
    return [name, obj.get("provisioner", ""), obj.get("reclaimPolicy") or "Delete",
            obj.get("volumeBindingMode") or "Immediate", bool(obj.get("allowVolumeExpansion")), _age(obj, now)]


def _pdb_cols() -> list[Column]:
    d = "io.k8s.api.policy.v1.PodDisruptionBudgetSpec"
    return [_name_col(), col("Min Available", "string", _doc(d, "minAvailable")),
            col("Max Unavailable", "string", _doc(d, "maxUnavailable")),
            col("Allowed Disruptions", "integer",
                _doc("io.k8s.api.policy.v1.PodDisruptionBudgetStatus", "disruptionsAllowed")), _age_col()]


def _pdb_row(obj: dict[str, Any], now: float) -> Row:
    spec = _d(obj.get("spec"))
    mn, mx = spec.get("minAvailable"), spec.get("maxUnavailable")
    return [_name(obj), "N/A" if mn is None else str(mn), "N/A" if mx is None else str(mx),
            int(_d(obj.get("status")).get("disruptionsAllowed") or 0), _age(obj, now)]


def _priorityclass_cols() -> list[Column]:
    d = "io.k8s.api.scheduling.v1.PriorityClass"
    return [_name_col(), col("Value", "integer", _doc(d, "value")),
            col("Global-Default", "boolean", _doc(d, "globalDefault")), _age_col(),
            col("PreemptionPolicy", "string", _doc(d, "preemptionPolicy"))]


def _priorityclass_row(obj: dict[str, Any], now: float) -> Row:
    return [_name(obj), obj.get("value", 0), bool(obj.get("globalDefault")), _age(obj, now),
            obj.get("preemptionPolicy") or ""]


def _runtimeclass_cols() -> list[Column]:
    return [_name_col(), col("Handler", "string", _doc("io.k8s.api.node.v1.RuntimeClass", "handler")), _age_col()]


def _runtimeclass_row(obj: dict[str, Any], now: float) -> Row:
    return [_name(obj), obj.get("handler", ""), _age(obj, now)]


def _ingress_cols() -> list[Column]:
    d = "io.k8s.api.networking.v1.IngressSpec"
    return [_name_col(), col("Class", "string", _doc(d, "ingressClassName")),
            col("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
            col("Address", "string", "Address is a list of IP addresses this Ingress is exposed at"),
            col("Ports", "string", "Ports of TLS configurations that open"), _age_col()]


def _ingress_row(obj: dict[str, Any], now: float) -> Row:
    spec = _d(obj.get("spec"))
    hosts = [str(r.get("host")) for r in spec.get("rules") or [] if isinstance(r, dict) and r.get("host")]
    lb = _d(_d(obj.get("status")).get("loadBalancer")).get("ingress") or []
    addrs = [str(i.get("ip") or i.get("hostname")) for i in lb
             if isinstance(i, dict) and (i.get("ip") or i.get("hostname"))]
    ports = "80, 443" if spec.get("tls") else "80"
    return [_name(obj), spec.get("ingressClassName") or "<none>", ",".join(hosts) or "*",
            ",".join(addrs), ports, _age(obj, now)]


def _ingressclass_cols() -> list[Column]:
    d = "io.k8s.api.networking.v1.IngressClassSpec"
    return [_name_col(), col("Controller", "string", _doc(d, "controller")),
            col("Parameters", "string", _doc(d, "parameters")), _age_col()]


def _ingressclass_row(obj: dict[str, Any], now: float) -> Row:
    spec = _d(obj.get("spec"))
    p = _d(spec.get("parameters"))
    params = f"{p.get('kind')}/{p.get('name')}" if p else "<none>"
    return [_name(obj), spec.get("controller") or "", params, _age(obj, now)]


def _lease_cols() -> list[Column]:
    return [_name_col(), col("Holder", "string", _doc("io.k8s.api.coordination.v1.LeaseSpec", "holderIdentity")),
            _age_col()]


def _lease_row(obj: dict[str, Any], now: float) -> Row:
    return [_name(obj), _d(obj.get("spec")).get("holderIdentity") or "", _age(obj, now)]


def _quota_cols() -> list[Column]:
    return [_name_col(), _age_col(), col("Request", "string", "Request represents a minimum amount of cpu/memory "
                                                              "that a container may consume."),
            col("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use "
                                   "independent of contention on the node.")]


def _quota_row(obj: dict[str, Any], now: float) -> Row:
    status = _d(obj.get("status"))
    hard, used = _d(status.get("hard")), _d(status.get("used"))
    req: list[str] = []
    lim: list[str] = []
    for name in sorted(hard):
        piece = f"{name}: {_qty_string(used.get(name))}/{_qty_string(hard[name])}"
        (lim if name.split(".")[0] == "limits" and "." in name else req).append(piece)
    return [_name(obj), _age(obj, now), ", ".join(req), ", ".join(lim)]


def _limitrange_cols() -> list[Column]:
    return [_name_col(), col("Created At", "date", _meta_doc("creationTimestamp"))]


def _limitrange_row(obj: dict[str, Any], now: float) -> Row:
    t = parse_time(_meta(obj).get("creationTimestamp"))
    created = _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if t is not None else ""
    return [_name(obj), created]


def _role_row(obj: dict[str, Any], now: float) -> Row:
    return _limitrange_row(obj, now)  # name and creation time (RFC 3339), as Kubernetes prints roles


def _binding_cols(what: str) -> list[Column]:
    return [_name_col(), col("Role", "string", _doc("io.k8s.api.rbac.v1.RoleBinding", "roleRef")), _age_col(),
            col("Users", "string", f"Users in the {what}", priority=1),
            col("Groups", "string", f"Groups in the {what}", priority=1),
            col("ServiceAccounts", "string", f"ServiceAccounts in the {what}", priority=1)]


def _binding_row(obj: dict[str, Any], now: float) -> Row:
    ref = _d(obj.get("roleRef"))
    subjects = [s for s in obj.get("subjects") or [] if isinstance(s, dict)]
    users = [str(s.get("name", "")) for s in subjects if s.get("kind") == "User"]
    groups = [str(s.get("name", "")) for s in subjects if s.get("kind") == "Group"]
    sas = [f'{s.get("namespace", "")}/{s.get("name", "")}' for s in subjects if s.get("kind") == "ServiceAccount"]
    return [_name(obj), f'{ref.get("kind", "")}/{ref.get("name", "")}', _age(obj, now),
            ", ".join(users), ", ".join(groups), ", ".join(sas)]


def _crd_cols() -> list[Column]:
    """CustomResourceDefinitions print as the default table convertor does: Name, Created At."""
    return [_name_col(), col("Created At", "date", _meta_doc("creationTimestamp"))]


def _crd_row(obj: dict[str, Any], now: float) -> Row:
    return [_name(obj), _meta(obj).get("creationTimestamp")]


def _generic_cols() -> list[Column]:
    return [_name_col(), _age_col()]


def _generic_row(obj: dict[str, Any], now: float) -> Row:
    return [_name(obj), _age(obj, now)]


# ---------------------------------------------------------------------------------------
# Entry point

Printer = tuple[Callable[[], list[Column]], Callable[[dict[str, Any], float], Row]]

def _webhooks_cols() -> list[Column]:
    return [_name_col(), col("Webhooks", "integer", "Webhooks indicates the number of webhooks registered in "
                             "this configuration."), _age_col()]


def _webhooks_row(obj: dict[str, Any], now: float) -> Row:
    whs = obj.get("webhooks")
    return [_name(obj), len(whs) if isinstance(whs, list) else 0, _age(obj, now)]


def _policy_cols() -> list[Column]:
    return [_name_col(), col("Validations", "integer", "Validations indicates the number of validation rules "
                             "defined in this configuration"),
            col("ParamKind", "string", "ParamKind specifies the kind of resources used to parameterize this policy"),
            _age_col()]


def _policy_row(obj: dict[str, Any], now: float) -> Row:
    spec = _d(obj.get("spec"))
    vals = spec.get("validations")
    pk = _d(spec.get("paramKind"))
    kind = f"{pk.get('apiVersion', '')}/{pk.get('kind', '')}" if pk else "<unset>"
    return [_name(obj), len(vals) if isinstance(vals, list) else 0, kind, _age(obj, now)]


def _policy_binding_cols() -> list[Column]:
    return [_name_col(), col("PolicyName", "string", "PolicyName indicates the policy definition which the "
                             "policy binding binded to"),
            col("ParamRef", "string", "ParamRef indicates the param resource which sets the configration param"),
            _age_col()]


def _policy_binding_row(obj: dict[str, Any], now: float) -> Row:
    spec = _d(obj.get("spec"))
    ref = _d(spec.get("paramRef"))
    shown = (f"{ref['namespace']}/{ref.get('name', '')}" if ref.get("namespace") else str(ref.get("name") or "*/*")) \
        if ref else "<unset>"
    return [_name(obj), str(spec.get("policyName") or ""), shown, _age(obj, now)]


def _networkpolicy_cols() -> list[Column]:
    return [_name_col(), col("Pod-Selector", "string", _doc("io.k8s.api.networking.v1.NetworkPolicySpec",
                                                            "podSelector")), _age_col()]


def _networkpolicy_row(obj: dict[str, Any], now: float) -> Row:
    return [_name(obj), selector_string(_d(obj.get("spec")).get("podSelector")), _age(obj, now)]


_PRINTERS: dict[tuple[str, str], Printer] = {
    ("", "Pod"): (_pod_cols, _pod_row),
    ("", "Service"): (_service_cols, _service_row),
    ("", "Endpoints"): (lambda: [_name_col(), col("Endpoints", "string", _doc("io.k8s.api.core.v1.Endpoints",
                                                                               "subsets")), _age_col()],
                        _endpoints_row),
    ("", "ConfigMap"): (_configmap_cols, _configmap_row),
    ("", "Secret"): (_secret_cols, _secret_row),
    ("", "ServiceAccount"): (_serviceaccount_cols, _serviceaccount_row),
    ("", "Node"): (_node_cols, _node_row),
    ("", "Namespace"): (_namespace_cols, _namespace_row),
    ("", "Event"): (_event_cols, _event_row),
    ("events.k8s.io", "Event"): (_event_cols, _event_row),
    ("", "PersistentVolume"): (_pv_cols, _pv_row),
    ("", "PersistentVolumeClaim"): (_pvc_cols, _pvc_row),
    ("", "ReplicationController"): (lambda: _replicaset_cols("ReplicationController"), _rc_row),
    ("", "ResourceQuota"): (_quota_cols, _quota_row),
    ("", "LimitRange"): (_limitrange_cols, _limitrange_row),
    ("apps", "Deployment"): (_deployment_cols, _deployment_row),
    ("apps", "ReplicaSet"): (_replicaset_cols, _replicaset_row),
    ("apps", "DaemonSet"): (_daemonset_cols, _daemonset_row),
    ("apps", "StatefulSet"): (_statefulset_cols, _statefulset_row),
    ("apps", "ControllerRevision"): (_controllerrevision_cols, _controllerrevision_row),
    ("batch", "Job"): (_job_cols, _job_row),
    ("batch", "CronJob"): (_cronjob_cols, _cronjob_row),
    ("autoscaling", "HorizontalPodAutoscaler"): (_hpa_cols, _hpa_row),
    ("apiregistration.k8s.io", "APIService"): (_apiservice_cols, _apiservice_row),
    ("metrics.k8s.io", "NodeMetrics"): (_metrics_cols, _metrics_row),
    ("metrics.k8s.io", "PodMetrics"): (_metrics_cols, _metrics_row),
    ("coordination.k8s.io", "Lease"): (_lease_cols, _lease_row),
    ("discovery.k8s.io", "EndpointSlice"): (_endpointslice_cols, _endpointslice_row),
    ("storage.k8s.io", "StorageClass"): (_storageclass_cols, _storageclass_row),
    ("networking.k8s.io", "Ingress"): (_ingress_cols, _ingress_row),
    ("networking.k8s.io", "IngressClass"): (_ingressclass_cols, _ingressclass_row),
    ("rbac.authorization.k8s.io", "Role"): (_limitrange_cols, _role_row),
    ("rbac.authorization.k8s.io", "ClusterRole"): (_limitrange_cols, _role_row),
    ("rbac.authorization.k8s.io", "RoleBinding"): (lambda: _binding_cols("roleBinding"), _binding_row),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): (lambda: _binding_cols("clusterRoleBinding"),
                                                          _binding_row),
    ("policy", "PodDisruptionBudget"): (_pdb_cols, _pdb_row),
    ("scheduling.k8s.io", "PriorityClass"): (_priorityclass_cols, _priorityclass_row),
    ("node.k8s.io", "RuntimeClass"): (_runtimeclass_cols, _runtimeclass_row),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): (_crd_cols, _crd_row),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): (_webhooks_cols, _webhooks_row),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): (_webhooks_cols, _webhooks_row),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): (_policy_cols, _policy_row),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): (_policy_binding_cols,
                                                                          _policy_binding_row),
    ("networking.k8s.io", "NetworkPolicy"): (_networkpolicy_cols, _networkpolicy_row),
}


def columns(resource: Resource) -> list[Column]:
    """The column definitions Kubernetes prints for `resource`."""
    cols_fn, _ = _PRINTERS.get((resource.group, resource.kind), (_generic_cols, _generic_row))
    return cols_fn()


def to_table(resource: Resource, objs: list[dict[str, Any]], now: float,
             include_object: str = "Metadata") -> dict[str, Any]:
    """A meta.k8s.io/v1 Table of `objs`. include_object: "Metadata" | "Object" | "None"."""
    cols_fn, row_fn = _PRINTERS.get((resource.group, resource.kind), (_generic_cols, _generic_row))
    cols = cols_fn()
    rows = []
    for obj in objs:
        if not isinstance(obj, dict):
            continue
        try:
            cells = row_fn(obj, now)
        except (TypeError, ValueError, KeyError, AttributeError):
            cells = [_name(obj)] + [""] * (len(cols) - 2) + [_age(obj, now)]
        row: dict[str, Any] = {"cells": cells}
        if resource.group == "" and resource.kind == "Pod":
            conds = _pod_conditions(obj)
            if conds:
                row["conditions"] = conds
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": _meta(obj)}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": cols, "rows": rows}
