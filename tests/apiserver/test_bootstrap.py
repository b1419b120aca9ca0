"""Bootstrap: system namespaces, the kubernetes Service and endpoints, default ServiceAccounts."""

from __future__ import annotations

from k8py.apiserver.config import ApiServerConfig
from k8py.apiserver.inprocess import InProcessTransport
from k8py.apiserver.server import ApiServer
from k8py.client.client import Client
from k8py.clock import FakeClock
from k8py.store.memory import MemoryStore


async def test_fresh_cluster(client: Client, config: ApiServerConfig) -> None:
    nss = (await client.list("namespaces"))["items"]
    assert sorted(n["metadata"]["name"] for n in nss) == ["default", "kube-node-lease", "kube-public", "kube-system"]
    for n in nss:
        assert n["metadata"]["labels"]["kubernetes.io/metadata.name"] == n["metadata"]["name"]
        assert n["status"]["phase"] == "Active"
        assert await client.get_or_none("serviceaccounts", "default", n["metadata"]["name"]) is not None
    svc = await client.get("services", "kubernetes", "default")
    assert svc["spec"]["clusterIP"] == "10.43.0.1"
    assert svc["spec"]["ports"][0]["port"] == 443 and svc["spec"]["ports"][0]["name"] == "https"
    ep = await client.get("endpoints", "kubernetes", "default")
    assert ep["subsets"][0]["addresses"][0]["ip"] == config.advertise_address
    assert ep["subsets"][0]["ports"][0]["port"] == config.port
    eps = await client.get("endpointslices", "kubernetes", "default")
    assert eps["endpoints"][0]["addresses"] == [config.advertise_address]


async def test_new_namespace_gets_label_and_service_account(client: Client) -> None:
    ns = await client.create("namespaces", {"metadata": {"name": "team"}})
    assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == "team"
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    assert await client.get_or_none("serviceaccounts", "default", "team") is not None
    # The label cannot be removed by an update.
    ns["metadata"]["labels"] = {}
    again = await client.update("namespaces", ns)
    assert again["metadata"]["labels"]["kubernetes.io/metadata.name"] == "team"


async def test_restart_is_idempotent_and_fixes_endpoints(store: MemoryStore) -> None:
    a = ApiServer(store, ApiServerConfig(port=6443), FakeClock())
    await a.start()
    await a.close()
    rev = await store.current_revision()
    b = ApiServer(store, ApiServerConfig(port=6443), FakeClock())
    await b.start()
    await b.close()
    assert await store.current_revision() == rev  # nothing rewritten
    c = ApiServer(store, ApiServerConfig(port=7443, advertise_address="127.0.0.2"), FakeClock())
    await c.start()
    try:
        ep = await Client(InProcessTransport(c)).get("endpoints", "kubernetes", "default")
        assert ep["subsets"][0]["ports"][0]["port"] == 7443
        assert ep["subsets"][0]["addresses"][0]["ip"] == "127.0.0.2"
    finally:
        await c.close()


async def test_port_known_only_after_binding(store: MemoryStore) -> None:
    api = ApiServer(store, ApiServerConfig(port=0), FakeClock())
    await api.start()
    try:
        c = Client(InProcessTransport(api))
        assert await c.get_or_none("endpoints", "kubernetes", "default") is None
        await api.set_endpoint("127.0.0.1", 41234)
        ep = await c.get("endpoints", "kubernetes", "default")
        assert ep["subsets"][0]["ports"][0]["port"] == 41234
        svc = await c.get("services", "kubernetes", "default")
        assert svc["spec"]["ports"][0]["targetPort"] == 41234 and svc["spec"]["clusterIP"] == "10.43.0.1"
    finally:
        await api.close()
