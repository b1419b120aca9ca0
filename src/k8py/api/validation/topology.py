"""Pod `topologySpreadConstraints`, as Kubernetes' validateTopologySpreadConstraints.

Invariants: as in `meta`; paths are `<spec>.topologySpreadConstraints[i].<field>`.
"""

from __future__ import annotations

from typing import Any

from k8py.api import names
from k8py.api.validation.field import duplicate, invalid, required
from k8py.api.validation.meta import ErrorList, dict_of, list_of, validate_enum, validate_label_selector

WHEN_UNSATISFIABLE = ("DoNotSchedule", "ScheduleAnyway")
INCLUSION_POLICIES = ("Honor", "Ignore")


def validate_topology_spread(v: ErrorList, constraints: Any, path: str) -> None:
    seen: set[tuple[Any, Any]] = set()
    for i, raw in enumerate(list_of(constraints)):
        c = dict_of(raw)
        p = f"{path}[{i}]"
        skew = c.get("maxSkew")
        if isinstance(skew, int) and not isinstance(skew, bool) and skew <= 0:
            v.add(invalid(f"{p}.maxSkew", skew, "must be greater than zero"))
        key, when = c.get("topologyKey"), c.get("whenUnsatisfiable")
        if not key:
            v.add(required(f"{p}.topologyKey", "can not be empty"))
        elif isinstance(key, str):
            v.msgs(f"{p}.topologyKey", key, names.qualified_name_errors(key))
        validate_enum(v, when, f"{p}.whenUnsatisfiable", WHEN_UNSATISFIABLE, required_=True)
        md = c.get("minDomains")
        if md is not None:
            if isinstance(md, int) and not isinstance(md, bool) and md <= 0:
                v.add(invalid(f"{p}.minDomains", md, "must be greater than 0"))
            elif when != "DoNotSchedule":
                v.add(invalid(f"{p}.minDomains", md,
                              f"can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {when}"))
        if (key, when) in seen:
            v.add(duplicate(p, f"{{{key}, {when}}}"))
        seen.add((key, when))
        for f in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
            validate_enum(v, c.get(f), f"{p}.{f}", INCLUSION_POLICIES)
        if isinstance(c.get("labelSelector"), dict):
            validate_label_selector(v, c["labelSelector"], f"{p}.labelSelector")
