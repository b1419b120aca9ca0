"""controllers.indexes: the namespace, controller-uid and orphan-namespace index values."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.controllers.indexes import (
    controller_uid_index,
    namespace_index,
    orphan_namespace_index,
)

OWNED = [{"kind": "ReplicaSet", "name": "web", "uid": "u1", "controller": True}]
NOT_CONTROLLED = [{"kind": "ReplicaSet", "name": "web", "uid": "u1"}]


@pytest.mark.parametrize("md, by_namespace, by_controller, by_orphan_namespace", [
    ({"namespace": "default", "ownerReferences": OWNED}, ["default"], ["u1"], []),
    ({"namespace": "default"}, ["default"], [], ["default"]),
    ({"namespace": "default", "ownerReferences": NOT_CONTROLLED}, ["default"], [], ["default"]),
    ({}, [""], [], [""]),  # cluster-scoped
])
def test_index_values(md: dict[str, Any], by_namespace: list[str], by_controller: list[str],
                      by_orphan_namespace: list[str]) -> None:
    obj = {"metadata": {"name": "p", **md}}
    assert namespace_index(obj) == by_namespace
    assert controller_uid_index(obj) == by_controller
    assert orphan_namespace_index(obj) == by_orphan_namespace
