"""JSON merge patch, JSON patch and strategic merge patch, including the patches kubectl sends."""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

import pytest

from k8py.api import schema
from k8py.api.errors import PatchError
from k8py.api.merge import field_patch_info, json_merge_patch, json_patch, strategic_merge_patch

POD = "io.k8s.api.core.v1.Pod"
DEPLOY = "io.k8s.api.apps.v1.Deployment"
SVC = "io.k8s.api.core.v1.Service"

# ---------------------------------------------------------------- RFC 7386 (examples from its appendix)


@pytest.mark.parametrize(
    "original,patch,result",
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_json_merge_patch_rfc7386(original: Any, patch: Any, result: Any) -> None:
    before = copy.deepcopy(original)
    assert json_merge_patch(original, patch) == result
    assert original == before


# ---------------------------------------------------------------- RFC 6902


@pytest.mark.parametrize(
    "original,ops,result",
    [
        ({"spec": {"replicas": 1}}, [{"op": "replace", "path": "/spec/replicas", "value": 3}],
         {"spec": {"replicas": 3}}),
        ({"metadata": {}}, [{"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}],
         {"metadata": {"labels": {"a": "b"}}}),
        ({"a": [1, 2]}, [{"op": "add", "path": "/a/-", "value": 3}], {"a": [1, 2, 3]}),
        ({"a": [1, 2]}, [{"op": "remove", "path": "/a/0"}], {"a": [2]}),
        ({"a": 1}, [{"op": "test", "path": "/a", "value": 1}, {"op": "move", "from": "/a", "path": "/b"}], {"b": 1}),
        ({"metadata": {"labels": {"app.kubernetes.io/name": "x"}}},
         [{"op": "remove", "path": "/metadata/labels/app.kubernetes.io~1name"}], {"metadata": {"labels": {}}}),
    ],
)
def test_json_patch(original: Any, ops: list[dict[str, Any]], result: Any) -> None:
    before = copy.deepcopy(original)
    assert json_patch(original, ops) == result
    assert original == before


@pytest.mark.parametrize(
    "ops,fragment",
    [
        ([{"op": "test", "path": "/a", "value": 2}], "test"),
        ([{"op": "remove", "path": "/missing"}], ""),
        ([{"op": "replace", "path": "/x/y", "value": 1}], ""),
        ([{"op": "frobnicate", "path": "/a"}], ""),
        ([{"path": "/a"}], "op"),
        ({"op": "add"}, "list"),
    ],
)
def test_json_patch_errors(ops: Any, fragment: str) -> None:
    with pytest.raises(PatchError) as e:
        json_patch({"a": 1}, ops)
    assert fragment in str(e.value)


# ---------------------------------------------------------------- schema metadata


def test_field_patch_info_reads_the_schema() -> None:
    spec = schema.resolve(schema.definitions()["io.k8s.api.core.v1.PodSpec"])
    _, strategy, retain, key, item = field_patch_info(spec, "containers")
    assert (strategy, retain, key) == ("merge", False, "name")
    assert item is not None and "image" in item["properties"]
    _, strategy, retain, key, _ = field_patch_info(spec, "volumes")
    assert (strategy, retain, key) == ("merge", True, "name")
    _, strategy, _, key, _ = field_patch_info(spec, "tolerations")
    assert (strategy, key) == ("", None)
    assert field_patch_info(spec, "noSuchField") == (None, "", False, None, None)


# ---------------------------------------------------------------- strategic merge patch

LIVE_DEPLOY: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}, "finalizers": ["a.io/x", "b.io/y"]},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "nginx",
                        "image": "nginx:1.25",
                        "args": ["-g", "daemon off;"],
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}],
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    },
                    {"name": "sidecar", "image": "busybox", "command": ["sleep", "3600"]},
                ],
                "volumes": [{"name": "data", "emptyDir": {}}],
                "tolerations": [{"key": "k", "operator": "Exists"}],
            },
        },
    },
}


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["spec"]["template"]["spec"]["containers"]  # type: ignore[no-any-return]


