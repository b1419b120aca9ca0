"""N simulated nodes `<prefix><i>` run by one Engine: shared informers, one work queue and
one lease loop, so that 1,000 nodes stay cheap. Node i gets the (i - start)-th TEST-NET
address as its InternalIP (addresses.py).
"""

from __future__ import annotations

from typing import Any

from k8py.client.client import Client
from k8py.client.informer import SharedInformerFactory
from k8py.clock import Clock, RealClock
from k8py.simnode.addresses import documentation_address
from k8py.simnode.engine import Engine
from k8py.simnode.node import SimulatedNode


class SimulatedCluster:
    """N simulated nodes `<prefix><i>` sharing informers, a work queue and a lease loop."""

    def __init__(self, client: Client, n: int, capacity: dict[str, str] | None = None,
                 clock: Clock | None = None, *, name_prefix: str = "sim-", start_index: int = 1,
                 workers: int = 32, factory: SharedInformerFactory | None = None,
                 **node_kwargs: Any) -> None:
        self.client = client
        self.clock: Clock = clock or RealClock()
        self.nodes = [SimulatedNode(client, f"{name_prefix}{i}", capacity, self.clock,
                                    internal_ip=documentation_address(i - start_index), **node_kwargs)
                      for i in range(start_index, start_index + n)]
        self.workers = workers
        self.factory = factory  # share pod and node informers with other components
        self.engine: Engine | None = None

    def node(self, name: str) -> SimulatedNode:
        return next(n for n in self.nodes if n.name == name)

    async def run(self) -> None:
        self.engine = Engine(self.client, self.clock, self.nodes, workers=self.workers, factory=self.factory)
        await self.engine.run()
