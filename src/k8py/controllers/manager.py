"""ControllerManager: runs every controller of the cluster on one shared set of
informers (as kube-controller-manager does), each controller on a client with a rate limit of its
own (`options.rate_limit`, as kube-controller-manager's --kube-api-qps/--kube-api-burst).

`ControllerManager(client, clock, options).run()` builds the enabled controllers
(each registers its informers and handlers on one SharedInformerFactory), starts the
informers, then awaits every controller's `run()` until cancelled. Invariants: a
controller that crashes is logged and restarted after a back-off on the clock, the
others go on; cancelling `run()` stops the controllers, then the informers, then the
controllers' event recorders, and returns only once all of them have stopped. Its
component entry point is `controllers/run.py`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from k8py.api.taints import DEFAULT_TOLERATION_SECONDS
from k8py.client.client import Client
from k8py.client.events import EventRecorder
from k8py.client.informer import SharedInformerFactory
from k8py.client.ratelimit import UNLIMITED, RateLimit, bucket
from k8py.clock import Clock, RealClock
from k8py.controllers.base import Controller
from k8py.controllers.clusterroleaggregation import ClusterRoleAggregationController
from k8py.controllers.cronjob import CronJobController
from k8py.controllers.daemonset import DaemonSetController
from k8py.controllers.deployment import DeploymentController
from k8py.controllers.disruption import DisruptionController
from k8py.controllers.endpoints import EndpointsController
from k8py.controllers.endpointslice import EndpointSliceController
from k8py.controllers.garbagecollector import GarbageCollector
from k8py.controllers.job import JobController
from k8py.controllers.localpath import DEFAULT_BASE_DIR
from k8py.controllers.nodeipam import CLUSTER_CIDR, NodeIpamController
from k8py.controllers.nodelifecycle import NODE_MONITOR_GRACE_PERIOD, NodeLifecycleController, monitor_period
from k8py.controllers.podautoscaler import HorizontalPodAutoscalerController
from k8py.controllers.podgc import PodGC
from k8py.controllers.pvbinder import PersistentVolumeBinder
from k8py.controllers.replicaset import (
    ReplicaSetController,
    ReplicationControllerController,
)
from k8py.controllers.resourcequota import ResourceQuotaController
from k8py.controllers.rootcacert import RootCACertPublisher
from k8py.controllers.servicelb import ServiceLoadBalancerController
from k8py.controllers.statefulset import StatefulSetController

log = logging.getLogger(__name__)

ALL_CONTROLLERS = ("replicaset", "replicationcontroller", "deployment", "daemonset", "statefulset", "job", "cronjob",
                   "garbagecollector", "podgc", "horizontalpodautoscaling", "resourcequota",
                   "endpoints", "endpointslice", "persistentvolume-binder", "nodelifecycle", "nodeipam", "servicelb",
                   "root-ca-cert-publisher", "clusterrole-aggregation", "disruption")


@dataclass
class ControllerManagerOptions:
    enabled: tuple[str, ...] = ALL_CONTROLLERS
    workers: int = 2
    storage_base_dir: str = DEFAULT_BASE_DIR
    create_default_storage_class: bool = True
    lb_pool: str = "127.0.100.0/24"  # LoadBalancer addresses (servicelb)
    pod_eviction_timeout: float = DEFAULT_TOLERATION_SECONDS  # nodelifecycle: NoExecute toleration of unreachable
    node_monitor_grace_period: float = NODE_MONITOR_GRACE_PERIOD  # nodelifecycle: silence before NotReady
    cluster_cidr: str = CLUSTER_CIDR  # nodeipam: the pod CIDRs of nodes are carved from it
    root_ca: str = ""  # root-ca-cert-publisher: the cluster CA (PEM) it publishes; "" = not run
    rate_limit: RateLimit = UNLIMITED  # each controller's client (the informers' and events' apart)


class ControllerManager:
    def __init__(self, client: Client, clock: Clock | None = None,
                 options: ControllerManagerOptions | None = None) -> None:
        self.client = client
        self.clock: Clock = clock or RealClock()
        self.options = options or ControllerManagerOptions()
        self.factory = SharedInformerFactory(client, self.clock)
        self.controllers: dict[str, Any] = {}
        self._build()

    def _recorder(self, component: str) -> EventRecorder:
        return EventRecorder(self.client, component, self.clock)

    def _build(self) -> None:
        o = self.options
        f, clk, w = self.factory, self.clock, o.workers
        builders: dict[str, Callable[[Client], Controller | NodeLifecycleController | NodeIpamController]] = {
            "replicaset": lambda c: ReplicaSetController(c, f, clk, self._recorder("replicaset-controller"), w),
            "replicationcontroller": lambda c: ReplicationControllerController(
                c, f, clk, self._recorder("replication-controller"), w),
            "deployment": lambda c: DeploymentController(c, f, clk, self._recorder("deployment-controller"), w),
            "daemonset": lambda c: DaemonSetController(c, f, clk, self._recorder("daemonset-controller"), w),
            "statefulset": lambda c: StatefulSetController(c, f, clk, self._recorder("statefulset-controller"), w),
            "job": lambda c: JobController(c, f, clk, self._recorder("job-controller"), w),
            "servicelb": lambda c: ServiceLoadBalancerController(c, f, clk, self._recorder("service-lb-controller"),
                                                                 pool=o.lb_pool),
            "cronjob": lambda c: CronJobController(c, f, clk, self._recorder("cronjob-controller"), w),
            "garbagecollector": lambda c: GarbageCollector(c, f, clk, self._recorder("garbage-collector-controller"),
                                                           w),
            "podgc": lambda c: PodGC(c, f, clk, self._recorder("pod-garbage-collector")),
            "horizontalpodautoscaling": lambda c: HorizontalPodAutoscalerController(
                c, f, clk, self._recorder("horizontal-pod-autoscaler")),
            "resourcequota": lambda c: ResourceQuotaController(c, f, clk, self._recorder("resourcequota-controller")),
            "endpoints": lambda c: EndpointsController(c, f, clk, self._recorder("endpoint-controller"), w),
            "endpointslice": lambda c: EndpointSliceController(c, f, clk,
                                                               self._recorder("endpoint-slice-controller"), w),
            "persistentvolume-binder": lambda c: PersistentVolumeBinder(
                c, f, clk, self._recorder("persistentvolume-controller"), w,
                base_dir=o.storage_base_dir, create_default_class=o.create_default_storage_class),
            "nodelifecycle": lambda c: NodeLifecycleController(
                c, clk, pod_eviction_timeout=o.pod_eviction_timeout,
                node_monitor_grace_period=o.node_monitor_grace_period,
                node_monitor_period=monitor_period(o.node_monitor_grace_period), factory=f),
            "nodeipam": lambda c: NodeIpamController(c, clk, cluster_cidr=o.cluster_cidr, factory=f),
            "root-ca-cert-publisher": lambda c: RootCACertPublisher(c, f, clk, o.root_ca,
                                                                  self._recorder("root-ca-cert-publisher")),
            "clusterrole-aggregation": lambda c: ClusterRoleAggregationController(
                c, f, clk, self._recorder("clusterrole-aggregation-controller")),
            "disruption": lambda c: DisruptionController(c, f, clk, self._recorder("controllermanager")),
        }
        for name, build in builders.items():
            if name in o.enabled and (name != "root-ca-cert-publisher" or o.root_ca):
                self.controllers[name] = build(self.client.with_rate_limiter(bucket(o.rate_limit, clk)))

    async def _run_one(self, name: str, ctrl: Any) -> None:
        delay = 1.0
        while True:
            try:
                await ctrl.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("controller %s crashed; restarting in %.0fs", name, delay)
                await self.clock.sleep(delay)
                delay = min(delay * 2, 60.0)

    async def run(self) -> None:
        """Run every controller and the informers until cancelled."""
        self.factory.start()
        tasks = [asyncio.ensure_future(self._run_one(n, c)) for n, c in self.controllers.items()]
        for _ in range(3):  # informers that controllers register as they start
            await asyncio.sleep(0)
        self.factory.start()
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.factory.shutdown()
            # pending events go with their controllers (none may reach an API server shutting down)
            await asyncio.gather(*(c.recorder.close() for c in self.controllers.values()))
