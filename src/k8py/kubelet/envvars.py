"""A container's environment from its pod spec, as the kubelet builds it.

Order (Kubernetes'): `envFrom` sources first (configMapRef/secretRef, each key
prefixed, invalid names skipped), then `env` entries in order, later ones winning.
`value` strings expand `$(VAR)` with the variables defined so far (and `$$` escapes
to `$`); an unknown `$(VAR)` stays as written. `valueFrom` reads secretKeyRef,
configMapKeyRef (honouring `optional`), fieldRef and resourceFieldRef.
Invariant: a missing non-optional Secret/ConfigMap or key raises ContainerConfigError
with Kubernetes' message; secret values are never written anywhere but the result.
"""

from __future__ import annotations

import base64
import math
import re
from collections import ChainMap
from collections.abc import Awaitable, Callable, Mapping

from k8py.api.quantity import parse_quantity
from k8py.api.types import Obj
from k8py.api.wellknown import NAMESPACE_DEFAULT
from k8py.kubelet.errors import ContainerConfigError

# (kind "secrets"|"configmaps", namespace, name) -> the object or None
Lookup = Callable[[str, str, str], Awaitable[Obj | None]]

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def expand(s: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: $$ -> $, $(KNOWN) -> value, otherwise kept."""
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "$" and i + 1 < len(s):
            n = s[i + 1]
            if n == "$":
                out.append("$")
                i += 2
                continue
            if n == "(":
                end = s.find(")", i + 2)
                if end != -1:
                    name = s[i + 2:end]
                    if name in env:
                        out.append(env[name])
                    else:
                        out.append(s[i:end + 1])
                    i = end + 1
                    continue
        out.append(c)
        i += 1
    return "".join(out)


def _data(obj: Obj, kind: str) -> dict[str, str]:
    if kind == "secrets":
        out = {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
        out.update(obj.get("stringData") or {})
        return out
    out = dict(obj.get("data") or {})
    for k, v in (obj.get("binaryData") or {}).items():
        out[k] = base64.b64decode(v).decode(errors="replace")
    return out


def field_ref(pod: Obj, path: str, pod_ip: str = "", host_ip: str = "") -> str:
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    m = re.match(r"^metadata\.(labels|annotations)\['(.+)'\]$", path)
    if m:
        return str((md.get(m.group(1)) or {}).get(m.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        d = md.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(d.items()))
    simple = {
        "metadata.name": md.get("name", ""), "metadata.namespace": md.get("namespace", ""),
        "metadata.uid": md.get("uid", ""), "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip, "status.hostIP": host_ip, "status.podIPs": pod_ip, "status.hostIPs": host_ip,
    }
    if path not in simple:
        raise ContainerConfigError(f"unsupported fieldRef {path!r}")
    return str(simple[path] or "")


def resource_field(container: Obj, ref: Obj, node_allocatable: dict[str, str] | None = None) -> str:
    res = ref.get("resource", "")
    kind, _, name = res.partition(".")
    resources = container.get("resources") or {}
    value = (resources.get(kind) or {}).get(name)
    if value is None and kind == "limits":
        value = (node_allocatable or {}).get(name)  # Kubernetes: the node's allocatable
    if value is None:
        value = "0"
    divisor = parse_quantity(ref.get("divisor") or "1")
    if divisor == 0:
        divisor = parse_quantity("1")
    return str(math.ceil(parse_quantity(value) / divisor))


async def build_env(pod: Obj, container: Obj, lookup: Lookup, *, pod_ip: str = "", host_ip: str = "",
                    node_allocatable: dict[str, str] | None = None,
                    service_env: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """The container's variables; `service_env` (`serviceenv.service_env`) come after its
    own, which win, and are seen by its `$(VAR)` references."""
    ns = (pod.get("metadata") or {}).get("namespace") or NAMESPACE_DEFAULT
    env: dict[str, str] = {}
    visible: Mapping[str, str] = ChainMap(env, dict(service_env or {}))
    cache: dict[tuple[str, str], Obj | None] = {}

    async def get(kind: str, name: str) -> Obj | None:
        if (kind, name) not in cache:
            cache[(kind, name)] = await lookup(kind, ns, name)
        return cache[(kind, name)]

    for src in container.get("envFrom") or []:
        prefix = src.get("prefix") or ""
        for key, kind, what in (("configMapRef", "configmaps", "configmap"), ("secretRef", "secrets", "secret")):
            ref = src.get(key)
            if not ref:
                continue
            obj = await get(kind, ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ContainerConfigError(f'{what} "{ref.get("name", "")}" not found')
            for k, v in _data(obj, kind).items():
                if _ENV_NAME.match(prefix + k):
                    env[prefix + k] = v

    for e in container.get("env") or []:
        name = e.get("name", "")
        if "valueFrom" not in e or e.get("value") is not None:
            env[name] = expand(str(e.get("value") or ""), visible)
            continue
        vf = e["valueFrom"] or {}
        if "fieldRef" in vf:
            env[name] = field_ref(pod, (vf["fieldRef"] or {}).get("fieldPath", ""), pod_ip, host_ip)
        elif "resourceFieldRef" in vf:
            env[name] = resource_field(container, vf["resourceFieldRef"] or {}, node_allocatable)
        else:
            for key, kind, what in (("configMapKeyRef", "configmaps", "configmap"),
                                    ("secretKeyRef", "secrets", "secret")):
                ref = vf.get(key)
                if not ref:
                    continue
                obj = await get(kind, ref.get("name", ""))
                optional = bool(ref.get("optional"))
                if obj is None:
                    if optional:
                        break
                    raise ContainerConfigError(f'{what} "{ref.get("name", "")}" not found')
                data = _data(obj, kind)
                if ref.get("key") not in data:
                    if optional:
                        break
                    raise ContainerConfigError(
                        f"couldn't find key {ref.get('key')} in {'Secret' if kind == 'secrets' else 'ConfigMap'} "
                        f"{ns}/{ref.get('name', '')}")
                env[name] = data[ref["key"]]
                break
    return list(env.items()) + [(k, v) for k, v in (service_env or {}).items() if k not in env]


def expand_args(args: list[str] | None, env: list[tuple[str, str]]) -> list[str] | None:
    if args is None:
        return None
    d = dict(env)
    return [expand(a, d) for a in args]
