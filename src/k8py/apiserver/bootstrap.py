"""What a fresh cluster has before anyone writes: system namespaces, the `kubernetes`
Service (first address of the service CIDR, port 443 -> the API server) with its
Endpoints and EndpointSlice, a `default` ServiceAccount in each namespace, Kubernetes'
bootstrap RBAC policy (`bootstrappolicy`) and the two system PriorityClasses.

Idempotent: run at every start; existing objects are kept, the `kubernetes`
endpoints are corrected to the current advertise address and port.
`KubernetesServiceKeeper` recreates the `kubernetes` Service, Endpoints and
EndpointSlice when one is deleted (as kube-apiserver's bootstrap controller does).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from k8py.api import resources
from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.api.wellknown import (
    LABEL_MANAGED_BY,
    LABEL_SERVICE_NAME,
    NAMESPACE_DEFAULT,
    NAMESPACE_NODE_LEASE,
    NAMESPACE_PUBLIC,
    NAMESPACE_SYSTEM,
)
from k8py.apiserver import apiservices, bootstrappolicy, controllerpolicy, priority, storage
from k8py.apiserver.config import ApiServerConfig
from k8py.apiserver.errors import StatusError
from k8py.apiserver.registry import Registry, WriteOptions

log = logging.getLogger(__name__)
SYSTEM_NAMESPACES = (NAMESPACE_DEFAULT, NAMESPACE_SYSTEM, NAMESPACE_PUBLIC, NAMESPACE_NODE_LEASE)
MANAGER = "kube-apiserver"


def _res(group: str, plural: str) -> Resource:
    r = resources.lookup(group, plural)
    assert r is not None, plural
    return r


def kubernetes_service_ip(config: ApiServerConfig) -> str:
    return str(ipaddress.ip_network(config.service_cidr, strict=False).network_address + 1)


async def _ensure(reg: Registry, r: Resource, obj: Obj) -> None:
    """Create `obj` unless it exists. Reading first keeps a restart cheap: an existing
    object is not defaulted or validated (which would load the OpenAPI schemas)."""
    md = obj["metadata"]
    if await reg.store.get(storage.key(r, md.get("namespace"), md["name"])) is not None:
        return
    try:
        await reg.create(r, obj["metadata"].get("namespace"), obj, WriteOptions(field_manager=MANAGER))
    except StatusError as e:
        if e.reason != "AlreadyExists":
            raise


async def _upsert(reg: Registry, r: Resource, obj: Obj, fields: tuple[str, ...]) -> None:
    md = obj["metadata"]
    kv = await reg.store.get(storage.key(r, md.get("namespace"), md["name"]))
    if kv is None:
        await _ensure(reg, r, obj)
        return
    cur = storage.from_kv(r, kv)
    if all(cur.get(f) == obj.get(f) for f in fields):
        return
    for f in fields:
        cur[f] = obj[f]
    await reg.update(r, md.get("namespace"), md["name"], cur, WriteOptions(field_manager=MANAGER))


async def ensure_service_account(reg: Registry, namespace: str) -> None:
    await _ensure(reg, _res("", "serviceaccounts"), {
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "default", "namespace": namespace}})


async def bootstrap(reg: Registry, config: ApiServerConfig) -> None:
    ns = _res("", "namespaces")
    for name in SYSTEM_NAMESPACES:
        await _ensure(reg, ns, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    # Namespaces created before a crash may lack their ServiceAccount.
    for kv in (await reg.store.list(storage.prefix(ns))).items:
        obj = storage.from_kv(ns, kv)
        if not obj["metadata"].get("deletionTimestamp"):
            await ensure_service_account(reg, obj["metadata"]["name"])
    await ensure_policy(reg)
    await priority.ensure_system_classes(reg)
    await ensure_kubernetes_service(reg, config)
    await apiservices.ensure(reg)


async def ensure_kubernetes_service(reg: Registry, config: ApiServerConfig,
                                    servers: list[tuple[str, int]] | None = None) -> None:
    """The `kubernetes` Service, and its endpoints once the port is known."""
    ip = kubernetes_service_ip(config)
    await _ensure(reg, _res("", "services"), {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": NAMESPACE_DEFAULT,
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": ip, "sessionAffinity": "None",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                            "targetPort": config.port or 6443}]},
    })
    if config.port:
        await ensure_endpoints(reg, config, servers)
    else:
        log.info("the API server's port is not known yet: the kubernetes endpoints wait for it")


async def ensure_policy(reg: Registry) -> None:
    """Kubernetes' bootstrap ClusterRoles and ClusterRoleBindings, each created if missing."""
    for obj in [*bootstrappolicy.cluster_roles(), *controllerpolicy.controller_roles()]:
        await _ensure(reg, _res("rbac.authorization.k8s.io", "clusterroles"), obj)
    for obj in [*bootstrappolicy.cluster_role_bindings(), *controllerpolicy.controller_role_bindings()]:
        await _ensure(reg, _res("rbac.authorization.k8s.io", "clusterrolebindings"), obj)