def _with(path: Sequence[str | int], value: Any) -> dict[str, Any]:
    """A copy of LIVE_DEPLOY with the value at path replaced (or deleted for ...)."""
    obj = copy.deepcopy(LIVE_DEPLOY)
    cur: Any = obj
    for p in path[:-1]:
        cur = cur[p]
    if value is Ellipsis:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return obj


C = ["spec", "template", "spec", "containers"]
NGINX = C + [0]

KUBECTL_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "change image (kubectl apply)",
        {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
                                        "containers": [{"image": "nginx:1.27", "name": "nginx"}]}}}},
        _with(NGINX + ["image"], "nginx:1.27"),
    ),
    (
        "change replicas",
        {"spec": {"replicas": 5}},
        _with(["spec", "replicas"], 5),
    ),
    (
        "remove a label via null",
        {"metadata": {"labels": {"tier": None}}},
        _with(["metadata", "labels"], {"app": "web"}),
    ),
    (
        "add a label",
        {"metadata": {"labels": {"env": "prod"}}},
        _with(["metadata", "labels"], {"app": "web", "tier": "front", "env": "prod"}),
    ),
    (
        "remove an env var (kubectl apply)",
        {"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
            "containers": [{"$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
                            "env": [{"$patch": "delete", "name": "B"}], "name": "nginx"}]}}}},
        _with(NGINX + ["env"], [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}]),
    ),
    (
        "change one env var value",
        {"spec": {"template": {"spec": {"containers": [{"name": "nginx", "env": [{"name": "B", "value": "20"}]}]}}}},
        _with(NGINX + ["env"],
              [{"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}]),
    ),
    (
        "add an env var at the end (kubectl apply)",
        {"spec": {"template": {"spec": {"containers": [{
            "$setElementOrder/env": [{"name": "A"}, {"name": "B"}, {"name": "C"}, {"name": "D"}],
            "env": [{"name": "D", "value": "4"}], "name": "nginx"}]}}}},
        _with(NGINX + ["env"], [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"},
                                {"name": "D", "value": "4"}]),
    ),
    (
        "insert an env var in the middle (kubectl apply)",
        {"spec": {"template": {"spec": {"containers": [{
            "$setElementOrder/env": [{"name": "A"}, {"name": "X"}, {"name": "B"}, {"name": "C"}],
            "env": [{"name": "X", "value": "x"}], "name": "nginx"}]}}}},
        _with(NGINX + ["env"], [{"name": "A", "value": "1"}, {"name": "X", "value": "x"}, {"name": "B", "value": "2"},
                                {"name": "C", "value": "3"}]),
    ),
    (
        "reorder env vars only",
        {"spec": {"template": {"spec": {"containers": [{
            "$setElementOrder/env": [{"name": "C"}, {"name": "B"}, {"name": "A"}], "name": "nginx"}]}}}},
        _with(NGINX + ["env"], [{"name": "C", "value": "3"}, {"name": "B", "value": "2"}, {"name": "A", "value": "1"}]),
    ),
    (
        "remove a container (kubectl apply)",
        {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "nginx"}],
                                        "containers": [{"$patch": "delete", "name": "sidecar"}]}}}},
        _with(C, [LIVE_DEPLOY["spec"]["template"]["spec"]["containers"][0]]),
    ),
    (
        "add a container at the end (kubectl apply)",
        {"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}, {"name": "log"}],
            "containers": [{"image": "fluentd", "name": "log"}]}}}},
        _with(C, LIVE_DEPLOY["spec"]["template"]["spec"]["containers"] + [{"name": "log", "image": "fluentd"}]),
    ),
    (
        "add a port; ports merge by containerPort",
        {"spec": {"template": {"spec": {"containers": [{"name": "nginx",
            "$setElementOrder/ports": [{"containerPort": 80}, {"containerPort": 443}],
            "ports": [{"containerPort": 443, "protocol": "TCP"}]}]}}}},
        _with(NGINX + ["ports"], [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "protocol": "TCP"}]),
    ),
    (
        "change a port's name keeps the port",
        {"spec": {"template": {"spec": {"containers": [
            {"name": "nginx", "ports": [{"containerPort": 80, "name": "http"}]}]}}}},
        _with(NGINX + ["ports"], [{"containerPort": 80, "protocol": "TCP", "name": "http"}]),
    ),
    (
        "args are atomic: replaced",
        {"spec": {"template": {"spec": {"containers": [{"name": "nginx", "args": ["-v"]}]}}}},
        _with(NGINX + ["args"], ["-v"]),
    ),
    (
        "remove a container field via null",
        {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "command": None}]}}}},
        _with(C + [1], {"name": "sidecar", "image": "busybox"}),
    ),
    (
        "tolerations have no merge key: replaced",
        {"spec": {"template": {"spec": {"tolerations": [{"key": "other", "operator": "Exists"}]}}}},
        _with(["spec", "template", "spec", "tolerations"], [{"key": "other", "operator": "Exists"}]),
    ),
    (
        "add a finalizer: union",
        {"metadata": {"finalizers": ["c.io/z", "a.io/x"]}},
        _with(["metadata", "finalizers"], ["c.io/z", "a.io/x", "b.io/y"]),
    ),
    (
        "add a finalizer with order (kubectl apply)",
        {"metadata": {"$setElementOrder/finalizers": ["a.io/x", "b.io/y", "c.io/z"], "finalizers": ["c.io/z"]}},
        _with(["metadata", "finalizers"], ["a.io/x", "b.io/y", "c.io/z"]),
    ),
    (
        "remove a finalizer (kubectl apply)",
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.io/x"], "$setElementOrder/finalizers": ["b.io/y"]}},
        _with(["metadata", "finalizers"], ["b.io/y"]),
    ),
    (
        "delete from primitive list without order",
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b.io/y", "not-there"]}},
        _with(["metadata", "finalizers"], ["a.io/x"]),
    ),
    (
        "strategy retainKeys: RollingUpdate -> Recreate (kubectl apply)",
        {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"}}},
        _with(["spec", "strategy"], {"type": "Recreate"}),
    ),
    (
        "retainKeys clears fields the patch does not mention",
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
        _with(["spec", "strategy"], {"type": "Recreate"}),
    ),
    (
        "volume source change with retainKeys (kubectl apply)",
        {"spec": {"template": {"spec": {"$setElementOrder/volumes": [{"name": "data"}],
            "volumes": [{"$retainKeys": ["hostPath", "name"], "emptyDir": None, "hostPath": {"path": "/srv"},
                         "name": "data"}]}}}},
        _with(["spec", "template", "spec", "volumes"], [{"name": "data", "hostPath": {"path": "/srv"}}]),
    ),
    (
        "add a volume",
        {"spec": {"template": {"spec": {"volumes": [{"name": "cfg", "configMap": {"name": "c"}}]}}}},
        _with(["spec", "template", "spec", "volumes"],
              [{"name": "cfg", "configMap": {"name": "c"}}, {"name": "data", "emptyDir": {}}]),
    ),
    (
        "$patch: replace on a map",
        {"metadata": {"labels": {"$patch": "replace", "only": "this"}}},
        _with(["metadata", "labels"], {"only": "this"}),
    ),
    (
        "$patch: delete on a map leaves it empty",
        {"spec": {"selector": {"$patch": "delete"}}},
        _with(["spec", "selector"], {}),
    ),
    (
        "$patch: replace on a merging list",
        {"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}}},
        _with(C, [{"name": "only", "image": "x"}]),
    ),
    (
        "$patch: delete in a list of primitives-by-key with unknown key is a no-op",
        {"spec": {"template": {"spec": {"containers": [{"$patch": "delete", "name": "nope"}]}}}},
        copy.deepcopy(LIVE_DEPLOY),
    ),
    (
        "new nested object keeps no directives or nulls",
        {"spec": {"template": {"spec": {"affinity": {"nodeAffinity": {
            "x": None, "requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key": "z", "operator": "Exists"}]}]}}}}}}},
        _with(["spec", "template", "spec", "affinity"], {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key": "z", "operator": "Exists"}]}]}}}),
    ),
    (
        "remove the whole field via null",
        {"spec": {"strategy": None}},
        _with(["spec", "strategy"], ...),
    ),
]


