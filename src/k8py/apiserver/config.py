"""Configuration of the API server core (addresses, ranges, intervals).

Invariants: `service_cidr` contains `cluster_dns`; the first host address of
`service_cidr` is the `kubernetes` Service's ClusterIP.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ApiServerConfig:
    service_cidr: str = "10.43.0.0/16"
    cluster_cidr: str = "10.42.0.0/16"
    node_port_range: tuple[int, int] = (30000, 32767)  # inclusive
    advertise_address: str = "127.0.0.1"
    port: int = 6443
    bookmark_interval: float = 10.0  # seconds between watch BOOKMARK events
    cluster_domain: str = "cluster.local"
    cluster_dns: str = "10.43.0.10"
    watch_history: int = 2_000  # events each watch cache keeps; older resumes read the store
    watcher_queue: int = 10_000  # events buffered per watcher before it is dropped
    authorization_mode: str = "RBAC"  # or "AlwaysAllow" (`k8py server --authorization-mode`)
    patch_retries: int = 100  # read-modify-write attempts of PATCH (and unconditional PUT) on store conflicts
