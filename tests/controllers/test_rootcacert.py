"""The root CA publisher: `kube-root-ca.crt` in every namespace, restored when deleted or changed."""

from __future__ import annotations

from typing import Any

from k8py.client.errors import ApiError
from k8py.controllers.rootcacert import DESCRIPTION, RootCACertPublisher

from ctrl_helpers import Cluster

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


async def published(c: Cluster, ns: str) -> Any:
    try:
        cm = await c.client.get("configmaps", "kube-root-ca.crt", ns)
    except ApiError:
        return None
    ok = cm.get("data") == {"ca.crt": CA} and \
        cm["metadata"].get("annotations", {}).get("kubernetes.io/description") == DESCRIPTION
    return cm if ok else None


async def test_every_namespace_gets_the_ca_and_keeps_it(cluster: Cluster) -> None:
    c = cluster
    await c.start(RootCACertPublisher(c.client, c.factory, c.clock, CA))
    for ns in ("default", "kube-system"):
        await c.until(lambda ns=ns: published(c, ns), f"the CA in {ns}")
    await c.client.create("namespaces", {"metadata": {"name": "team"}})
    first = await c.until(lambda: published(c, "team"), "the CA in a new namespace")
    await c.client.delete("configmaps", "kube-root-ca.crt", "team")
    again = await c.until(lambda: published(c, "team"), "the CA restored after a deletion")
    assert again["metadata"]["uid"] != first["metadata"]["uid"]
    again["data"] = {"ca.crt": "tampered", "extra": "x"}
    await c.client.update("configmaps", again)
    await c.until(lambda: published(c, "team"), "the CA restored after a change")
