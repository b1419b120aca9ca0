"""refmanager.resolve_controller_ref: the cached owner whose kind, name and uid the
controllerRef names; refmanager.matching_owners: the owners whose selector matches an
orphan; refmanager.claim: adopt matching orphans, keep matching owned
objects, release owned ones that stopped matching, never touch another owner's objects
(ClaimObject's rules)."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.api.selectors import label_selector_from_dict
from k8py.controllers.controllerutil import controller_ref, new_controller_ref
from k8py.controllers.indexes import BY_NAMESPACE
from k8py.controllers.refmanager import claim, matching_owners, resolve_controller_ref, selector_match

from ctrl_helpers import Cluster

OWNER = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
         "metadata": {"name": "web", "namespace": "default", "uid": "owner-uid"}}
OTHER = {"metadata": {"name": "other", "uid": "other-uid"}}


class FakeOwners:
    """An owner cache holding the given owners (OWNER by default)."""

    def __init__(self, *owners: dict[str, Any]) -> None:
        self.owners = list(owners) or [OWNER]

    def get(self, namespace: str | None, name: str) -> dict[str, Any] | None:
        return next((o for o in self.owners
                     if (o["metadata"].get("namespace"), o["metadata"]["name"]) == (namespace, name)), None)

    def by_index(self, name: str, value: str) -> list[dict[str, Any]]:
        assert name == BY_NAMESPACE
        return [o for o in self.owners if o["metadata"].get("namespace") == value]


def owner(name: str, selector: Any, namespace: str = "default") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "uid": name}, "spec": {"selector": selector}}


@pytest.mark.parametrize("labels, namespace, expected", [
    ({"app": "web"}, "default", ["web", "all-web"]),
    ({"app": "db"}, "default", ["db"]),
    ({"app": "web"}, "other", ["elsewhere"]),
    ({}, "default", []),
])
def test_matching_owners(labels: dict[str, str], namespace: str, expected: list[str]) -> None:
    owners = FakeOwners(
        owner("web", {"matchLabels": {"app": "web"}}),
        owner("db", {"matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]}),
        owner("all-web", {"matchExpressions": [{"key": "app", "operator": "Exists"}],
                          "matchLabels": {"app": "web"}}),
        owner("empty", {}),                                                      # matches nothing
        owner("invalid", {"matchExpressions": [{"key": "app", "operator": "Near"}]}),  # matches nothing
        owner("elsewhere", {"matchLabels": {"app": "web"}}, namespace="other"),
    )
    pod = {"metadata": {"name": "p", "namespace": namespace, "labels": labels}}
    assert [o["metadata"]["name"] for o in matching_owners(owners, pod)] == expected


@pytest.mark.parametrize("refs, namespace, resolved", [
    ([new_controller_ref(OWNER, "apps/v1", "ReplicaSet")], "default", True),
    ([], "default", False),                                                          # no controllerRef
    ([{**new_controller_ref(OWNER, "apps/v1", "ReplicaSet"), "controller": False}], "default", False),
    ([new_controller_ref(OWNER, "apps/v1", "DaemonSet")], "default", False),         # another kind
    ([{**new_controller_ref(OWNER, "apps/v1", "ReplicaSet"), "uid": "x"}], "default", False),  # a namesake
    ([{**new_controller_ref(OWNER, "apps/v1", "ReplicaSet"), "name": "db"}], "default", False),  # not cached
    ([new_controller_ref(OWNER, "apps/v1", "ReplicaSet")], "other", False),          # another namespace
])
def test_resolve_controller_ref(refs: list[dict[str, Any]], namespace: str, resolved: bool) -> None:
    pod = {"metadata": {"name": "p", "namespace": namespace, "ownerReferences": refs}}
    assert resolve_controller_ref(FakeOwners(), "ReplicaSet", pod) == (OWNER if resolved else None)


def deleting(obj: dict[str, Any]) -> dict[str, Any]:
    return {**obj, "metadata": {**obj["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}


@pytest.mark.parametrize("app, owner, owner_deleting, claimed, controller_after", [
    ("web", None, False, True, "owner-uid"),         # a matching orphan is adopted
    ("db", None, False, False, None),                # a foreign orphan stays an orphan
    ("web", None, True, False, None),                # an owner being deleted adopts nothing
    ("web", "owner-uid", False, True, "owner-uid"),  # owned and matching: kept
    ("db", "owner-uid", False, False, None),         # owned, no longer matching: released
    ("db", "owner-uid", True, False, "owner-uid"),   # ... unless the owner is being deleted
    ("web", "other-uid", False, False, "other-uid"),  # another owner's object is left alone
])
async def test_claim(cluster: Cluster, app: str, owner: str | None, owner_deleting: bool, claimed: bool,
                     controller_after: str | None) -> None:
    c = cluster
    md: dict[str, Any] = {"name": "p", "namespace": "default", "labels": {"app": app}}
    if owner is not None:
        md["ownerReferences"] = [new_controller_ref(OWNER if owner == "owner-uid" else OTHER, "apps/v1",
                                                    "ReplicaSet")]
    pod = await c.client.create("pods", {"metadata": md, "spec": {"containers": [{"name": "c", "image": "x"}]}})
    rs = deleting(OWNER) if owner_deleting else OWNER
    match = selector_match(label_selector_from_dict({"matchLabels": {"app": "web"}}))
    got = await claim(c.client, "pods", rs, [pod], match, new_controller_ref(OWNER, "apps/v1", "ReplicaSet"))
    assert [p["metadata"]["name"] for p in got] == (["p"] if claimed else [])
    ref = controller_ref(await c.client.get("pods", "p", "default"))
    assert (ref or {}).get("uid") == controller_after


async def test_an_empty_selector_matches_nothing() -> None:
    assert not selector_match(label_selector_from_dict({}))({"metadata": {"labels": {"app": "web"}}})
