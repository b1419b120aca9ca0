"""Helpers shared by the API server tests: raw requests and sample objects."""

from __future__ import annotations

import json
from typing import Any

from k8py.api.request import ApiRequest, ApiResponse
from k8py.apiserver.server import ApiServer
from k8py.store.memory import MemoryStore


async def call(api: ApiServer, method: str, path: str, body: Any = None, *,
               query: dict[str, str] | None = None, content_type: str = "application/json",
               accept: str = "application/json") -> ApiResponse:
    """A raw request, for inputs the Client would never send."""
    if body is None:
        data = b""
    elif isinstance(body, bytes):
        data = body
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = json.dumps(body).encode()
    headers = {"accept": accept, "user-agent": "test/1.0"}
    if body is not None:
        headers["content-type"] = content_type
    return await api.handle(ApiRequest(method, path, query or {}, data, headers))


def pod(name: str, ns: str = "default", **spec: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"containers": [{"name": "c", "image": "nginx"}]}
    s.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns}, "spec": s}


def deployment(name: str, replicas: int = 1, ns: str = "default") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


async def stored_keys(store: MemoryStore, prefix: str) -> list[str]:
    return [kv.key for kv in (await store.list(prefix)).items]
