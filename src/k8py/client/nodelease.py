"""The node Lease: a node's heartbeat, coordination.k8s.io/v1 Lease `<node>` in
kube-node-lease, renewed every 10 s with a 40 s duration (Kubernetes' defaults). Both
node agents renew theirs with it: the kubelet and the simulated nodes (simnode).

`NodeLease.renew()` creates the Lease on first use (owned by the Node, so it goes
when the Node goes) and afterwards writes only spec.renewTime. Invariant: a renew
never raises for a lost race (409): it re-reads and writes again; other API errors
propagate to the caller, which retries on its next tick.
"""

from __future__ import annotations

from datetime import UTC, datetime

from k8py.api.types import Obj
from k8py.api.wellknown import NAMESPACE_NODE_LEASE
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.clock import Clock

LEASE_DURATION_SECONDS = 40
RENEW_INTERVAL_SECONDS = 10.0


def micro_time(t: float) -> str:
    """Kubernetes' MicroTime: 2024-01-02T03:04:05.123456Z."""
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro_time(s: str) -> float:
    base = s.rstrip("Z")
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in base else "%Y-%m-%dT%H:%M:%S"
    return datetime.strptime(base, fmt).replace(tzinfo=UTC).timestamp()


def lease_renew_time(lease: Obj) -> float | None:
    rt = (lease.get("spec") or {}).get("renewTime")
    if not rt:
        return None
    try:
        return parse_micro_time(rt)
    except ValueError:
        return None


class NodeLease:
    def __init__(self, client: Client, node_name: str, clock: Clock,
                 duration_seconds: int = LEASE_DURATION_SECONDS) -> None:
        self.client = client
        self.node_name = node_name
        self.clock = clock
        self.duration_seconds = duration_seconds
        self.node_uid: str | None = None
        self._lease: Obj | None = None

    def _new(self) -> Obj:
        now = micro_time(self.clock.now())
        md: Obj = {"name": self.node_name, "namespace": NAMESPACE_NODE_LEASE}
        if self.node_uid:
            md["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": self.node_name,
                                      "uid": self.node_uid}]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": md,
                "spec": {"holderIdentity": self.node_name, "leaseDurationSeconds": self.duration_seconds,
                         "renewTime": now}}

    async def renew(self) -> Obj:
        for _ in range(3):
            if self._lease is None:
                cur = await self.client.get_or_none("leases", self.node_name, NAMESPACE_NODE_LEASE)
                if cur is None:
                    try:
                        self._lease = await self.client.create("leases", self._new(), NAMESPACE_NODE_LEASE)
                        return self._lease
                    except ApiError as e:
                        if not e.already_exists:
                            raise
                        continue
                self._lease = cur
            lease = dict(self._lease)
            lease["spec"] = {**(lease.get("spec") or {}), "holderIdentity": self.node_name,
                             "leaseDurationSeconds": self.duration_seconds,
                             "renewTime": micro_time(self.clock.now())}
            try:
                self._lease = await self.client.update("leases", lease)
                return self._lease
            except ApiError as e:
                self._lease = None
                if not (e.conflict or e.not_found):
                    raise
        raise ApiError(409, {"reason": "Conflict", "message": f"lease {self.node_name}: lost races"})
