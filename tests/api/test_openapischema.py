"""A custom resource against its openAPIV3Schema (k8py.api.validation.openapischema) and the
CRD schema checks (apiextensions), table-driven."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from k8py.api.validation import openapischema
from k8py.api.validation.apiextensions import structural_errors
from k8py.api.validation.meta import ErrorList

OBJ: dict[str, Any] = {"type": "object"}


def _root(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"spec": {"type": "object", "properties": props}}}


@pytest.mark.parametrize("prop,value,field,words", [
    ({"type": "integer"}, 1.5, "spec.x", "must be of type integer"),
    ({"type": "integer"}, 2.0, None, ""),  # an integral number is an integer
    ({"x-kubernetes-int-or-string": True}, "50%", None, ""),
    ({"x-kubernetes-int-or-string": True}, True, "spec.x", "integer-or-string"),
    ({"type": "string", "minLength": 3}, "ab", "spec.x", "should be at least 3 chars long"),
    ({"type": "string", "maxLength": 2}, "abc", "spec.x", "Too long: may not be more than 2"),
    ({"type": "number", "minimum": 1, "exclusiveMinimum": True}, 1, "spec.x", "should be greater than 1"),
    ({"type": "integer", "multipleOf": 5}, 7, "spec.x", "should be a multiple of 5"),
    ({"type": "array", "items": {"type": "string"}, "maxItems": 1}, ["a", "b"], "spec.x", "Too many: 2"),
    ({"type": "array", "items": {"type": "integer"}}, [1, "a"], "spec.x[1]", "must be of type integer"),
    ({"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}, ["a", "a"],
     "spec.x[1]", "Duplicate value"),
    ({"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
      "items": {"type": "object", "properties": {"name": {"type": "string"}, "v": {"type": "integer"}}}},
     [{"name": "a", "v": 1}, {"name": "a", "v": 2}], "spec.x[1]", "Duplicate value"),
    ({"type": "object", "additionalProperties": {"type": "integer"}}, {"k": "v"}, "spec.x[k]",
     "must be of type integer"),
    ({"type": "string"}, None, "spec.x", "must be of type string"),
    ({"type": "string", "nullable": True}, None, None, ""),
    ({"type": "object", "x-kubernetes-embedded-resource": True, "x-kubernetes-preserve-unknown-fields": True},
     {"metadata": {"name": "a"}}, "spec.x.apiVersion", "Required value"),
    ({"anyOf": [{"type": "integer"}, {"type": "string"}]}, [1], "spec.x", "must validate at least one schema"),
    ({"type": "integer", "not": {"enum": [3]}}, 3, "spec.x", "must not validate the schema"),
])
def test_validate(prop: dict[str, Any], value: Any, field: str | None, words: str) -> None:
    errs = openapischema.validate({"spec": {"x": value}}, _root(x=prop))
    if field is None:
        assert errs == []
    else:
        assert any(e.field == field and words in e.message for e in errs), errs


def test_prune_keeps_declared_and_preserved_fields() -> None:
    schema = _root(keep={"type": "string"}, free={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                   items={"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
                   m={"type": "object", "additionalProperties": {"type": "object",
                                                                  "properties": {"a": {"type": "string"}}}})
    obj = {"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"}, "top": 1,
           "spec": {"keep": "k", "drop": 1, "free": {"any": {"x": 1}}, "items": [{"a": "1", "b": 2}],
                    "m": {"k": {"a": "1", "z": 0}}}}
    gone = openapischema.prune(obj, schema)
    assert sorted(gone) == ["spec.drop", "spec.items[0].b", "spec.m[k].z", "top"]
    assert obj == {"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"},
                   "spec": {"keep": "k", "free": {"any": {"x": 1}}, "items": [{"a": "1"}], "m": {"k": {"a": "1"}}}}


def test_defaults_fill_unset_fields_at_every_level() -> None:
    schema = _root(r={"type": "integer", "default": 1},
                   n={"type": "object", "default": {}, "properties": {"d": {"type": "string", "default": "x"}}},
                   l={"type": "array", "items": {"type": "object", "properties": {"p": {"type": "integer",
                                                                                        "default": 80}}}})
    obj: dict[str, Any] = {"spec": {"l": [{}, {"p": 1}]}}
    openapischema.default(obj, schema)
    assert obj == {"spec": {"r": 1, "n": {"d": "x"}, "l": [{"p": 80}, {"p": 1}]}}


@pytest.mark.parametrize("schema,field,words", [
    ({"properties": {}}, "s.type", "must not be empty at the root"),
    ({"type": "string"}, "s.type", "must be object at the root"),
    ({"type": "object", "properties": {"a": {"type": "object"}}, "additionalProperties": OBJ},
     "s.additionalProperties", "mutual exclusive"),
    ({"type": "object", "properties": {"a": {"type": "array"}}}, "s.properties[a].items", "must be specified"),
    ({"type": "object", "properties": {"a": {"type": "array", "items": {}}}}, "s.properties[a].items.type",
     "must not be empty for specified array items"),
    ({"type": "object", "properties": {"a": {"type": "object", "x-kubernetes-preserve-unknown-fields": False}}},
     "s.properties[a].x-kubernetes-preserve-unknown-fields", "must be true or undefined"),
])
def test_structural_schema_errors(schema: dict[str, Any], field: str, words: str) -> None:
    v = ErrorList([])
    structural_errors(v, copy.deepcopy(schema), "s")
    assert any(e.field == field and words in e.message for e in v.errs), v.errs


def test_structural_schema_ok() -> None:
    v = ErrorList([])
    structural_errors(v, _root(a={"x-kubernetes-int-or-string": True},
                               b={"type": "object", "x-kubernetes-preserve-unknown-fields": True}), "s")
    assert v.errs == []
