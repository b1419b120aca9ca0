"""effective_spec: what a pod being resized counts for the scheduler and ResourceQuota."""

from __future__ import annotations

from typing import Any

from k8py.api.podresources import effective_spec
from k8py.controllers.resourcequota import pod_amounts
from k8py.scheduler.types import PodInfo


def _pod(spec_mem: str, alloc_mem: str, actual_mem: str, pending: str | None = None) -> dict[str, Any]:
    conds = [{"type": "PodResizePending", "status": "True", "reason": pending}] if pending else []
    return {"metadata": {"name": "p", "namespace": "default", "uid": "u"},
            "spec": {"containers": [{"name": "c", "image": "x", "resources": {
                "requests": {"cpu": "100m", "memory": spec_mem}, "limits": {"memory": spec_mem}}}]},
            "status": {"conditions": conds, "containerStatuses": [{
                "name": "c", "allocatedResources": {"cpu": "100m", "memory": alloc_mem},
                "resources": {"requests": {"cpu": "100m", "memory": actual_mem}, "limits": {"memory": actual_mem}}}]}}


def test_a_pending_increase_counts_the_spec() -> None:
    p = _pod("256Mi", "128Mi", "128Mi")
    assert effective_spec(p)["containers"][0]["resources"]["requests"]["memory"] == "256Mi"
    assert PodInfo.from_pod(p).requests.memory == 256 << 20
    assert pod_amounts(p, "requests")["memory"] == 256 << 20


def test_a_decrease_in_progress_counts_what_the_node_still_holds() -> None:
    p = _pod("64Mi", "64Mi", "128Mi")
    assert PodInfo.from_pod(p).requests.memory == 128 << 20
    assert pod_amounts(p, "limits")["memory"] == 128 << 20


def test_an_infeasible_resize_counts_the_allocation_not_the_spec() -> None:
    p = _pod("100Ti", "128Mi", "128Mi", pending="Infeasible")
    assert PodInfo.from_pod(p).requests.memory == 128 << 20
    assert pod_amounts(p, "requests")["memory"] == 128 << 20


def test_a_pod_without_status_is_its_spec() -> None:
    p = _pod("64Mi", "1Gi", "1Gi")
    del p["status"]
    assert effective_spec(p) is p["spec"]
