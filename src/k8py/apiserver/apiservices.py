"""apiregistration.k8s.io/v1 APIServices of the groups this server serves itself (as
kube-apiserver's autoregister controller makes them): one per group version, named
`<version>.<group>` (the core group's `v1.` is left out), `service: null` (Local) and condition
Available True (reason Local). metrics.k8s.io is among them: the API server computes it
(apiserver/metrics.py) where a cluster would run metrics-server behind its APIService.
Invariant: created when missing at every start; the status is (re)written when it is not
Available, so a listed local APIService always says Available.
"""

from __future__ import annotations

import time

from k8py.api import resources
from k8py.api.types import Obj
from k8py.apiserver import storage
from k8py.apiserver.registry import Registry, WriteOptions
from k8py.clock import rfc3339

MANAGER = "kube-apiserver"
# priorities kube-apiserver gives its groups (a few; the rest 1000/15 as for unknown groups)
_PRIORITY = {"apps": (17800, 15), "autoscaling": (17500, 9), "batch": (17400, 15),
             "rbac.authorization.k8s.io": (17000, 12), "metrics.k8s.io": (100, 100)}


def local_apiservices(now: float | None = None) -> list[Obj]:
    ts = rfc3339(time.time() if now is None else now)
    out = []
    for g, v in resources.group_versions():
        if not g:  # kube-apiserver's "v1." is no valid name here: the core group has none
            continue
        group_prio, version_prio = _PRIORITY.get(g, (1000, 15))
        out.append({
            "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": f"{v}.{g}", "labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"}},
            "spec": {"group": g, "version": v, "groupPriorityMinimum": group_prio,
                     "versionPriority": version_prio},
            "status": {"conditions": [{"type": "Available", "status": "True", "lastTransitionTime": ts,
                                       "reason": "Local", "message": "Local APIServices are always available"}]},
        })
    return out


async def ensure(reg: Registry) -> None:
    """Create the missing local APIServices; mark any that is not Available as Available."""
    r = resources.lookup("apiregistration.k8s.io", "apiservices")
    assert r is not None
    opts = WriteOptions(field_manager=MANAGER)
    for obj in local_apiservices():
        name = obj["metadata"]["name"]
        kv = await reg.store.get(storage.key(r, None, name))
        if kv is None:
            cur = await reg.create(r, None, {k: v for k, v in obj.items() if k != "status"}, opts)
        else:
            cur = storage.from_kv(r, kv)
        conds = (cur.get("status") or {}).get("conditions") or []
        if not any(c.get("type") == "Available" and c.get("status") == "True" for c in conds):
            cur["status"] = obj["status"]
            await reg.update(r, None, name, cur, opts, subresource="status")
