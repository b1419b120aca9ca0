"""Service environment variables of a container, as the kubelet sets them.

Every container gets `<NAME>_SERVICE_HOST`, `<NAME>_SERVICE_PORT[_<PORT NAME>]` and the
Docker-link `<NAME>_PORT...` variables of the `kubernetes` Service in `default` (always)
and, with `enableServiceLinks` (the default), of every Service of its namespace that has
a ClusterIP (a Service of the pod's namespace wins over the master one of the same name).
The container's own `env`/`envFrom` win over these; its `$(VAR)` references see them.

The Services come from the agent's informer (`ServiceLister`), as Kubernetes' kubelet
reads them from its service lister: a container start costs no API request. Until that
informer has listed once, no variables can be built (`ContainerConfigError`, Kubernetes'
wording), so a container never starts with a partial set.
"""

from __future__ import annotations

from typing import Protocol

from k8py.api.types import Obj
from k8py.api.wellknown import NAMESPACE_DEFAULT
from k8py.kubelet.errors import ContainerConfigError

MASTER_SERVICES = ("kubernetes",)


class ServiceLister(Protocol):
    """The Services a node knows (an informer's cache)."""

    @property
    def has_synced(self) -> bool: ...

    def get(self, namespace: str | None, name: str) -> Obj | None: ...

    def by_index(self, name: str, value: str) -> list[Obj]: ...


def _var(name: str) -> str:
    return name.replace("-", "_").upper()


def from_service(svc: Obj) -> dict[str, str]:
    """The variables of one Service (none without a ClusterIP), as Kubernetes' FromServices."""
    spec = svc.get("spec") or {}
    ip = spec.get("clusterIP") or ""
    ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
    if not ip or ip == "None" or not ports:
        return {}
    prefix = _var(svc["metadata"]["name"])
    out = {f"{prefix}_SERVICE_HOST": ip, f"{prefix}_SERVICE_PORT": str(ports[0].get("port"))}
    for p in ports:
        if p.get("name"):
            out[f"{prefix}_SERVICE_PORT_{_var(p['name'])}"] = str(p.get("port"))
    host = f"[{ip}]" if ":" in ip else ip
    for i, p in enumerate(ports):
        proto = str(p.get("protocol") or "TCP")
        url = f"{proto.lower()}://{host}:{p.get('port')}"
        if i == 0:
            out[f"{prefix}_PORT"] = url
        pp = f"{prefix}_PORT_{p.get('port')}_{proto.upper()}"
        out.update({pp: url, f"{pp}_PROTO": proto.lower(), f"{pp}_PORT": str(p.get("port")), f"{pp}_ADDR": ip})
    return out


def service_env(services: ServiceLister, pod: Obj) -> dict[str, str]:
    """The service variables of the pod's containers."""
    if not services.has_synced:
        raise ContainerConfigError("services have not yet been read at least once, cannot construct envvars")
    ns = pod["metadata"].get("namespace") or NAMESPACE_DEFAULT
    links = (pod.get("spec") or {}).get("enableServiceLinks", True) is not False
    chosen: dict[str, Obj] = {}
    if ns != NAMESPACE_DEFAULT or not links:
        for name in MASTER_SERVICES:
            svc = services.get(NAMESPACE_DEFAULT, name)
            if svc is not None:
                chosen[name] = svc
    if links:
        for svc in sorted(services.by_index("namespace", ns), key=lambda o: str(o["metadata"]["name"])):
            chosen[svc["metadata"]["name"]] = svc
    out: dict[str, str] = {}
    for svc in chosen.values():
        out.update(from_service(svc))
    return out
