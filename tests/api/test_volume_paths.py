"""Volume paths validated as Kubernetes' validateLocalNonReservedPath / validateLocalDescendingPath:
every item path of a configMap, secret, downwardAPI or projected volume, and a mount's subPath, stays
inside its volume (relative, no `..` element, not `..`-prefixed), else a 422 naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.api import resources
from k8py.api.defaults import apply_defaults
from k8py.api.validation import validate
from k8py.api.validation.field import INVALID, REQUIRED


def pod(volume: dict[str, Any] | None = None, mount: dict[str, Any] | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "app", "image": "busybox"}
    if mount is not None:
        c["volumeMounts"] = [{"name": "v", "mountPath": "/v", **mount}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [c], "volumes": [{"name": "v", **(volume or {"emptyDir": {}})}]}}


def errors(o: dict[str, Any]) -> list[tuple[str, str, str]]:
    res = resources.get("pods")
    apply_defaults(o, res)
    return [(e.type, e.field, e.message) for e in validate(o, res)]


def downward(path: str) -> dict[str, Any]:
    return {"downwardAPI": {"items": [{"path": path, "fieldRef": {"fieldPath": "metadata.name"}}]}}


def projected(source: dict[str, Any]) -> dict[str, Any]:
    return {"projected": {"sources": [source]}}


def cm(path: str) -> dict[str, Any]:
    return {"name": "c", "items": [{"key": "k", "path": path}]}


V = "spec.volumes[0]"
BAD_PATHS = [  # (path, Kubernetes' messages in order)
    ("/etc/x", ["must be a relative path"]),
    ("../../etc/x", ["must not contain '..'"]),
    ("a/../../x", ["must not contain '..'"]),
    ("..", ["must not contain '..'", "must not start with '..'"]),
    ("..data", ["must not start with '..'"]),
    ("..2024_01_01/x", ["must not start with '..'"]),
    ("/../x", ["must be a relative path", "must not contain '..'"]),
]
SOURCES = [  # (volume for a path, the field naming it)
    (downward, f"{V}.downwardAPI.items[0].path"),
    (lambda p: {"configMap": cm(p)}, f"{V}.configMap.items[0].path"),
    (lambda p: {"secret": {"secretName": "s", "items": [{"key": "k", "path": p}]}}, f"{V}.secret.items[0].path"),
    (lambda p: projected({"configMap": cm(p)}), f"{V}.projected.sources[0].configMap.items[0].path"),
    (lambda p: projected({"secret": cm(p)}), f"{V}.projected.sources[0].secret.items[0].path"),
    (lambda p: projected(downward(p)), f"{V}.projected.sources[0].downwardAPI.items[0].path"),
    (lambda p: projected({"serviceAccountToken": {"path": p}}), f"{V}.projected.sources[0].serviceAccountToken.path"),
]


@pytest.mark.parametrize("make,field", SOURCES, ids=[s[1].removeprefix(V + ".") for s in SOURCES])
@pytest.mark.parametrize("path,messages", BAD_PATHS, ids=[b[0] for b in BAD_PATHS])
def test_item_path_outside_the_volume_is_refused(make: Any, field: str, path: str, messages: list[str]) -> None:
    errs = errors(pod(make(path)))
    assert errs == [(INVALID, field, f'Invalid value: "{path}": {m}') for m in messages]


@pytest.mark.parametrize("make,field", SOURCES, ids=[s[1].removeprefix(V + ".") for s in SOURCES])
@pytest.mark.parametrize("path", ["x", "a/b/c", "a..b", "x/..y", ".hidden", "a/./b"])
def test_item_path_inside_the_volume_is_accepted(make: Any, field: str, path: str) -> None:
    assert errors(pod(make(path))) == []


@pytest.mark.parametrize("volume,field", [
    (downward(""), f"{V}.downwardAPI.items[0].path"),
    ({"configMap": {"name": "c", "items": [{"key": "k"}]}}, f"{V}.configMap.items[0].path"),
    (projected({"serviceAccountToken": {}}), f"{V}.projected.sources[0].serviceAccountToken.path"),
])
def test_item_path_is_required(volume: dict[str, Any], field: str) -> None:
    assert (REQUIRED, field, "Required value") in errors(pod(volume))


@pytest.mark.parametrize("mount,expected", [
    ({"subPath": "/etc"}, [(INVALID, "subPath", "must be a relative path")]),
    ({"subPath": "../x"}, [(INVALID, "subPath", "must not contain '..'")]),
    ({"subPath": "a/../.."}, [(INVALID, "subPath", "must not contain '..'")]),
    ({"subPathExpr": "/$(POD)"}, [(INVALID, "subPathExpr", "must be a relative path")]),
    ({"subPathExpr": "$(POD)/.."}, [(INVALID, "subPathExpr", "must not contain '..'")]),
    ({"subPath": "a", "subPathExpr": "b"},
     [(INVALID, "[0].subPathExpr", "subPathExpr and subPath are mutually exclusive")]),
    ({"subPath": "..data"}, []),  # a mount's subPath may name a `..`-prefixed entry (descending only)
    ({"subPath": "a/b"}, []),
    ({"subPathExpr": "$(POD)"}, []),
])
def test_subpath(mount: dict[str, Any], expected: list[tuple[str, str, str]]) -> None:
    errs = [(t, f.removeprefix("spec.containers[0].volumeMounts").lstrip("."), m.split(": ", 2)[-1])
            for t, f, m in errors(pod(mount=mount))]
    assert errs == [(t, f, m) for t, f, m in expected]
