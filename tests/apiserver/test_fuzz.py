"""No input makes the API server answer 500: random paths, methods, queries, bodies."""

from __future__ import annotations

import json
import os
import random
from typing import Any

from k8py.apiserver.server import ApiServer
from k8py.client.client import Client

from apiserver_helpers import call, deployment, pod

PATHS = ["/api/v1/namespaces/default/pods", "/api/v1/namespaces/default/pods/p",
         "/api/v1/namespaces/default/pods/p/status",
         "/api/v1/namespaces/default/pods/p/binding", "/api/v1/namespaces/default/pods/p/eviction",
         "/api/v1/namespaces/default/pods/p/log", "/apis/apps/v1/namespaces/default/deployments/d",
         "/apis/apps/v1/namespaces/default/deployments/d/scale", "/apis/apps/v1/namespaces/default/deployments",
         "/api/v1/namespaces", "/api/v1/namespaces/default", "/api/v1/namespaces/default/finalize",
         "/api/v1/namespaces/default/services", "/api/v1/nodes", "/api/v1/watch/namespaces/default/pods",
         "/apis/events.k8s.io/v1/namespaces/default/events", "/api/v1/namespaces/default/configmaps/c",
         "/api/v1/namespaces/%2e%2e/pods", "/api//v1", "/apis/apps", "/api/v1/namespaces/default/pods/p/x/y"]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
CTYPES = ["application/json", "application/yaml", "application/merge-patch+json", "application/json-patch+json",
          "application/strategic-merge-patch+json", "application/apply-patch+yaml", "text/plain", "",
          "application/vnd.kubernetes.protobuf"]
QUERIES = [{}, {"watch": "true", "timeoutSeconds": "0"}, {"dryRun": "All"}, {"fieldValidation": "Strict"},
           {"labelSelector": "a=(b"}, {"fieldSelector": "metadata.name="}, {"limit": "-1"}, {"limit": "x"},
           {"continue": "eyJrIjogMX0="}, {"resourceVersion": "-5"}, {"gracePeriodSeconds": "x"},
           {"propagationPolicy": "Nope"}, {"force": "true"}, {"fieldManager": "x" * 200}, {"includeObject": "Bad"}]


def _values(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(9 if depth < 3 else 6)
    return [None, True, -1, 1.5, "x", "", {}, [], None][choice] if choice < 6 else (
        {rng.choice(["metadata", "spec", "status", "name", "kind", "apiVersion", "containers", "replicas",
                     "finalizers", "labels", "target", "op", "path", "value", "deleteOptions"]): _values(rng, depth + 1)
         for _ in range(rng.randrange(4))} if choice < 8
        else [_values(rng, depth + 1) for _ in range(rng.randrange(3))])


def _body(rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:
        return b""
    if kind == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
    if kind == 2:
        base = rng.choice([pod("p"), deployment("d"), {"apiVersion": "v1", "kind": "Binding", "target": {"name": "n"}}])
        return json.dumps(base).encode()
    if kind == 3:
        return json.dumps([{"op": rng.choice(["add", "remove", "replace", "test", "move"]),
                            "path": rng.choice(["/spec", "/metadata/name", "/x/y/z", "", "/spec/replicas"]),
                            "value": _values(rng)}]).encode()
    if kind == 4:
        return b"k8s\x00" + bytes(rng.randrange(256) for _ in range(rng.randrange(30)))
    return json.dumps(_values(rng)).encode()


async def test_random_requests_never_500(api: ApiServer, client: Client) -> None:
    await client.create("pods", pod("p"))
    await client.create("deployments", deployment("d"))
    await client.create("configmaps", {"metadata": {"name": "c", "namespace": "default"}})
    rng = random.Random(int(os.environ.get("K8PY_FUZZ_SEED", "1234")))
    for i in range(1500):
        method, path = rng.choice(METHODS), rng.choice(PATHS)
        resp = await call(api, method, path, _body(rng), content_type=rng.choice(CTYPES),
                          query=dict(rng.choice(QUERIES)))
        assert resp.status != 500, (i, method, path, resp.body)
        if resp.stream is not None:
            await resp.stream.aclose()  # type: ignore[attr-defined]
        if resp.status >= 400:
            assert resp.body["kind"] == "Status" and resp.body["code"] == resp.status


def _mutate(rng: random.Random, obj: Any, depth: int = 0) -> Any:
    """obj with one randomly chosen node replaced by a random value."""
    if depth > 6 or not isinstance(obj, (dict, list)) or not obj or rng.random() < 0.25:
        return _values(rng)
    if isinstance(obj, dict):
        k = rng.choice(sorted(obj))
        out = dict(obj)
        out[k] = _mutate(rng, obj[k], depth + 1)
        return out
    i = rng.randrange(len(obj))
    return obj[:i] + [_mutate(rng, obj[i], depth + 1)] + obj[i + 1:]


SVC = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "default"},
       "spec": {"type": "NodePort", "selector": {"a": "b"}, "ports": [{"port": 80, "targetPort": "http"}]}}


async def test_mutated_objects_never_500(api: ApiServer, store: Any) -> None:
    rng = random.Random(int(os.environ.get("K8PY_FUZZ_SEED", "99")))
    bases = [("/api/v1/namespaces/default/pods", pod("p", resources={})),
             ("/apis/apps/v1/namespaces/default/deployments", deployment("d")),
             ("/api/v1/namespaces/default/services", SVC)]
    for i in range(600):
        path, base = rng.choice(bases)
        body = _mutate(rng, base)
        resp = await call(api, "POST", path, body, query={"fieldValidation": rng.choice(["Strict", "Ignore"])})
        assert resp.status != 500, (i, body, resp.body)
        if resp.status == 201:
            name = resp.body["metadata"]["name"]
            upd = _mutate(rng, resp.body)
            resp2 = await call(api, "PUT", f"{path}/{name}", upd)
            assert resp2.status != 500, (i, upd, resp2.body)
            resp3 = await call(api, "DELETE", f"{path}/{name}", query={"gracePeriodSeconds": "0"})
            assert resp3.status != 500, (i, resp3.body)
