"""policy/v1 PodDisruptionBudgets and the Eviction API that honours them; PriorityClasses
(the system ones built in) and Priority admission; RuntimeClass admission."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.client.errors import ApiError

from apiserver_helpers import call, pod

VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
EVICT = "/api/v1/namespaces/default/pods/{}/eviction"


def pdb(name: str, status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"selector": {"matchLabels": {"app": "web"}}}
    s.update(spec)
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": "default"}, "spec": s, "status": status or {}}


async def running_pod(client: Client, name: str, ready: bool = True, app: str = "web") -> None:
    p = pod(name, nodeName="n1")
    p["metadata"]["labels"] = {"app": app}
    created = await client.create("pods", p)
    created["status"] = {"phase": "Running",
                         "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    await client.update_status("pods", created)


async def budget(client: Client, name: str, allowed: int, current: int = 2, desired: int = 2,
                 **spec: Any) -> None:
    created = await client.create("poddisruptionbudgets", pdb(name, minAvailable=1, **spec))
    created["status"] = {"observedGeneration": created["metadata"]["generation"], "disruptionsAllowed": allowed,
                         "currentHealthy": current, "desiredHealthy": desired, "expectedPods": current}
    await client.update_status("poddisruptionbudgets", created)


async def evict(api: ApiServer, name: str) -> Any:
    return await call(api, "POST", EVICT.format(name), {"apiVersion": "policy/v1", "kind": "Eviction",
                                                        "metadata": {"name": name, "namespace": "default"}})


@pytest.mark.parametrize("spec,field,message", [
    ({"minAvailable": 1, "maxUnavailable": 1}, "spec.minAvailable",
     "minAvailable and maxUnavailable cannot be both set"),
    ({"minAvailable": -1}, "spec.minAvailable", "must be greater than or equal to 0"),
    ({"maxUnavailable": "120%"}, "spec.maxUnavailable", "must not be greater than 100%"),
    ({"maxUnavailable": "half"}, "spec.maxUnavailable", "a valid percent string must be"),
    ({"minAvailable": 1, "unhealthyPodEvictionPolicy": "Sometimes"}, "spec.unhealthyPodEvictionPolicy",
     "Unsupported value"),
])
async def test_pdb_validation(client: Client, spec: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ApiError) as e:
        await client.create("poddisruptionbudgets", pdb("b", **spec))
    assert e.value.status == 422
    causes = e.value.body["details"]["causes"]
    assert any(c["field"] == field and message in c["message"] for c in causes), causes


async def test_eviction_refused_when_budget_spent(api: ApiServer, client: Client) -> None:
    await running_pod(client, "a")
    await budget(client, "b", allowed=0, current=1, desired=1)
    resp = await evict(api, "a")
    assert resp.status == 429
    assert resp.body["reason"] == "TooManyRequests" and resp.body["message"] == VIOLATION
    assert resp.body["details"]["causes"] == [{"reason": "DisruptionBudget",
                                               "message": "The disruption budget b needs 1 healthy pods and has 1 "
                                                          "currently"}]
    assert not (await client.get("pods", "a", "default"))["metadata"].get("deletionTimestamp")


async def test_eviction_charges_the_budget(api: ApiServer, client: Client) -> None:
    await running_pod(client, "a")
    await running_pod(client, "c")
    await budget(client, "b", allowed=1)
    resp = await evict(api, "a")
    assert resp.status == 201 and resp.body["status"] == "Success"
    assert (await client.get("pods", "a", "default"))["metadata"]["deletionTimestamp"]
    st = (await client.get("poddisruptionbudgets", "b", "default"))["status"]
    assert st["disruptionsAllowed"] == 0 and list(st["disruptedPods"]) == ["a"]
    cond = next(c for c in st["conditions"] if c["type"] == "DisruptionAllowed")
    assert (cond["status"], cond["reason"]) == ("False", "InsufficientPods")
    assert (await evict(api, "c")).status == 429


@pytest.mark.parametrize("case,ready,status,spec,code", [
    ("pending pod: no budget charged", None, None, {}, 201),
    ("unready pod, budget met", False, (0, 2, 2), {}, 201),
    ("unready pod, budget not met", False, (0, 1, 2), {}, 429),
    ("unready pod, AlwaysAllow", False, (0, 1, 2), {"unhealthyPodEvictionPolicy": "AlwaysAllow"}, 201),
    ("not observed yet", True, "stale", {}, 429),
    ("other labels", "other", (0, 1, 1), {}, 201),
])
async def test_eviction_cases(api: ApiServer, client: Client, case: str, ready: Any, status: Any,
                              spec: dict[str, Any], code: int) -> None:
    if ready is None:
        p = pod("a")
        p["metadata"]["labels"] = {"app": "web"}
        await client.create("pods", p)
    else:
        await running_pod(client, "a", ready=ready is True, app="other" if ready == "other" else "web")
    if status == "stale":
        await client.create("poddisruptionbudgets", pdb("b", minAvailable=1))
    elif status is not None:
        await budget(client, "b", status[0], status[1], status[2], **spec)
    else:
        await budget(client, "b", 0, 1, 1)
    resp = await evict(api, "a")
    assert resp.status == code, (case, resp.body)
    if code == 429:
        assert resp.body["message"] == VIOLATION


async def test_two_budgets_are_an_internal_error(api: ApiServer, client: Client) -> None:
    await running_pod(client, "a")
    await budget(client, "b1", allowed=1)
    await budget(client, "b2", allowed=1)
    resp = await evict(api, "a")
    assert resp.status == 500
    assert "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support." \
        in resp.body["message"]


async def test_system_priority_classes_are_built_in(client: Client) -> None:
    got = {pc["metadata"]["name"]: pc["value"] for pc in (await client.list("priorityclasses"))["items"]}
    assert got == {"system-cluster-critical": 2000000000, "system-node-critical": 2000001000}


async def test_priority_admission(client: Client) -> None:
    await client.create("priorityclasses", {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                            "metadata": {"name": "high"}, "value": 1000,
                                            "preemptionPolicy": "Never"})
    p = await client.create("pods", pod("hi", priorityClassName="high"))
    assert (p["spec"]["priority"], p["spec"]["preemptionPolicy"]) == (1000, "Never")
    crit = await client.create("pods", pod("crit", priorityClassName="system-node-critical"))
    assert crit["spec"]["priority"] == 2000001000
    plain = await client.create("pods", pod("plain"))
    assert plain["spec"]["priority"] == 0 and "priorityClassName" not in plain["spec"]
    with pytest.raises(ApiError) as e:
        await client.create("pods", pod("lost", priorityClassName="nope"))
    assert e.value.status == 403
    assert e.value.body["message"] == 'pods "lost" is forbidden: no PriorityClass with name nope was found'
    with pytest.raises(ApiError) as e:
        await client.create("pods", pod("odd", priorityClassName="high", priority=5))
    assert e.value.body["message"] == (
        'pods "odd" is forbidden: the integer value of priority (5) must not be provided in pod spec; '
        'priority admission controller computed 1000 from the given PriorityClass name')


async def test_global_default_priority_class(client: Client) -> None:
    def pc(name: str, value: int, **kw: Any) -> dict[str, Any]:
        return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
                "value": value, **kw}
    await client.create("priorityclasses", pc("std", 7, globalDefault=True))
    p = await client.create("pods", pod("p"))
    assert (p["spec"]["priority"], p["spec"]["priorityClassName"]) == (7, "std")
    with pytest.raises(ApiError) as e:
        await client.create("priorityclasses", pc("std2", 8, globalDefault=True))
    assert e.value.status == 403 and "PriorityClass std is already marked as default" in e.value.body["message"]
    await client.create("priorityclasses", pc("std2", 8))
    with pytest.raises(ApiError) as e:
        await client.patch("priorityclasses", "std2", {"globalDefault": True})
    assert e.value.status == 403 and "Only one default can exist" in e.value.body["message"]


@pytest.mark.parametrize("name,value,field,message", [
    ("too-high", 1_000_000_001, "value", "maximum allowed value of a user defined priority is 1000000000"),
    ("system-mine", 5, "metadata.name", "prefix are reserved for system use only"),
])
async def test_priority_class_validation(client: Client, name: str, value: int, field: str, message: str) -> None:
    with pytest.raises(ApiError) as e:
        await client.create("priorityclasses", {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                                "metadata": {"name": name}, "value": value})
    assert e.value.status == 422
    assert any(c["field"] == field and message in c["message"] for c in e.value.body["details"]["causes"])


async def test_runtime_class_admission(client: Client) -> None:
    with pytest.raises(ApiError) as e:
        await client.create("pods", pod("p", runtimeClassName="gvisor"))
    assert e.value.status == 403
    assert e.value.body["message"] == 'pods "p" is forbidden: pod rejected: RuntimeClass "gvisor" not found'
    await client.create("runtimeclasses", {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                                           "metadata": {"name": "runc"}, "handler": "runc",
                                           "overhead": {"podFixed": {"memory": "10Mi"}},
                                           "scheduling": {"nodeSelector": {"rt": "runc"}}})
    p = await client.create("pods", pod("p", runtimeClassName="runc"))
    assert p["spec"]["overhead"] == {"memory": "10Mi"} and p["spec"]["nodeSelector"] == {"rt": "runc"}
    with pytest.raises(ApiError) as e:
        await client.create("runtimeclasses", {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                                               "metadata": {"name": "bad"}, "handler": "Not_A_Label"})
    assert e.value.status == 422