async def _retry_conflicts(write: Callable[[], Awaitable[None]]) -> None:
    """Run a read-modify-write again while another writer (a controller, another server)
    changed the object in between (409): each attempt reads the current object."""
    for attempt in range(20):
        try:
            await write()
            return
        except StatusError as e:
            if e.code != 409 or attempt == 19:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))


async def ensure_endpoints(reg: Registry, config: ApiServerConfig,
                           servers: list[tuple[str, int]] | None = None) -> None:
    """The `kubernetes` Service's targetPort, Endpoints and EndpointSlice point at `servers`
    (default: advertise_address:port alone; each write retried on conflict)."""
    await set_target_port(reg, config)
    await write_endpoints(reg, config, servers or [(config.advertise_address, config.port)])


async def write_endpoints(reg: Registry, config: ApiServerConfig, servers: list[tuple[str, int]]) -> None:
    """The `kubernetes` Endpoints and EndpointSlice(s) name exactly `servers` (address, port):
    one subset per port; one slice per port, `kubernetes` for the lowest and
    `kubernetes-<port>` for the others (servers on one machine differ by port); slices of
    ports no server uses any more are deleted."""
    by_port: dict[int, list[str]] = {}
    for address, port in sorted(set(servers)):
        by_port.setdefault(port, []).append(address)
    ports = sorted(by_port)
    await _retry_conflicts(lambda: _upsert(reg, _res("", "endpoints"), {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": NAMESPACE_DEFAULT,
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": a} for a in by_port[p]],
                     "ports": [{"name": "https", "port": p, "protocol": "TCP"}]} for p in ports],
    }, ("subsets",)))
    names = {p: "kubernetes" if i == 0 else f"kubernetes-{p}" for i, p in enumerate(ports)}
    for p in ports:
        await _retry_conflicts(functools.partial(_upsert, reg, _res("discovery.k8s.io", "endpointslices"), {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": names[p], "namespace": NAMESPACE_DEFAULT,
                         "labels": {LABEL_SERVICE_NAME: "kubernetes",
                                    LABEL_MANAGED_BY: "endpointslicemirroring-controller.k8s.io"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in by_port[p]],
            "ports": [{"name": "https", "port": p, "protocol": "TCP"}],
        }, ("endpoints", "ports")))
    await _drop_slices(reg, set(names.values()))


async def _drop_slices(reg: Registry, keep: set[str]) -> None:
    """Delete the `kubernetes-<port>` slices of ports no server serves on any more."""
    r = _res("discovery.k8s.io", "endpointslices")
    for kv in (await reg.store.list(storage.prefix(r, NAMESPACE_DEFAULT) + "kubernetes-")).items:
        obj = storage.from_kv(r, kv)
        name = obj["metadata"]["name"]
        labels = obj["metadata"].get("labels") or {}
        if name not in keep and labels.get(LABEL_SERVICE_NAME) == "kubernetes" and name[11:].isdigit():
            try:
                await reg.store.delete(kv.key, expected_revision=kv.mod_revision)
            except Exception:  # noqa: BLE001 - gone or changed meanwhile: the next pass decides again
                pass


async def set_target_port(reg: Registry, config: ApiServerConfig) -> None:
    """The `kubernetes` Service's targetPort is this server's port (retried on conflict)."""
    await _retry_conflicts(lambda: _service_target_port(reg, config))


async def _service_target_port(reg: Registry, config: ApiServerConfig) -> None:
    svc_res = _res("", "services")
    kv = await reg.store.get(storage.key(svc_res, NAMESPACE_DEFAULT, "kubernetes"))
    if kv is not None:
        svc = storage.from_kv(svc_res, kv)
        ports = (svc.get("spec") or {}).get("ports") or []
        if ports and isinstance(ports[0], dict) and ports[0].get("targetPort") != config.port:
            ports[0]["targetPort"] = config.port
            await reg.update(svc_res, NAMESPACE_DEFAULT, "kubernetes", svc, WriteOptions(field_manager=MANAGER))


class KubernetesServiceKeeper:
    """Recreates the `kubernetes` Service (and its endpoints) when one is deleted.

    `observe` is a listener of the services, endpoints and endpointslices watch caches; a
    deletion of a `default/kubernetes` key wakes a task that runs `ensure_kubernetes_service`
    (idempotent), retrying after a failure."""

    def __init__(self, reg: Registry, config: ApiServerConfig) -> None:
        self.reg = reg
        self.config = config
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.servers: Callable[[], list[tuple[str, int]]] = list  # the live servers, when known (serverleases)

    def observe(self, e: Any) -> None:
        if e.type == "DELETE" and e.key.endswith(f"/{NAMESPACE_DEFAULT}/kubernetes"):
            self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="kubernetes-service")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await ensure_kubernetes_service(self.reg, self.config, self.servers() or None)
            except Exception:
                log.exception("recreating the kubernetes Service failed; retrying")
                await asyncio.sleep(1.0)
                self._wake.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
