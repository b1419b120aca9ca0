"""ClusterRole aggregation: the bootstrap admin/edit/view roles fill in from the
aggregate-to-* labelled roles, and a ClusterRole labelled aggregate-to-view extends view
(the example of Kubernetes' RBAC documentation)."""

from __future__ import annotations

from typing import Any

from k8py.controllers.clusterroleaggregation import ClusterRoleAggregationController, aggregate

from ctrl_helpers import Cluster

Obj = dict[str, Any]
CRONTAB = {"apiGroups": ["stable.example.com"], "resources": ["crontabs"], "verbs": ["get", "list", "watch"]}


async def rules_of(c: Cluster, name: str) -> list[Obj]:
    return (await c.client.get("clusterroles", name)).get("rules") or []


async def test_bootstrap_roles_aggregate_and_a_labelled_role_extends_view(cluster: Cluster) -> None:
    c = cluster
    await c.start(ClusterRoleAggregationController(c.client, c.factory, c.clock))

    async def view_filled() -> bool:
        return any("pods" in r.get("resources", []) for r in await rules_of(c, "view"))
    await c.until(view_filled, "view aggregated")
    await c.client.create("clusterroles", {
        "metadata": {"name": "aggregate-cron-tabs-view",
                     "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
        "rules": [CRONTAB]})

    async def has_crontabs(name: str) -> bool:
        return CRONTAB in await rules_of(c, name)
    for role in ("view", "edit", "admin"):  # view aggregates into edit, edit into admin
        await c.until(lambda role=role: has_crontabs(role), f"{role} has the crontab rule")
    edit = await rules_of(c, "edit")
    assert any("pods/exec" in r.get("resources", []) for r in edit)
    await c.client.delete("clusterroles", "aggregate-cron-tabs-view")

    async def gone() -> bool:
        return not await has_crontabs("view")
    await c.until(gone, "the crontab rule leaves view")


def test_aggregate_is_ordered_by_name_without_repeats() -> None:
    sel = {"clusterRoleSelectors": [{"matchLabels": {"a": "1"}}]}
    me = {"metadata": {"name": "me", "labels": {"a": "1"}}, "aggregationRule": sel, "rules": [{"x": 0}]}
    b = {"metadata": {"name": "b", "labels": {"a": "1"}}, "rules": [{"x": 2}, {"x": 1}]}
    a = {"metadata": {"name": "a", "labels": {"a": "1"}}, "rules": [{"x": 1}]}
    other = {"metadata": {"name": "c", "labels": {"a": "2"}}, "rules": [{"x": 3}]}
    assert aggregate(me, [me, b, a, other]) == [{"x": 1}, {"x": 2}]
