"""ClusterDns.publish when several nodes' DNS publish `kube-dns` at once: one that loses the
race to create an object (409 AlreadyExists) updates the one another node created, instead of
failing (which stopped the whole agent of that node)."""

from __future__ import annotations

from typing import Any

from k8py.client.errors import ApiError
from k8py.dns.clusterdns import ClusterDNS


class RacingClient:
    """get_or_none says "absent", then create finds it made by another node in between."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.updates: list[tuple[str, dict[str, Any]]] = []

    async def get_or_none(self, resource: str, name: str, namespace: str) -> dict[str, Any] | None:
        return None

    async def get(self, resource: str, name: str, namespace: str) -> dict[str, Any]:
        return self.objects[(resource, name)]

    async def create(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        if resource != "services":  # the other node was first
            self.objects[(resource, name)] = {"metadata": {"name": name, "resourceVersion": "7", "labels": {}}}
        raise ApiError(409, {"kind": "Status", "reason": "AlreadyExists", "code": 409,
                             "message": f'{resource} "{name}" already exists'})

    async def update(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.updates.append((resource, obj))
        return obj


async def test_a_lost_create_race_updates_the_other_nodes_object() -> None:
    client = RacingClient()
    dns = ClusterDNS(client, "node-2", "10.41.0.3")  # type: ignore[arg-type]
    await dns.publish()
    updated = {r: o for r, o in client.updates}
    assert set(updated) == {"endpointslices", "endpoints"}
    assert updated["endpoints"]["metadata"]["resourceVersion"] == "7"
    assert updated["endpoints"]["subsets"][0]["addresses"][0]["ip"] == "10.41.0.3"
