"""Runtime configs (sandbox and container) from a pod spec, as the kubelet's
kuberuntime builds CRI requests.

DNS: ClusterFirst (the default; ClusterFirstWithHostNet for hostNetwork pods)
points at the cluster DNS with search `<ns>.svc.<domain> svc.<domain> <domain>`
and `ndots:5`; a hostNetwork pod with plain ClusterFirst and `Default` use the
host's resolv.conf; `None` takes only `dnsConfig`, which is merged in every case.
Hostname is `spec.hostname` or the pod name (the FQDN of `subdomain` is not in /etc/hosts yet).
Resources: limits.memory -> memory limit, limits.cpu -> CFS quota, requests.cpu
(or limits.cpu when no request) -> shares. Invariant: pure functions of their input.
"""

from __future__ import annotations

from dataclasses import dataclass

from k8py.api.quantity import to_int, to_milli
from k8py.api.types import Obj
from k8py.api.wellknown import LABEL_KUBERNETES_CONTAINER_NAME, NAMESPACE_DEFAULT
from k8py.runtime.protocol import ContainerConfig, DNSConfig, Mount, PodSandboxConfig

LABEL_POD_NAME = "io.kubernetes.pod.name"
LABEL_POD_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_POD_UID = "io.kubernetes.pod.uid"
LABEL_CONTAINER_KIND = "k8py.io/container-kind"  # "init" | "regular"
LABEL_CONTAINER_HASH = "k8py.io/container-hash"  # of the container's spec: a change restarts it


