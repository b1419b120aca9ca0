"""Label, field and node selectors parse and match as Kubernetes' do."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.api.errors import SelectorError
from k8py.api.selectors import (
    field_value,
    label_selector_from_dict,
    node_selector_matches,
    node_selector_term_matches,
    parse_field_selector,
    parse_label_selector,
)

WEB = {"app": "web", "tier": "front", "env": "prod", "gen": "5"}


@pytest.mark.parametrize(
    "selector,labels,expected",
    [
        ("", WEB, True),
        ("", None, True),
        ("app=web", WEB, True),
        ("app==web", WEB, True),
        ("app=db", WEB, False),
        ("app!=db", WEB, True),
        ("app!=web", WEB, False),
        ("missing!=x", WEB, True),
        ("app=web,tier=front", WEB, True),
        ("app=web,tier=back", WEB, False),
        ("env in (prod,staging)", WEB, True),
        ("env in (dev, staging)", WEB, False),
        ("env notin (dev)", WEB, True),
        ("env notin (prod)", WEB, False),
        ("missing notin (x)", WEB, True),
        ("missing in (x)", WEB, False),
        ("app", WEB, True),
        ("missing", WEB, False),
        ("!missing", WEB, True),
        ("!app", WEB, False),
        ("gen>3", WEB, True),
        ("gen<3", WEB, False),
        ("app>3", WEB, False),
        ("app=", {"app": ""}, True),
        ("app=", WEB, False),
        ("  app = web , tier in ( front ) ", WEB, True),
        ("example.com/role=x", {"example.com/role": "x"}, True),
        ("app=web", None, False),
        ("!app", None, True),
    ],
)
def test_label_selector_matches(selector: str, labels: dict[str, str] | None, expected: bool) -> None:
    assert parse_label_selector(selector).matches(labels) is expected


@pytest.mark.parametrize(
    "selector,canonical",
    [
        ("tier=front,app=web", "app=web,tier=front"),
        ("env in (staging,prod)", "env in (prod,staging)"),
        ("env notin(b,a)", "env notin (a,b)"),
        ("!x,a", "a,!x"),
        ("a==b", "a==b"),
        ("a != b", "a!=b"),
        ("gen>3", "gen>3"),
        ("", ""),
    ],
)
def test_label_selector_canonical_string(selector: str, canonical: str) -> None:
    parsed = parse_label_selector(selector)
    assert str(parsed) == canonical
    assert str(parse_label_selector(canonical)) == canonical


@pytest.mark.parametrize(
    "selector",
    ["app=web,", "=web", "app in", "app in (a", "app in ()", "app=a b", "!app=x", "app>x", "app=web)",
     "-bad=x", "app=-bad-", "a/b/c=x", "Upper.Case/x=y", "app in (a)b", ","],
)
def test_label_selector_errors(selector: str) -> None:
    with pytest.raises(SelectorError) as e:
        parse_label_selector(selector)
    assert isinstance(e.value, ValueError)
    assert str(e.value)


def test_empty_and_nothing() -> None:
    assert parse_label_selector("").empty
    assert label_selector_from_dict({}).empty
    assert label_selector_from_dict({}).matches({"a": "b"})
    nothing = label_selector_from_dict(None)
    assert not nothing.empty
    assert not nothing.matches({})
    assert not nothing.matches(WEB)


@pytest.mark.parametrize(
    "selector,labels,expected,canonical",
    [
        ({"matchLabels": {"app": "web"}}, WEB, True, "app=web"),
        ({"matchLabels": {"app": "db"}}, WEB, False, "app=db"),
        ({"matchLabels": {"tier": "front", "app": "web"}}, WEB, True, "app=web,tier=front"),
        ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "qa"]}]}, WEB, True,
         "env in (prod,qa)"),
        ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, WEB, False,
         "env notin (prod)"),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, WEB, True, "app"),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, WEB, False, "!app"),
        ({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "gone", "operator": "DoesNotExist"}]}, WEB, True,
         "app=web,!gone"),
        ({"matchLabels": {}, "matchExpressions": []}, WEB, True, ""),
    ],
)
def test_label_selector_from_dict(selector: dict[str, Any], labels: dict[str, str], expected: bool,
                                  canonical: str) -> None:
    sel = label_selector_from_dict(selector)
    assert sel.matches(labels) is expected
    assert str(sel) == canonical
    assert parse_label_selector(canonical).matches(labels) is expected


@pytest.mark.parametrize(
    "selector",
    [
        {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]},
        {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
        {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
        {"matchLabels": {"a": "not valid"}},
        {"matchLabels": {"": "x"}},
    ],
)
def test_label_selector_from_dict_errors(selector: dict[str, Any]) -> None:
    with pytest.raises(SelectorError):
        label_selector_from_dict(selector)


POD = {
    "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"}},
    "spec": {"nodeName": "node-a", "hostNetwork": False, "priority": 0},
    "status": {"phase": "Running"},
}
EVENT = {"type": "Warning", "involvedObject": {"kind": "Pod", "name": "web-1"}, "metadata": {"name": "e1"}}


@pytest.mark.parametrize(
    "obj,path,value",
    [
        (POD, "metadata.name", "web-1"),
        (POD, "metadata.namespace", "default"),
        (POD, "spec.nodeName", "node-a"),
        (POD, "status.phase", "Running"),
        (POD, "spec.hostNetwork", "false"),
        (POD, "spec.priority", "0"),
        (POD, "spec.missing", ""),
        (POD, "metadata.name.deeper", ""),
        (EVENT, "type", "Warning"),
        (EVENT, "involvedObject.name", "web-1"),
        ({"spec": {"nodeName": None}}, "spec.nodeName", ""),
    ],
)
def test_field_value(obj: dict[str, Any], path: str, value: str) -> None:
    assert field_value(obj, path) == value


@pytest.mark.parametrize(
    "selector,obj,expected",
    [
        ("", POD, True),
        ("metadata.name=web-1", POD, True),
        ("metadata.name==web-1", POD, True),
        ("metadata.name=web-2", POD, False),
        ("metadata.name!=web-2", POD, True),
        ("spec.nodeName=node-a,status.phase=Running", POD, True),
        ("spec.nodeName=node-a,status.phase!=Running", POD, False),
        ("spec.nodeName=", POD, False),
        ("spec.nodeName=", {"spec": {}}, True),
        ("status.phase!=Succeeded,status.phase!=Failed", POD, True),
        ("involvedObject.name=web-1,type=Warning", EVENT, True),
        ("metadata.name=a\\,b", {"metadata": {"name": "a,b"}}, True),
    ],
)
def test_field_selector_matches(selector: str, obj: dict[str, Any], expected: bool) -> None:
    assert parse_field_selector(selector).matches(obj) is expected


def test_field_selector_requirements_and_string() -> None:
    sel = parse_field_selector("metadata.name==x,spec.nodeName!=,status.phase=Running")
    assert sel.requirements == [("metadata.name", "=", "x"), ("spec.nodeName", "!=", ""),
                                ("status.phase", "=", "Running")]
    assert str(sel) == "metadata.name=x,spec.nodeName!=,status.phase=Running"
    assert sel.value_for("metadata.name") == "x"
    assert sel.value_for("spec.nodeName") is None
    assert parse_field_selector("").empty


@pytest.mark.parametrize("selector", ["metadata.name", "=x", "a=b=c", "a=b\\q"])
def test_field_selector_errors(selector: str) -> None:
    with pytest.raises(SelectorError):
        parse_field_selector(selector)


NODE = {"metadata": {"name": "node-a", "labels": {"zone": "z1", "disk": "ssd", "cores": "8"}}}


@pytest.mark.parametrize(
    "term,expected",
    [
        ({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1", "z2"]}]}, True),
        ({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]}, False),
        ({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["z2"]}]}, True),
        ({"matchExpressions": [{"key": "gpu", "operator": "NotIn", "values": ["x"]}]}, True),
        ({"matchExpressions": [{"key": "disk", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}, False),
        ({"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}, True),
        ({"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]}, True),
        ({"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["8"]}]}, False),
        ({"matchExpressions": [{"key": "cores", "operator": "Lt", "values": ["16"]}]}, True),
        ({"matchExpressions": [{"key": "zone", "operator": "Lt", "values": ["16"]}]}, False),
        ({"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["x"]}]}, False),
        ({"matchExpressions": [{"key": "zone", "operator": "Bogus", "values": ["z1"]}]}, False),
        ({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]},
                               {"key": "disk", "operator": "In", "values": ["hdd"]}]}, False),
        ({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-a"]}]}, True),
        ({"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["node-a"]}]}, False),
        ({"matchFields": [{"key": "metadata.uid", "operator": "In", "values": ["node-a"]}]}, False),
        ({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}],
          "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-b"]}]}, False),
        ({}, False),
        ({"matchExpressions": []}, False),
    ],
)
def test_node_selector_term(term: dict[str, Any], expected: bool) -> None:
    assert node_selector_term_matches(term, NODE) is expected


def test_node_selector_terms_are_ored() -> None:
    miss = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z9"]}]}
    hit = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-a"]}]}
    assert node_selector_matches({"nodeSelectorTerms": [miss, hit]}, NODE)
    assert not node_selector_matches({"nodeSelectorTerms": [miss]}, NODE)
    assert not node_selector_matches({"nodeSelectorTerms": []}, NODE)
    assert node_selector_matches(None, NODE)