@pytest.mark.parametrize("name,patch,expected", KUBECTL_CASES, ids=[c[0] for c in KUBECTL_CASES])
def test_strategic_merge_patch_deployment(name: str, patch: dict[str, Any], expected: dict[str, Any]) -> None:
    live = copy.deepcopy(LIVE_DEPLOY)
    before_patch = copy.deepcopy(patch)
    assert strategic_merge_patch(live, patch, DEPLOY) == expected
    assert live == LIVE_DEPLOY and patch == before_patch


LIST_ORDER_CASES = [
    # (original env names, patch names, setElementOrder or None, expected names)
    (["a", "b", "c"], ["d"], None, ["d", "a", "b", "c"]),
    (["a", "b", "c"], ["b"], None, ["a", "b", "c"]),
    (["a", "b", "c"], ["c", "a"], None, ["b", "c", "a"]),  # as apimachinery's mergeSortedSlice does
    (["a", "b", "c"], ["b", "d"], None, ["a", "b", "d", "c"]),
    (["a", "b", "c"], [], ["c", "b", "a"], ["c", "b", "a"]),
    (["a", "b", "c"], ["d"], ["d", "a", "b", "c"], ["d", "a", "b", "c"]),
    (["a", "b", "c"], ["d"], ["a", "d"], ["a", "d", "b", "c"]),
    ([], ["y", "x"], ["y", "x"], ["y", "x"]),
    (["a", "b"], ["b", "a"], ["b", "a"], ["b", "a"]),
]


