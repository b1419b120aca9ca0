"""The Proxier loop over the in-process API: services and slices become nftables
rules; a table removed behind its back is rewritten at the next resync."""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest

from k8py.clock import FakeClock
from k8py.proxy import nft
from k8py.proxy.proxier import Proxier

from helpers.api import start_api

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="needs root and nft")
TABLE = "k8py-proxiertest"


async def until(cond, clock: FakeClock, what: str) -> None:  # type: ignore[no-untyped-def]
    for i in range(2000):
        if await cond():
            return
        if i % 50 == 49:
            await clock.advance(1)
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


async def test_rules_follow_the_api_and_survive_a_flushed_table() -> None:
    clock = FakeClock()
    api, client = await start_api(clock)
    p = Proxier(client, "n1", "10.42.0.0/16", clock=clock, table=TABLE, resync_period=5)
    task = asyncio.create_task(p.run())
    try:
        svc = await client.create("services", {"metadata": {"name": "web", "namespace": "default"},
                                               "spec": {"ports": [{"name": "http", "port": 80}],
                                                        "selector": {"app": "web"}}})
        ip = svc["spec"]["clusterIP"]
        await client.create("endpointslices", {
            "metadata": {"name": "web-x", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.42.0.9"], "conditions": {"ready": True}}]})

        async def has_rule() -> bool:
            return "10.42.0.9 . 8080" in nft.list_table(TABLE) and ip in nft.list_table(TABLE)
        await until(has_rule, clock, "the service's rules")
        nft.delete_table(TABLE)  # someone flushes the ruleset
        await until(has_rule, clock, "the rules back after a resync")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        nft.delete_table(TABLE)
        await api.close()
        await api.store.close()
