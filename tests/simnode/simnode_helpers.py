"""Helpers of the simulated-node tests: a pod bound to a node, and polls on pods."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def pod(name: str, node: str, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx"}], **spec}}


async def running_ip(client: Any, name: str) -> str | None:
    p = await client.get_or_none("pods", name, "default")
    return (p or {}).get("status", {}).get("podIP")


async def gone(client: Any, name: str) -> bool:
    return await client.get_or_none("pods", name, "default") is None
