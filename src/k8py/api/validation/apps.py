"""apps/v1: Deployments, ReplicaSets, DaemonSets and StatefulSets.

Each checks its counts, a non-empty selector that selects the pod template's labels, the
template (restartPolicy Always), its update strategy, and that an update keeps the
selector (StatefulSets: all but a few spec fields). Invariants: as in `meta`.
"""

from __future__ import annotations

import re
from typing import Any

from k8py.api.validation.field import (
    IMMUTABLE,
    Raw,
    forbidden,
    go_label_selector,
    go_map,
    invalid,
    required,
)
from k8py.api.validation.meta import (
    ErrorList,
    dict_of,
    selector_empty,
    selector_matches,
    validate_enum,
    validate_label_selector,
    validate_nonnegative,
)
from k8py.api.validation.pod import validate_pod_template


def _selector_and_template(v: ErrorList, spec: dict[str, Any], kind_word: str) -> None:
    """A non-empty selector that selects the pod template's labels; the template (restartPolicy Always)."""
    sel = spec.get("selector")
    if sel is None:
        v.add(required("spec.selector"))
    else:
        _selector_of_template(v, dict_of(sel), spec.get("template"), kind_word)
    validate_pod_template(v, spec.get("template"), "spec.template", ("Always",))


def _selector_of_template(v: ErrorList, sel: dict[str, Any], tmpl: Any, kind_word: str) -> None:
    if selector_empty(sel):
        v.add(invalid("spec.selector", Raw(go_label_selector(sel)), f"empty selector is invalid for {kind_word}"))
        return
    before = len(v.errs)
    validate_label_selector(v, sel, "spec.selector")
    if len(v.errs) == before and tmpl is not None:
        labels = dict_of(dict_of(dict_of(tmpl).get("metadata")).get("labels"))
        if selector_matches(sel, labels) is False:
            v.add(invalid("spec.template.metadata.labels", Raw(go_map(dict_of(tmpl).get("metadata", {}).get("labels"))),
                          "`selector` does not match template `labels`"))


def validate_replica_counts(v: ErrorList, spec: dict[str, Any]) -> None:
    """replicas, minReadySeconds, revisionHistoryLimit: not negative (core ReplicationControllers' too)."""
    validate_nonnegative(v, spec.get("replicas"), "spec.replicas")
    validate_nonnegative(v, spec.get("minReadySeconds"), "spec.minReadySeconds")
    validate_nonnegative(v, spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")


def int_or_percent(v: ErrorList, x: Any, path: str) -> tuple[bool, int | None]:
    """Validates a maxSurge/maxUnavailable value; returns (is_zero, percent_or_None)."""
    if x is None:
        return False, None
    if isinstance(x, int) and not isinstance(x, bool):
        validate_nonnegative(v, x, path)
        return x == 0, None
    if isinstance(x, str):
        m = re.fullmatch(r"(\d+)%", x)
        if not m:
            v.add(invalid(path, x, "a valid percent string must be a numeric string followed by an ending '%' "
                                   "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"))
            return False, None
        pct = int(m.group(1))
        if pct > 100:
            v.add(invalid(path, x, "must not be greater than 100%"))
        return pct == 0, pct
    return False, None


def _rolling(v: ErrorList, ru: dict[str, Any], path: str) -> None:
    unavail_zero, _ = int_or_percent(v, ru.get("maxUnavailable"), f"{path}.maxUnavailable")
    surge_zero, _ = int_or_percent(v, ru.get("maxSurge"), f"{path}.maxSurge")
    surge_unset = ru.get("maxSurge") is None
    if unavail_zero and (surge_zero or surge_unset) and "maxUnavailable" in ru:
        v.add(invalid(f"{path}.maxUnavailable", ru.get("maxUnavailable"), "may not be 0 when `maxSurge` is 0"))


def _statefulset_rolling(v: ErrorList, ru: dict[str, Any], path: str) -> None:
    """partition >= 0; maxUnavailable (beta and on since 1.35) a positive int or 1-100%."""
    validate_nonnegative(v, ru.get("partition"), f"{path}.partition")
    mu = ru.get("maxUnavailable")
    zero, _ = int_or_percent(v, mu, f"{path}.maxUnavailable")
    if zero:
        v.add(invalid(f"{path}.maxUnavailable", mu, "cannot be 0"))


def _selector_immutable(v: ErrorList, spec: dict[str, Any], ospec: dict[str, Any]) -> None:
    if spec.get("selector") != ospec.get("selector"):
        v.add(invalid("spec.selector", Raw(go_label_selector(dict_of(spec.get("selector")))), IMMUTABLE))


def validate_deployment(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = dict_of(obj.get("spec"))
    validate_replica_counts(v, spec)
    _selector_and_template(v, spec, "deployment")
    strat = dict_of(spec.get("strategy"))
    st = strat.get("type")
    validate_enum(v, st, "spec.strategy.type", ("Recreate", "RollingUpdate"))
    if st == "Recreate" and strat.get("rollingUpdate") is not None:
        v.add(forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"))
    elif strat.get("rollingUpdate") is not None:
        _rolling(v, dict_of(strat["rollingUpdate"]), "spec.strategy.rollingUpdate")
    pds = spec.get("progressDeadlineSeconds")
    if isinstance(pds, int) and not isinstance(pds, bool):
        validate_nonnegative(v, pds, "spec.progressDeadlineSeconds")
        mrs = spec.get("minReadySeconds") or 0
        if pds <= mrs:
            v.add(invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds"))
    if old is not None:
        _selector_immutable(v, spec, dict_of(old.get("spec")))


def validate_replicaset(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = dict_of(obj.get("spec"))
    validate_replica_counts(v, spec)
    _selector_and_template(v, spec, "deployment")
    if old is not None:
        _selector_immutable(v, spec, dict_of(old.get("spec")))


def validate_daemonset(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = dict_of(obj.get("spec"))
    validate_nonnegative(v, spec.get("minReadySeconds"), "spec.minReadySeconds")
    validate_nonnegative(v, spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    _selector_and_template(v, spec, "daemonset")
    us = dict_of(spec.get("updateStrategy"))
    validate_enum(v, us.get("type"), "spec.updateStrategy.type", ("OnDelete", "RollingUpdate"))
    if us.get("type") == "RollingUpdate" and us.get("rollingUpdate") is not None:
        _rolling(v, dict_of(us["rollingUpdate"]), "spec.updateStrategy.rollingUpdate")
    if old is not None:
        _selector_immutable(v, spec, dict_of(old.get("spec")))


def validate_statefulset(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = dict_of(obj.get("spec"))
    validate_replica_counts(v, spec)
    _selector_and_template(v, spec, "statefulset")
    validate_enum(v, spec.get("podManagementPolicy"), "spec.podManagementPolicy", ("OrderedReady", "Parallel"))
    us = dict_of(spec.get("updateStrategy"))
    validate_enum(v, us.get("type"), "spec.updateStrategy.type", ("OnDelete", "RollingUpdate"))
    if us.get("type") == "RollingUpdate" and us.get("rollingUpdate") is not None:
        _statefulset_rolling(v, dict_of(us["rollingUpdate"]), "spec.updateStrategy.rollingUpdate")
    if old is not None:
        ospec = dict_of(old.get("spec"))
        mutable = ("replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                   "minReadySeconds")
        if {k: x for k, x in spec.items() if k not in mutable} != {k: x for k, x in ospec.items() if k not in mutable}:
            v.add(forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                                    "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                                    "'minReadySeconds' are forbidden"))
