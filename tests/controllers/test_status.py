"""controllers.status: write_status writes the status subresource, and answers None for
an object gone (and, if asked, for a stale one); non_empty drops zero fields."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from k8py.client.errors import ApiError
from k8py.controllers.status import EMPTY, non_empty, write_status

from ctrl_helpers import Cluster

RS: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                      "metadata": {"name": "web", "namespace": "default"},
                      "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                               "template": {"metadata": {"labels": {"app": "web"}},
                                            "spec": {"containers": [{"name": "c", "image": "x"}]}}}}


@pytest.mark.parametrize("state, ignore_conflict, outcome", [
    ("current", False, "written"),
    ("deleted", False, None),
    ("stale", False, "conflict"),
    ("stale", True, None),
])
async def test_write_status(cluster: Cluster, state: str, ignore_conflict: bool, outcome: str | None) -> None:
    c = cluster
    rs = await c.client.create("replicasets", RS)
    before = copy.deepcopy(rs)
    if state == "deleted":
        await c.client.delete("replicasets", "web", "default")
    if state == "stale":
        await c.client.patch("replicasets", "web", {"metadata": {"labels": {"x": "y"}}}, "default")
    if outcome == "conflict":
        with pytest.raises(ApiError) as e:
            await write_status(c.client, "replicasets", rs, {"replicas": 3}, ignore_conflict=ignore_conflict)
        assert e.value.conflict
        return
    got = await write_status(c.client, "replicasets", rs, {"replicas": 3}, ignore_conflict=ignore_conflict)
    assert rs == before  # not mutated
    if outcome is None:
        assert got is None
        return
    assert got is not None and got["status"]["replicas"] == 3
    assert (await c.client.get("replicasets", "web", "default"))["status"]["replicas"] == 3


@pytest.mark.parametrize("status, empty, expected", [
    ({"a": 0, "b": None, "c": [], "d": {}, "e": "", "f": 1}, EMPTY, {"e": "", "f": 1}),
    ({"a": 0, "e": "", "f": "x"}, (*EMPTY, ""), {"f": "x"}),
    ({}, EMPTY, {}),
])
def test_non_empty(status: dict[str, Any], empty: tuple[Any, ...], expected: dict[str, Any]) -> None:
    assert non_empty(status, empty) == expected