@pytest.mark.parametrize("orig,patch_names,order,expected", LIST_ORDER_CASES)
def test_merge_list_order(orig: list[str], patch_names: list[str], order: list[str] | None,
                          expected: list[str]) -> None:
    live = {"spec": {"containers": [{"name": "c", "env": [{"name": n, "value": "old"} for n in orig]}]}}
    container: dict[str, Any] = {"name": "c"}
    if patch_names:
        container["env"] = [{"name": n, "value": "new"} for n in patch_names]
    if order is not None:
        container["$setElementOrder/env"] = [{"name": n} for n in order]
    out = strategic_merge_patch(live, {"spec": {"containers": [container]}}, POD)
    env = out["spec"]["containers"][0]["env"]
    assert [e["name"] for e in env] == expected
    assert all(e["value"] == ("new" if e["name"] in patch_names else "old") for e in env)


def test_service_ports_merge_by_port() -> None:
    live = {"spec": {"ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}, {"port": 443, "protocol": "TCP"}]}}
    out = strategic_merge_patch(live, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}, SVC)
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 9090, "protocol": "TCP"},
                                    {"port": 443, "protocol": "TCP"}]


def test_unknown_schema_falls_back_to_json_merge() -> None:
    live = {"spec": {"items": [{"name": "a", "v": 1}], "m": {"x": 1, "y": 2}}}
    patch = {"spec": {"items": [{"name": "b"}], "m": {"x": None, "z": 3}}}
    expected = {"spec": {"items": [{"name": "b"}], "m": {"y": 2, "z": 3}}}
    assert strategic_merge_patch(live, patch, "example.com.v1.Widget") == expected
    assert strategic_merge_patch(live, patch, None) == expected
    # unknown fields inside a known kind merge the same way
    pod = {"spec": {"containers": [{"name": "a"}]}, "extra": {"list": [1, 2]}}
    out = strategic_merge_patch(pod, {"extra": {"list": [3]}}, POD)
    assert out["extra"] == {"list": [3]}


