"""Taint/toleration matching (v1.Toleration.ToleratesTaint), table-driven: key, effect,
operator and value rules, empty fields as wildcards, and the untolerated-taints filter."""

from __future__ import annotations

import pytest

from k8py.api.taints import (
    TAINT_EFFECT_NO_EXECUTE,
    TAINT_EFFECT_NO_SCHEDULE,
    TAINT_EFFECT_PREFER_NO_SCHEDULE,
    TAINT_NODE_NOT_READY,
    TAINT_NODE_UNREACHABLE,
    tolerated,
    tolerates,
    untolerated_taints,
)
from k8py.api.types import Obj

GPU = {"key": "dedicated", "value": "gpu", "effect": TAINT_EFFECT_NO_SCHEDULE}
UNREACHABLE = {"key": TAINT_NODE_UNREACHABLE, "effect": TAINT_EFFECT_NO_EXECUTE}

TOLERATES_CASES: list[tuple[str, Obj, Obj, bool]] = [
    ("Equal, same key, value and effect", {"key": "dedicated", "operator": "Equal", "value": "gpu",
                                           "effect": TAINT_EFFECT_NO_SCHEDULE}, GPU, True),
    ("operator defaults to Equal", {"key": "dedicated", "value": "gpu"}, GPU, True),
    ("Equal, other value", {"key": "dedicated", "value": "cpu"}, GPU, False),
    ("Equal, no value vs a value", {"key": "dedicated"}, GPU, False),
    ("Equal, no value vs no value", {"key": TAINT_NODE_UNREACHABLE}, UNREACHABLE, True),
    ("Exists ignores the value", {"key": "dedicated", "operator": "Exists"}, GPU, True),
    ("other key", {"key": "other", "operator": "Exists"}, GPU, False),
    ("empty key with Exists tolerates every key", {"operator": "Exists"}, GPU, True),
    ("empty key, Exists, right effect", {"operator": "Exists", "effect": TAINT_EFFECT_NO_EXECUTE}, UNREACHABLE, True),
    ("empty key, Exists, other effect", {"operator": "Exists", "effect": TAINT_EFFECT_NO_SCHEDULE}, UNREACHABLE, False),
    ("other effect", {"key": "dedicated", "operator": "Exists", "effect": TAINT_EFFECT_NO_EXECUTE}, GPU, False),
    ("empty effect matches every effect", {"key": TAINT_NODE_UNREACHABLE, "operator": "Exists"}, UNREACHABLE, True),
    ("PreferNoSchedule toleration vs NoSchedule taint",
     {"key": "dedicated", "operator": "Exists", "effect": TAINT_EFFECT_PREFER_NO_SCHEDULE}, GPU, False),
    ("unknown operator tolerates nothing", {"key": "dedicated", "operator": "In", "value": "gpu"}, GPU, False),
    ("tolerationSeconds does not change matching",
     {"key": TAINT_NODE_UNREACHABLE, "operator": "Exists", "effect": TAINT_EFFECT_NO_EXECUTE,
      "tolerationSeconds": 300}, UNREACHABLE, True),
]


@pytest.mark.parametrize("name,toleration,taint,expected", TOLERATES_CASES, ids=[c[0] for c in TOLERATES_CASES])
def test_tolerates(name: str, toleration: Obj, taint: Obj, expected: bool) -> None:
    assert tolerates(toleration, taint) is expected


TOLERATED_CASES: list[tuple[str, list[Obj], Obj, bool]] = [
    ("no tolerations", [], GPU, False),
    ("one of several matches", [{"key": "other", "operator": "Exists"}, {"key": "dedicated", "value": "gpu"}],
     GPU, True),
    ("none matches", [{"key": "other", "operator": "Exists"}, {"key": "dedicated", "value": "cpu"}], GPU, False),
]


@pytest.mark.parametrize("name,tolerations,taint,expected", TOLERATED_CASES, ids=[c[0] for c in TOLERATED_CASES])
def test_tolerated(name: str, tolerations: list[Obj], taint: Obj, expected: bool) -> None:
    assert tolerated(tolerations, taint) is expected


NOT_READY = {"key": TAINT_NODE_NOT_READY, "effect": TAINT_EFFECT_NO_EXECUTE}
SOFT = {"key": "x", "effect": TAINT_EFFECT_PREFER_NO_SCHEDULE}
UNTOLERATED_CASES: list[tuple[str, list[Obj], list[Obj], tuple[str, ...], list[Obj]]] = [
    ("no taints", [], [], (TAINT_EFFECT_NO_SCHEDULE,), []),
    ("only the asked effects", [GPU, UNREACHABLE, SOFT], [], (TAINT_EFFECT_NO_EXECUTE,), [UNREACHABLE]),
    ("several effects, in order", [GPU, UNREACHABLE, SOFT], [],
     (TAINT_EFFECT_NO_SCHEDULE, TAINT_EFFECT_NO_EXECUTE), [GPU, UNREACHABLE]),
    ("tolerated ones are left out", [UNREACHABLE, NOT_READY],
     [{"key": TAINT_NODE_UNREACHABLE, "operator": "Exists", "effect": TAINT_EFFECT_NO_EXECUTE}],
     (TAINT_EFFECT_NO_EXECUTE,), [NOT_READY]),
    ("tolerate everything", [GPU, UNREACHABLE], [{"operator": "Exists"}],
     (TAINT_EFFECT_NO_SCHEDULE, TAINT_EFFECT_NO_EXECUTE), []),
]


@pytest.mark.parametrize("name,taints,tolerations,effects,expected", UNTOLERATED_CASES,
                         ids=[c[0] for c in UNTOLERATED_CASES])
def test_untolerated_taints(name: str, taints: list[Obj], tolerations: list[Obj], effects: tuple[str, ...],
                            expected: list[Obj]) -> None:
    assert untolerated_taints(taints, iter(tolerations), effects) == expected
