"""Which webhooks a request goes to: rules (operations, groups, versions, resources with
subresources and '*', scope), matchPolicy, namespace and object selectors (table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.apiserver.webhookmatch import Attributes, matches, rule_matches

POD = {"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}}}


def attrs(op: str = "CREATE", group: str = "", version: str = "v1", resource: str = "pods", sub: str = "",
          namespaced: bool = True, obj: Any = POD, old: Any = None) -> Attributes:
    return Attributes(group=group, version=version, resource=resource, subresource=sub, kind="Pod",
                      operation=op, namespace="ns" if namespaced else "", name="p", namespaced=namespaced,
                      obj=obj, old=old)


def rule(ops: Any = ("CREATE",), groups: Any = ("",), versions: Any = ("v1",), res: Any = ("pods",),
         scope: str = "*") -> dict[str, Any]:
    return {"operations": list(ops), "apiGroups": list(groups), "apiVersions": list(versions),
            "resources": list(res), "scope": scope}


@pytest.mark.parametrize(("r", "a", "want"), [
    (rule(), attrs(), True),
    (rule(), attrs(op="UPDATE"), False),
    (rule(ops=("*",)), attrs(op="DELETE"), True),
    (rule(ops=("CREATE", "UPDATE")), attrs(op="UPDATE"), True),
    (rule(groups=("apps",)), attrs(), False),
    (rule(groups=("*",)), attrs(group="apps", resource="pods"), True),
    (rule(versions=("v2",)), attrs(), False),
    (rule(versions=("*",)), attrs(), True),
    (rule(res=("deployments",)), attrs(), False),
    (rule(res=("*",)), attrs(), True),
    (rule(res=("*",)), attrs(sub="status"), False),  # '*' is every resource, no subresource
    (rule(res=("pods",)), attrs(sub="status"), False),
    (rule(res=("pods/status",)), attrs(sub="status"), True),
    (rule(res=("pods/status",)), attrs(), False),
    (rule(res=("pods/*",)), attrs(sub="status"), True),
    (rule(res=("pods/*",)), attrs(), False),
    (rule(res=("*/status",)), attrs(sub="status"), True),
    (rule(res=("*/*",)), attrs(sub="exec"), True),
    (rule(res=("*/*",)), attrs(), True),
    (rule(scope="Namespaced"), attrs(), True),
    (rule(scope="Cluster"), attrs(), False),
    (rule(scope="Cluster", res=("nodes",)), attrs(resource="nodes", namespaced=False), True),
])
def test_rules(r: dict[str, Any], a: Attributes, want: bool) -> None:
    assert rule_matches(r, a) is want


def hook(**over: Any) -> dict[str, Any]:
    wh: dict[str, Any] = {"name": "x.example.com", "rules": [rule()], "matchPolicy": "Equivalent",
                          "namespaceSelector": {}, "objectSelector": {}}
    wh.update(over)
    return wh


HPA_V1 = rule(groups=("autoscaling",), versions=("v1",), res=("horizontalpodautoscalers",))
HPA_V2 = attrs(group="autoscaling", version="v2", resource="horizontalpodautoscalers")


@pytest.mark.parametrize(("wh", "a", "ns_labels", "want"), [
    (hook(), attrs(), {}, True),
    (hook(objectSelector={"matchLabels": {"app": "web"}}), attrs(), {}, True),
    (hook(objectSelector={"matchLabels": {"app": "db"}}), attrs(), {}, False),
    # UPDATE: the old object's labels count too
    (hook(objectSelector={"matchLabels": {"app": "db"}}, rules=[rule(ops=("UPDATE",))]),
     attrs(op="UPDATE", old={"metadata": {"labels": {"app": "db"}}}), {}, True),
    (hook(namespaceSelector={"matchLabels": {"team": "a"}}), attrs(), {"team": "a"}, True),
    (hook(namespaceSelector={"matchLabels": {"team": "a"}}), attrs(), {"team": "b"}, False),
    (hook(namespaceSelector={"matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]}),
     attrs(), {"skip": "1"}, False),
    # cluster-scoped objects ignore namespaceSelector; a Namespace matches on its own labels
    (hook(namespaceSelector={"matchLabels": {"team": "a"}}, rules=[rule(res=("nodes",))]),
     attrs(resource="nodes", namespaced=False), None, True),
    (hook(namespaceSelector={"matchLabels": {"team": "a"}}, rules=[rule(res=("namespaces",))]),
     attrs(resource="namespaces", namespaced=False, obj={"metadata": {"labels": {"team": "a"}}}), None, True),
    # matchPolicy: Equivalent matches another served version of the resource, Exact does not
    (hook(rules=[HPA_V1]), HPA_V2, {}, True),
    (hook(rules=[HPA_V1], matchPolicy="Exact"), HPA_V2, {}, False),
])
def test_selectors_and_policy(wh: dict[str, Any], a: Attributes, ns_labels: Any, want: bool) -> None:
    assert matches(wh, a, ns_labels) is want
