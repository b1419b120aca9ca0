"""pods/eviction (policy/v1 Eviction): a pod deletion that honours PodDisruptionBudgets,
as kube-apiserver's EvictionREST does.

- A pod that is Pending, Succeeded, Failed or already being deleted is deleted at once.
- The namespace's PDBs whose selector matches the pod: none -> delete; more than one ->
  500; one -> a pod that is not Ready is deleted without charging the budget when the
  budget is met (`currentHealthy >= desiredHealthy > 0`) or its
  `unhealthyPodEvictionPolicy` is AlwaysAllow; otherwise the budget is charged:
  `status.disruptionsAllowed` is decremented and the pod recorded in
  `status.disruptedPods` (one CAS write, retried on conflict) before the delete, or the
  eviction is refused with 429 and Kubernetes' message when nothing is allowed (or the
  controller has not yet observed the PDB's generation).
"""

from __future__ import annotations

from typing import Any

from k8py.api import disruption, resources
from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.apiserver import storage
from k8py.apiserver.errors import StatusError, conflict, forbidden, internal
from k8py.apiserver.registry import Registry
from k8py.apiserver.storage import clone
from k8py.clock import rfc3339
from k8py.store import errors as store_errors

_PDB = resources.lookup("policy", "poddisruptionbudgets")
assert _PDB is not None
PDBS: Resource = _PDB
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"
MAX_DISRUPTED_PODS = 2000
MORE_THAN_ONE = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."


def too_many_requests(message: str, cause: str, retry_after: int) -> StatusError:
    details: dict[str, Any] = {"causes": [{"reason": DISRUPTION_BUDGET_CAUSE, "message": cause}]}
    if retry_after:
        details["retryAfterSeconds"] = retry_after
    return StatusError(429, "TooManyRequests", message, details)


def can_ignore_pdb(pod: Obj) -> bool:
    """Pods whose eviction never charges a budget: not yet running, finished, or going."""
    return bool(pod["metadata"].get("deletionTimestamp")) or \
        (pod.get("status") or {}).get("phase") in ("Pending", "Succeeded", "Failed")


def is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [] if isinstance(c, dict))


def matching(pdbs: list[Obj], pod: Obj) -> list[Obj]:
    """The PDBs selecting the pod."""
    labels = pod["metadata"].get("labels") or {}
    return [pdb for pdb in pdbs if disruption.selects(pdb, labels)]


def charge(pdb: Obj, pod_name: str, now: float) -> Obj:
    """The PDB with one disruption spent on `pod_name` (raises 429/403 when it has none)."""
    name = pdb["metadata"]["name"]
    status = pdb.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(pdb["metadata"].get("generation") or 0):
        raise too_many_requests(VIOLATION, f"The disruption budget {name} is still being processed by the server.",
                                10)
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise forbidden("poddisruptionbudget", name, "pdb disruptions allowed is negative", "policy")
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
        raise forbidden("poddisruptionbudget", name, "DisruptedPods map too big - too many evictions not "
                        "confirmed by PDB controller", "policy")
    if allowed == 0:
        raise too_many_requests(VIOLATION, f"The disruption budget {name} needs {status.get('desiredHealthy', 0)} "
                                f"healthy pods and has {status.get('currentHealthy', 0)} currently", 0)
    out = clone(pdb)
    st = out.setdefault("status", {})
    st["disruptionsAllowed"] = allowed - 1
    if allowed - 1 == 0:
        disruption.set_condition(st, rfc3339(now))
    st.setdefault("disruptedPods", {})[pod_name] = rfc3339(now)
    return out


async def check_budget(reg: Registry, pod: Obj, now: float, dry_run: bool) -> None:
    """Charge the pod's budget for its eviction, or raise why it may not be evicted."""
    if can_ignore_pdb(pod):
        return
    md = pod["metadata"]
    ns, name = md["namespace"], md["name"]
    for _ in range(reg.config.patch_retries):
        listed = await reg.store.list(storage.prefix(PDBS, ns))
        kvs = {kv.key: kv for kv in listed.items}
        pdbs = matching([storage.from_kv(PDBS, kv) for kv in listed.items], pod)
        if not pdbs:
            return
        if len(pdbs) > 1:
            raise internal(MORE_THAN_ONE)
        pdb = pdbs[0]
        status = pdb.get("status") or {}
        if not is_ready(pod):
            if (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
                return
            desired = int(status.get("desiredHealthy") or 0)
            if int(status.get("currentHealthy") or 0) >= desired > 0:
                return
        charged = charge(pdb, name, now)
        if dry_run:
            return
        kv = kvs[storage.key(PDBS, ns, pdb["metadata"]["name"])]
        try:
            await reg.store.update(kv.key, storage.encode(PDBS, charged), kv.mod_revision)
            return
        except (store_errors.Conflict, store_errors.NotFound):
            continue
    raise conflict("poddisruptionbudgets", name, "policy")
