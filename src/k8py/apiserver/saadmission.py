"""The ServiceAccount admission plugin, as kube-apiserver's (on pod creation).

A new pod runs as `spec.serviceAccountName` (defaulted to `default`), which must exist:
else 403 `pods "<name>" is forbidden: error looking up service account <ns>/<sa>:
serviceaccount "<sa>" not found`. Unless `automountServiceAccountToken` is false (the
pod's setting wins over the account's), every init container and container without a
mount at /var/run/secrets/kubernetes.io/serviceaccount gets one, read-only, of a
projected volume `kube-api-access-<5 random>`: a serviceAccountToken (3607 s, path
`token`), the `kube-root-ca.crt` ConfigMap's `ca.crt` and the namespace (downward API).
A pod without imagePullSecrets gets its account's. Mirror pods are left alone.

Invariant: `admit` changes only the pod it is given; it reads, never writes, the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from k8py.api import resources
from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.api.wellknown import (
    ANNOTATION_MIRROR_POD,
    DEFAULT_SERVICE_ACCOUNT,
    KUBELET_TOKEN_EXPIRATION,
    ROOT_CA_CONFIGMAP,
    ROOT_CA_KEY,
    SERVICE_ACCOUNT_MOUNT_PATH,
    SERVICE_ACCOUNT_VOLUME_PREFIX,
)
from k8py.apiserver import storage, strategy
from k8py.apiserver.errors import forbidden

if TYPE_CHECKING:
    from k8py.apiserver.registry import Registry


def token_volume_source() -> Obj:
    """The projected volume Kubernetes' admission adds (its TokenVolumeSource)."""
    return {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": KUBELET_TOKEN_EXPIRATION, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": ROOT_CA_KEY, "path": ROOT_CA_KEY}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}


async def admit(reg: Registry, r: Resource, pod: Obj) -> None:
    """Registry admission hook: pods only."""
    if r.group != "" or r.plural != "pods":
        return
    md = pod["metadata"]
    if ANNOTATION_MIRROR_POD in (md.get("annotations") or {}):
        return
    spec = pod.setdefault("spec", {})
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = DEFAULT_SERVICE_ACCOUNT
    spec["serviceAccount"] = spec["serviceAccountName"]
    sa = await _service_account(reg, r, md, spec["serviceAccountName"])
    if _automount(sa, spec):
        mount_token(spec)
    if not spec.get("imagePullSecrets") and sa.get("imagePullSecrets"):
        spec["imagePullSecrets"] = [{"name": s.get("name", "")} for s in sa["imagePullSecrets"]
                                    if isinstance(s, dict)]


async def _service_account(reg: Registry, r: Resource, md: Obj, name: str) -> Obj:
    sa_res = resources.lookup("", "serviceaccounts")
    assert sa_res is not None
    ns = md.get("namespace") or ""
    kv = await reg.store.get(storage.key(sa_res, ns, name))
    if kv is None:
        raise forbidden(r.plural, md.get("name") or md.get("generateName") or "",
                        f'error looking up service account {ns}/{name}: serviceaccount "{name}" not found')
    return storage.from_kv(sa_res, kv)


def _automount(sa: Obj, spec: Obj) -> bool:
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    if sa.get("automountServiceAccountToken") is not None:
        return bool(sa["automountServiceAccountToken"])
    return True


def mount_token(spec: Obj) -> None:
    """Mount the token volume in every container lacking a mount at the token path; add
    the volume (unless the pod has one) if any container got the mount."""
    vols: list[Any] = spec.get("volumes") or []
    name = next((v["name"] for v in vols if isinstance(v, dict)
                 and str(v.get("name", "")).startswith(SERVICE_ACCOUNT_VOLUME_PREFIX)), None)
    has_volume = name is not None
    name = name or strategy.generated_name(SERVICE_ACCOUNT_VOLUME_PREFIX)
    needed = False
    for kind in ("initContainers", "containers"):
        for c in spec.get(kind) or []:
            if not isinstance(c, dict):
                continue
            mounts = c.get("volumeMounts") or []
            if any(isinstance(m, dict) and m.get("mountPath") == SERVICE_ACCOUNT_MOUNT_PATH for m in mounts):
                continue
            c["volumeMounts"] = [*mounts, {"name": name, "readOnly": True, "mountPath": SERVICE_ACCOUNT_MOUNT_PATH}]
            needed = True
    if needed and not has_volume:
        spec["volumes"] = [*vols, {"name": name, "projected": token_volume_source()}]
