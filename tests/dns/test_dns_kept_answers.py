"""Kept (encoded once) answers of the cluster DNS: served again with the asker's ID and
never older than the Services and EndpointSlices: a change answers at once."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from dnslib import DNSRecord

from k8py.clock import FakeClock
from k8py.dns.clusterdns import ClusterDNS
from k8py.dns.records import ClusterZone
from k8py.dns.server import DnsServer

from helpers.api import start_api

NAME = "web.default.svc.cluster.local"


def addresses(reply: bytes | None) -> list[str]:
    assert reply is not None
    return [str(rr.rdata) for rr in DNSRecord.parse(reply).rr]


async def test_a_kept_answer_carries_the_new_id_and_skips_the_zone() -> None:
    lookups: list[tuple[str, str]] = []
    svc = {"metadata": {"namespace": "default", "name": "web"}, "spec": {"clusterIP": "10.43.0.50"}}

    def service(ns: str, name: str) -> dict[str, Any] | None:
        lookups.append((ns, name))
        return svc if (ns, name) == ("default", "web") else None
    server = DnsServer(ClusterZone(service, lambda ns, n: []), upstreams=[])
    first, second = DNSRecord.question(NAME), DNSRecord.question(NAME)
    second.header.id = (first.header.id + 1) % 65536
    a, b = await server.resolve(first.pack()), await server.resolve(second.pack())
    assert a is not None and b is not None
    assert DNSRecord.parse(b).header.id == second.header.id and a[2:] == b[2:]
    assert len(lookups) == 1 and server.queries == 2
    server.invalidate()
    assert addresses(await server.resolve(first.pack())) == ["10.43.0.50"] and len(lookups) == 2


async def until(cond: Any, what: str) -> None:
    for _ in range(1000):
        if cond():
            return
        await asyncio.sleep(0.01)  # polling a condition
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_changed_service_answers_its_new_address_at_once() -> None:
    api, client = await start_api(FakeClock())
    dns = ClusterDNS(client, "n1", "127.0.0.1", upstreams=[])
    tasks = [asyncio.create_task(dns.services.run()), asyncio.create_task(dns.slices.run())]
    try:
        await dns.services.wait_synced()
        query = DNSRecord.question(NAME).pack()
        spec = {"clusterIP": "None", "ports": [{"port": 80}]}
        await client.create("services", {"metadata": {"name": "web", "namespace": "default"}, "spec": spec})
        sl = await client.create("endpointslices", {
            "metadata": {"name": "web-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "endpoints": [{"addresses": ["10.42.0.5"], "conditions": {"ready": True}}]})
        await until(lambda: dns.slices.get("default", "web-1") is not None, "the slice in the cache")
        assert addresses(await dns.server.resolve(query)) == ["10.42.0.5"]  # and now kept
        sl["endpoints"][0]["addresses"] = ["10.42.0.6"]
        rv = (await client.update("endpointslices", sl))["metadata"]["resourceVersion"]
        await until(lambda: dns.slices.get("default", "web-1")["metadata"]["resourceVersion"] == rv,  # type: ignore[index]
                    "the changed slice in the cache")
        assert addresses(await dns.server.resolve(query)) == ["10.42.0.6"]
        await client.delete("services", "web", "default")
        await until(lambda: dns.services.get("default", "web") is None, "the deletion in the cache")
        await client.create("services", {"metadata": {"name": "web", "namespace": "default"},
                                          "spec": {"clusterIP": "10.43.0.77", "ports": [{"port": 80}]}})
        await until(lambda: dns.services.get("default", "web") is not None, "the new service in the cache")
        assert addresses(await dns.server.resolve(query)) == ["10.43.0.77"]
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await api.close()
        await api.store.close()


async def test_worker_processes_answer_on_the_same_port_and_follow_a_change() -> None:
    svc = {"metadata": {"namespace": "default", "name": "web"}, "spec": {"clusterIP": "10.43.0.50"}}
    server = DnsServer(ClusterZone(lambda ns, n: svc if (ns, n) == ("default", "web") else None,
                                   lambda ns, n: []), upstreams=[], workers=2)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    task = asyncio.create_task(server.serve("127.0.0.1", port))
    try:
        def ask_all() -> set[str]:
            """The answers seen by 32 askers (their source ports spread them over the sockets);
            run in a thread, since the main server answers in this event loop."""
            got: set[str] = set()
            for _ in range(32):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                    c.settimeout(0.5)
                    c.sendto(DNSRecord.question(NAME).pack(), ("127.0.0.1", port))
                    try:
                        got.update(addresses(c.recv(512)))
                    except TimeoutError:
                        got.add("no answer")
            return got

        async def answered() -> bool:  # all 32 right, and the workers up (one asked the main server)
            return await asyncio.to_thread(ask_all) == {"10.43.0.50"} and server.asked_by_workers > 0
        await until_async(answered, True, "the workers answering")
        svc["spec"]["clusterIP"] = "10.43.0.51"
        server.invalidate()
        assert await asyncio.to_thread(ask_all) == {"10.43.0.51"}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until_async(fn: Any, want: Any, what: str, timeout: float = 60.0) -> None:
    """Poll until fn() == want; bounded by a deadline, not a count (worker processes start
    in seconds on a loaded machine: 60 polls of a fast condition were 4 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await fn() == want:
            return
        await asyncio.sleep(0.05)  # polling a condition: the workers are still starting
    raise AssertionError(f"timed out waiting for {what}")
