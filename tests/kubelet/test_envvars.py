"""Container environment: $(VAR) expansion, valueFrom sources, envFrom with prefixes."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from k8py.kubelet.envvars import build_env, expand
from k8py.kubelet.errors import ContainerConfigError


@pytest.mark.parametrize("s, env, want", [
    ("$(A)-$(B)", {"A": "1", "B": "2"}, "1-2"),
    ("$(MISSING)", {}, "$(MISSING)"),
    ("$$(A)", {"A": "1"}, "$(A)"),
    ("cost $5", {}, "cost $5"),
    ("$(A", {"A": "1"}, "$(A"),
    ("x$(A)y", {"A": ""}, "xy"),
])
def test_expand(s: str, env: dict[str, str], want: str) -> None:
    assert expand(s, env) == want


POD = {"metadata": {"name": "web", "namespace": "prod", "uid": "u-1", "labels": {"app": "web", "tier": "fe"},
                    "annotations": {"a": "b"}},
       "spec": {"nodeName": "n1", "serviceAccountName": "sa"}}
OBJS: dict[tuple[str, str, str], Any] = {
    ("secrets", "prod", "db"): {"data": {"password": base64.b64encode(b"pw").decode(),
                                         "user": base64.b64encode(b"u").decode()}},
    ("configmaps", "prod", "cfg"): {"data": {"MODE": "fast", "bad-name!": "x", "level": "3"}},
}


async def lookup(kind: str, ns: str, name: str) -> Any:
    return OBJS.get((kind, ns, name))


async def test_all_sources_in_kubernetes_order() -> None:
    c = {"name": "c", "resources": {"limits": {"memory": "128Mi", "cpu": "500m"}},
         "envFrom": [{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "db"}, "prefix": "DB_"}],
         "env": [
             {"name": "MODE", "value": "override-$(MODE)"},
             {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
             {"name": "LVL", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "level"}}},
             {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}}},
             {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
             {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
             {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
             {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
             {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
             {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
             {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
             {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
             {"name": "CPU1", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
         ]}
    env = dict(await build_env(POD, c, lookup, pod_ip="10.42.0.5", host_ip="10.42.0.1"))
    assert env == {"MODE": "override-fast", "level": "3", "DB_password": "pw", "DB_user": "u", "PW": "pw",
                   "LVL": "3", "NAME": "web", "NS": "prod", "APP": "web", "NODE": "n1", "SA": "sa",
                   "IP": "10.42.0.5", "MEM": "128", "CPU": "500", "CPU1": "1"}
    assert "OPT" not in env and "bad-name!" not in env


@pytest.mark.parametrize("env, message", [
    ([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}], 'secret "nope" not found'),
    ([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "db", "key": "k"}}}],
     "couldn't find key k in Secret prod/db"),
    ([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}], 'configmap "nope" not found'),
])
async def test_missing_references(env: list[dict], message: str) -> None:
    with pytest.raises(ContainerConfigError) as e:
        await build_env(POD, {"name": "c", "env": env}, lookup)
    assert e.value.message == message
    assert e.value.reason == "CreateContainerConfigError"
