"""An ApiServer over a fresh MemoryStore reached through the in-process client, and
condition polling: the common ground of the controller, kubelet and scheduler tests.

Invariant: nothing here sleeps for a fixed time to let something happen; `eventually`
polls a condition and fails (AssertionError) when it never holds.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from k8py.apiserver.inprocess import InProcessTransport
from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.clock import Clock
from k8py.store.memory import MemoryStore


async def start_api(clock: Clock) -> tuple[ApiServer, Client]:
    """(ApiServer, Client) over a fresh MemoryStore; the caller closes the api."""
    store = MemoryStore()
    await store.start()
    api = ApiServer(store, None, clock)
    await api.start()
    return api, Client(InProcessTransport(api))


async def publish_root_ca(client: Client, namespace: str = "default") -> None:
    """The `kube-root-ca.crt` ConfigMap the root CA publisher keeps in every namespace of a
    cluster (pods' kube-api-access volumes mount it), for tests that run no controllers."""
    await client.create("configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                       "metadata": {"name": "kube-root-ca.crt", "namespace": namespace},
                                       "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\ntest\n"}})


async def eventually(cond: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll an (async or sync) condition until it returns something truthy; returns that.
    Fails with AssertionError("timed out waiting for <what>") after `timeout` seconds."""
    async def poll() -> Any:
        while True:
            r = cond()
            if inspect.isawaitable(r):
                r = await r
            if r:
                return r
            await asyncio.sleep(0.002)

    try:
        return await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None
