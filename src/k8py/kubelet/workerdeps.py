"""What a pod worker needs from its node, named (Kubernetes' pod workers get a podSyncer):
the API client (pod status, deletion), the runtime and its shared snapshot, the clock,
volumes, the crash and pull back-off, the cluster settings for sandboxes and
containers, its timing, the event recorder, the Secret/ConfigMap lookup, the Services
(for the service environment variables) and the live facts of the node.

Invariants: the agent builds one PodWorkerDeps and shares it among its workers; only
`node` changes afterwards (the agent learns its IP once the network is up and its
allocatable with every status), so workers read it at each use, never copy it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from k8py.client.client import Client
from k8py.client.events import EventRecorder
from k8py.clock import Clock
from k8py.kubelet.backoff import Backoff
from k8py.kubelet.containerconfig import ClusterSettings
from k8py.kubelet.envvars import Lookup
from k8py.kubelet.resize import Allocations
from k8py.kubelet.runtimecache import RuntimeCache
from k8py.kubelet.serviceenv import ServiceLister
from k8py.kubelet.volumes import VolumeManager
from k8py.runtime.protocol import ContainerRuntime


@dataclass
class NodeState:
    """What the agent learns about its node while running."""

    name: str
    ip: str = ""  # the node IP pods see (status.hostIP); "" until the network is up
    allocatable: dict[str, str] = field(default_factory=dict)  # for resourceFieldRef defaults


@dataclass(frozen=True)
class WorkerTiming:
    """Periods (seconds) a pod worker keeps, from AgentOptions (their defaults are there)."""

    sync_period: float  # at least one sync per period (to notice exits)
    volume_refresh_period: float  # configMap/secret volumes re-projected
    storage_check_period: float  # ephemeral-storage limits checked
    max_kill_grace: float  # no stop waits longer than this


@dataclass(frozen=True)
class PodWorkerDeps:
    client: Client
    runtime: ContainerRuntime
    clock: Clock
    cache: RuntimeCache
    volumes: VolumeManager
    backoff: Backoff
    settings: ClusterSettings
    timing: WorkerTiming
    recorder: EventRecorder
    lookup: Lookup
    services: ServiceLister
    node: NodeState
    allocations: Allocations = field(default_factory=Allocations)  # the node's pods, for resize admission