def container_hash(c: Obj) -> str:
    """A hash of the container's spec (as the kubelet's HashContainer): another image,
    command, env... means another container. Its resources and resizePolicy are left out:
    they change in place (pods/resize, kubelet/resize.py)."""
    import hashlib
    import json

    c = {k: v for k, v in c.items() if k not in ("resources", "resizePolicy")}
    return hashlib.sha256(json.dumps(c, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


@dataclass
class ClusterSettings:
    cluster_dns: str = "10.43.0.10"
    cluster_domain: str = "cluster.local"
    log_root: str = "/var/log/pods"


def pod_labels(pod: Obj) -> dict[str, str]:
    md = pod["metadata"]
    return {LABEL_POD_NAME: md["name"], LABEL_POD_NAMESPACE: md.get("namespace") or NAMESPACE_DEFAULT,
            LABEL_POD_UID: str(md["uid"])}


def dns_config(pod: Obj, s: ClusterSettings) -> DNSConfig | None:
    spec = pod.get("spec") or {}
    ns = pod["metadata"].get("namespace") or NAMESPACE_DEFAULT
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host_net = bool(spec.get("hostNetwork"))
    extra = spec.get("dnsConfig") or {}
    if policy == "None":
        base = DNSConfig()
    elif policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not host_net):
        d = s.cluster_domain
        base = DNSConfig([s.cluster_dns], [f"{ns}.svc.{d}", f"svc.{d}", d], ["ndots:5"])
    else:  # Default, or ClusterFirst on the host network
        if not extra:
            return None
        base = host_dns()
    base.servers += [x for x in extra.get("nameservers") or [] if x not in base.servers]
    base.searches += [x for x in extra.get("searches") or [] if x not in base.searches]
    opts = {o.split(":")[0]: o for o in base.options}
    for o in extra.get("options") or []:
        name = o.get("name", "")
        opts[name] = f"{name}:{o['value']}" if o.get("value") is not None else name
    base.options = list(opts.values())
    return base


def host_dns() -> DNSConfig:
    d = DNSConfig()
    try:
        lines = open("/etc/resolv.conf").read().splitlines()
    except OSError:
        return d
    for line in lines:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            d.servers.append(parts[1])
        elif parts[0] == "search":
            d.searches += parts[1:]
        elif parts[0] == "options":
            d.options += parts[1:]
    return d


def sandbox_config(pod: Obj, s: ClusterSettings) -> PodSandboxConfig:
    md = pod["metadata"]
    spec = pod.get("spec") or {}
    ns = md.get("namespace") or NAMESPACE_DEFAULT
    hostname = spec.get("hostname") or md["name"]
    extra: list[tuple[str, str]] = []
    for ha in spec.get("hostAliases") or []:
        extra.append((ha.get("ip", ""), " ".join(ha.get("hostnames") or [])))
    return PodSandboxConfig(
        name=md["name"], namespace=ns, uid=str(md["uid"]), hostname=hostname[:63], labels=pod_labels(pod),
        annotations=dict(md.get("annotations") or {}), dns=dns_config(pod, s),
        host_network=bool(spec.get("hostNetwork")),
        log_directory=pod_log_dir(pod, s), extra_hosts=extra)


def _cpu_shares_millis(res: Obj) -> int:
    req = (res.get("requests") or {}).get("cpu") or (res.get("limits") or {}).get("cpu")
    return to_milli(req) if req else 0


def pod_log_dir(pod: Obj, s: ClusterSettings) -> str:
    md = pod["metadata"]
    return f"{s.log_root}/{md.get('namespace') or 'default'}_{md['name']}_{md['uid']}"


def container_config(pod: Obj, c: Obj, *, image: str, env: list[tuple[str, str]], mounts: list[Mount],
                     attempt: int, kind: str, command: list[str] | None, args: list[str] | None,
                     log_dir: str = "") -> ContainerConfig:
    res = c.get("resources") or {}
    limits = res.get("limits") or {}
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    sc = c.get("securityContext") or {}
    caps = sc.get("capabilities") or {}
    run_as_user = sc.get("runAsUser", psc.get("runAsUser"))
    run_as_group = sc.get("runAsGroup", psc.get("runAsGroup"))
    labels = {**pod_labels(pod), LABEL_KUBERNETES_CONTAINER_NAME: c["name"], LABEL_CONTAINER_KIND: kind,
              LABEL_CONTAINER_HASH: container_hash(c)}
    return ContainerConfig(
        name=c["name"], image=image, command=command, args=args, env=env, working_dir=c.get("workingDir") or "",
        mounts=mounts,
        memory_limit_bytes=to_int(limits["memory"]) if limits.get("memory") else 0,
        cpu_limit_millis=to_milli(limits["cpu"]) if limits.get("cpu") else 0,
        cpu_request_millis=_cpu_shares_millis(res),
        run_as_user=int(run_as_user) if run_as_user is not None else None,
        run_as_group=int(run_as_group) if run_as_group is not None else None,
        privileged=bool(sc.get("privileged")), read_only_rootfs=bool(sc.get("readOnlyRootFilesystem")),
        cap_add=list(caps.get("add") or []), cap_drop=list(caps.get("drop") or []),
        tty=bool(c.get("tty")), stdin=bool(c.get("stdin")), stdin_once=bool(c.get("stdinOnce")),
        attempt=attempt, labels=labels,
        annotations={"io.kubernetes.container.restartCount": str(attempt)},
        log_path=f"{log_dir}/{c['name']}/{attempt}.log" if log_dir else "",
        termination_message_path=c.get("terminationMessagePath") or "/dev/termination-log")


def qos_class(pod: Obj) -> str:
    """Guaranteed / Burstable / BestEffort, as Kubernetes' GetPodQOS."""
    cs = list((pod.get("spec") or {}).get("containers") or []) + list(
        (pod.get("spec") or {}).get("initContainers") or [])
    any_set = False
    guaranteed = True
    for c in cs:
        res = c.get("resources") or {}
        req = {k: v for k, v in (res.get("requests") or {}).items() if k in ("cpu", "memory")}
        lim = {k: v for k, v in (res.get("limits") or {}).items() if k in ("cpu", "memory")}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim:
                guaranteed = False
            elif r in req and to_milli(req[r]) != to_milli(lim[r]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