@pytest.mark.parametrize(
    "patch,fragment",
    [
        ({"spec": {"containers": [{"image": "x"}]}}, "merge key"),
        ({"spec": {"containers": [{"$patch": "delete"}]}}, "merge key"),
        ({"spec": {"containers": [{"$patch": "bogus", "name": "a"}]}}, "bogus"),
        ({"spec": {"containers": [{"$patch": "merge"}]}}, "merging lists"),
        ({"metadata": {"labels": {"$patch": "frob"}}}, "frob"),
        ({"metadata": {"labels": {"$patch": "merge"}}}, "unknown patch type: merge"),
        ({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                   "containers": [{"name": "a"}, {"name": "b"}]}}, "doesn't match"),
        ({"spec": {"$setElementOrder/containers": [{"name": "a"}], "containers": [{"name": "z"}]}}, "doesn't match"),
        ({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}}, "$retainKeys"),
        ({"spec": {"strategy": {"$retainKeys": "type"}}}, "$retainKeys"),
        ({"metadata": {"finalizers": ["a"], "$deleteFromPrimitiveList/finalizers": "a"}}, "must be a list"),
        ({"spec": {"$setElementOrder/containers": [{"image": "x"}]}}, "merge key"),
        ({"spec": {"$frobnicate": 1}}, "unknown directive"),
        ({"spec": {"containers": ["nginx"]}}, "must be objects"),
        ([1], "JSON object"),
    ],
)
def test_strategic_merge_patch_errors(patch: Any, fragment: str) -> None:
    live = {"metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "a"}], "strategy": {"type": "Recreate"}}}
    with pytest.raises(PatchError) as e:
        strategic_merge_patch(live, patch, DEPLOY if "strategy" in str(patch) else POD)
    assert fragment in str(e.value)


def _random_json(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(6 if depth > 0 else 3)
    if kind == 0:
        return rng.randrange(5)
    if kind == 1:
        return rng.choice(["a", "b", "c"])
    if kind == 2:
        return None if rng.random() < 0.5 else True
    if kind == 3:
        return [_random_json(rng, depth - 1) for _ in range(rng.randrange(3))]
    return {rng.choice("pqrst"): _random_json(rng, depth - 1) for _ in range(rng.randrange(4))}


@pytest.mark.parametrize("seed", range(40))
def test_strategic_merge_without_schema_equals_json_merge_patch(seed: int) -> None:
    rng = random.Random(seed)
    original = {k: _random_json(rng, 3) for k in "pqrst" if rng.random() < 0.7}
    patch = {k: _random_json(rng, 3) for k in "pqrst" if rng.random() < 0.6}
    assert strategic_merge_patch(original, patch, None) == json_merge_patch(original, patch)


# ---------------------------------------------------------------- kubectl as the oracle
# `kubectl patch --local` applies a strategic merge patch with Kubernetes' own Go code,
# offline (no kubeconfig, no server): our results must be identical.

KUBECTL = shutil.which("kubectl")


def _kubectl_patch(obj: dict[str, Any], patch: dict[str, Any], tmp_path: Any) -> Any:
    f = tmp_path / "obj.json"
    f.write_text(json.dumps(obj))
    r = subprocess.run(
        [str(KUBECTL), "patch", "--local", "-f", str(f), "--type=strategic", "-p", json.dumps(patch), "-o", "json"],
        capture_output=True, text=True, env={**os.environ, "KUBECONFIG": os.devnull}, timeout=60,
    )
    if r.returncode:
        return PatchError(r.stderr)
    return json.loads(r.stdout)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
@pytest.mark.parametrize("name,patch,expected", KUBECTL_CASES, ids=[c[0] for c in KUBECTL_CASES])
def test_same_result_as_kubectl(name: str, patch: dict[str, Any], expected: dict[str, Any], tmp_path: Any) -> None:
    assert _kubectl_patch(LIVE_DEPLOY, patch, tmp_path) == strategic_merge_patch(LIVE_DEPLOY, patch, DEPLOY)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
@pytest.mark.parametrize("orig,patch_names,order,expected", LIST_ORDER_CASES)
def test_same_order_as_kubectl(orig: list[str], patch_names: list[str], order: list[str] | None, expected: list[str],
                               tmp_path: Any) -> None:
    live = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "env": [{"name": n, "value": "old"} for n in orig]}]}}
    container: dict[str, Any] = {"name": "c"}
    if patch_names:
        container["env"] = [{"name": n, "value": "new"} for n in patch_names]
    if order is not None:
        container["$setElementOrder/env"] = [{"name": n} for n in order]
    patch = {"spec": {"containers": [container]}}
    assert _kubectl_patch(live, patch, tmp_path) == strategic_merge_patch(live, patch, POD)
