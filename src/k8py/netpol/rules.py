"""The nftables table of one node's NetworkPolicies, rendered from the cluster's state.

Pure: `render(state, node, table)` turns NetworkPolicies, Pods and Namespaces into one
`nft -f` script that replaces the table `inet <table>` atomically (same inputs, same text).

  map ingress-pods / egress-pods   isolated pod IP of this node -> jump to its policy-set chain
  chain egress       (hook forward, priority 10)  ct established,related accept; ip saddr vmap @egress-pods
  chain egress-node  (hook input,   priority 10)  the same, for pods' traffic to the node itself (DNS)
  chain ingress      (hook forward, priority 20)  ct established,related accept; ip daddr vmap @ingress-pods
  chain in-<h>/eg-<h>  one per distinct set of policies: jump to each policy's chain, then drop
  chain pi-<h>/pe-<h>  one per policy and direction: a rule per (policy rule, kind of port) that accepts

Kubernetes' semantics: a pod is isolated for a direction when a policy of its namespace
selects it with that policyType; then its traffic passes if some selecting policy allows it
(policies add up); established and related traffic always passes; what the node itself sends
to its pods is not filtered (output hook: kubelet probes). The forward hook runs after the
service DNAT (and, with br_netfilter, sees bridged pod-to-pod frames too), so Service traffic
is judged by pod addresses. Only this node's pods are filtered; peers are any pod of the
cluster, or address blocks (cidr minus except). Named ports resolve per pod: ingress against
the selected pod's containerPorts, egress against the destination pod's. IPv4 only.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from k8py.api.selectors import SelectorError, label_selector_from_dict
from k8py.api.types import Obj

Labels = Mapping[str, str]
Net = ipaddress.IPv4Network


@dataclass(frozen=True)
class PodInfo:
    """What the rules need of a pod: where it is, what it is called, its address and ports."""

    namespace: str
    name: str
    labels: Labels
    ip: str
    node: str
    ports: tuple[tuple[str, str, int], ...] = ()  # (name, protocol, containerPort) of named ports


@dataclass
class State:
    policies: list[Obj] = field(default_factory=list)
    pods: list[PodInfo] = field(default_factory=list)
    namespaces: Mapping[str, Labels] = field(default_factory=dict)  # name -> labels


def pod_info(pod: Obj) -> PodInfo | None:
    """A pod with an IPv4 address on the pod network that is not finished; else None."""
    md, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    if spec.get("hostNetwork") or status.get("phase") in ("Succeeded", "Failed"):
        return None
    ips = [str(p.get("ip")) for p in status.get("podIPs") or [] if isinstance(p, dict)] or [str(status.get("podIP"))]
    ip = next((i for i in ips if _is_v4(i)), None)
    if ip is None:
        return None
    ports = tuple((str(p["name"]), str(p.get("protocol") or "TCP"), int(p["containerPort"]))
                  for c in spec.get("containers") or [] for p in c.get("ports") or []
                  if isinstance(p, dict) and p.get("name") and p.get("containerPort"))
    return PodInfo(str(md.get("namespace") or ""), str(md.get("name") or ""), dict(md.get("labels") or {}),
                   ip, str(spec.get("nodeName") or ""), ports)


def _is_v4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


def _h(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _matches(sel: Any, labels: Labels) -> bool:
    """A LabelSelector (a dict) selects `labels`; an unusable selector selects nothing."""
    try:
        return bool(label_selector_from_dict(sel if isinstance(sel, dict) else {}).matches(labels))
    except (SelectorError, TypeError, ValueError):
        return False


def policy_key(policy: Obj) -> str:
    md = policy.get("metadata") or {}
    return f"{md.get('namespace')}/{md.get('name')}"


def policy_types(policy: Obj) -> list[str]:
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes")
    if types:
        return [str(t) for t in types]
    return ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def selected(policy: Obj, pods: Iterable[PodInfo]) -> list[PodInfo]:
    """The pods a policy applies to: its namespace's pods matching spec.podSelector."""
    ns = (policy.get("metadata") or {}).get("namespace")
    sel = (policy.get("spec") or {}).get("podSelector") or {}
    return [p for p in pods if p.namespace == ns and _matches(sel, p.labels)]


def _peer_pods(peer: Obj, ns: str, state: State) -> list[PodInfo]:
    pod_sel, ns_sel = peer.get("podSelector"), peer.get("namespaceSelector")
    if ns_sel is None:
        namespaces = {ns}
    else:
        namespaces = {n for n, labels in state.namespaces.items() if _matches(ns_sel, labels)}
    return [p for p in state.pods if p.namespace in namespaces and (pod_sel is None or _matches(pod_sel, p.labels))]


def _v4(text: Any) -> Net | None:
    try:
        net = ipaddress.ip_network(str(text), strict=False)
    except ValueError:
        return None
    return net if isinstance(net, ipaddress.IPv4Network) else None


def _block(ip_block: Obj) -> list[Net]:
    """cidr minus every except, as disjoint networks."""
    cidr = _v4(ip_block.get("cidr"))
    nets = [cidr] if cidr is not None else []
    for ex in (_v4(t) for t in ip_block.get("except") or []):
        if ex is None:
            continue
        kept: list[Net] = []
        for n in nets:
            if not n.overlaps(ex):
                kept.append(n)
            elif not n.subnet_of(ex):
                kept += n.address_exclude(ex)
        nets = kept
    return nets


def peer_addresses(peers: list[Obj] | None, ns: str, state: State) -> list[str] | None:
    """The addresses a rule's from/to admits, collapsed; None for everyone (no peers)."""
    if not peers:
        return None
    nets: list[Net] = []
    for peer in peers:
        if not isinstance(peer, dict):
            continue
        if peer.get("ipBlock") is not None:
            nets += _block(peer["ipBlock"] or {})
        else:
            nets += [ipaddress.IPv4Network(p.ip) for p in _peer_pods(peer, ns, state)]
    return [str(n) if n.prefixlen < 32 else str(n.network_address) for n in ipaddress.collapse_addresses(nets)]


def port_matches(ports: list[Obj] | None, named_pods: Iterable[PodInfo]) -> list[str] | None:
    """The nft matches for a rule's ports (one per kind: numbered, protocol only, named);
    None for every port. Named ports match `ip daddr . proto . port` of the pods having them."""
    if not ports:
        return None
    numbered: list[str] = []
    protos: list[str] = []
    named: set[tuple[str, str]] = set()
    for p in ports:
        if not isinstance(p, dict):
            continue
        proto = str(p.get("protocol") or "TCP")
        port = p.get("port")
        if port is None:
            protos.append(proto.lower())
        elif isinstance(port, int):
            end = p.get("endPort")
            numbered.append(f"{proto.lower()} . {port}" + (f"-{end}" if isinstance(end, int) and end > port else ""))
        else:
            named.add((str(port), proto))
    out = []
    if numbered:
        out.append("meta l4proto . th dport { " + ", ".join(sorted(set(numbered))) + " }")
    if protos:
        out.append("meta l4proto { " + ", ".join(sorted(set(protos))) + " }")
    elems = sorted({f"{pod.ip} . {proto.lower()} . {num}" for pod in named_pods
                    for (name, proto, num) in pod.ports if (name, proto) in named})
    if elems:
        out.append("ip daddr . meta l4proto . th dport { " + ", ".join(elems) + " }")
    return out


def policy_rules(policy: Obj, direction: str, targets: list[PodInfo], state: State) -> list[str]:
    """The accepting rules of one policy in one direction ("Ingress" or "Egress")."""
    ns = str((policy.get("metadata") or {}).get("namespace") or "")
    spec = policy.get("spec") or {}
    ingress = direction == "Ingress"
    out: list[str] = []
    for rule in spec.get("ingress" if ingress else "egress") or []:
        if not isinstance(rule, dict):
            continue
        addrs = peer_addresses(rule.get("from" if ingress else "to"), ns, state)
        if addrs is not None and not addrs:
            continue  # peers that are nobody
        peer = "" if addrs is None else f"ip {'saddr' if ingress else 'daddr'} {{ {', '.join(addrs)} }} "
        ports = port_matches(rule.get("ports"), targets if ingress else state.pods)
        if ports is None:
            out.append(f"{peer}accept")
        else:
            out += [f"{peer}{m} accept" for m in ports]
    return out


@dataclass
class _Direction:
    """The rendering of one direction: pod IP -> policy-set chain, and the chains."""

    prefix: str  # "in" / "eg"
    pods: dict[str, str] = field(default_factory=dict)
    chains: dict[str, list[str]] = field(default_factory=dict)


def _directions(state: State, node: str) -> dict[str, _Direction]:
    local = [p for p in state.pods if p.node == node]
    dirs = {"Ingress": _Direction("in"), "Egress": _Direction("eg")}
    applying: dict[str, dict[str, list[str]]] = {"Ingress": {}, "Egress": {}}  # direction -> pod ip -> chains
    for pol in sorted(state.policies, key=policy_key):
        targets = selected(pol, local)
        if not targets:
            continue
        for direction in policy_types(pol):
            if direction not in dirs:
                continue
            chain = f"p{dirs[direction].prefix[0]}-{_h(policy_key(pol))}"
            dirs[direction].chains[chain] = policy_rules(pol, direction, targets, state)
            for pod in targets:
                applying[direction].setdefault(pod.ip, []).append(chain)
    for direction, d in dirs.items():
        for ip, chains in applying[direction].items():
            name = f"{d.prefix}-{_h('|'.join(chains))}"
            d.chains.setdefault(name, [f"jump {c}" for c in chains] + ["drop"])
            d.pods[ip] = name
    return dirs


def _base(name: str, hook: str, prio: int, match: str, vmap: str, active: bool) -> list[str]:
    lines = [f"  chain {name} {{", f"    type filter hook {hook} priority {prio}; policy accept;"]
    if active:
        lines += ["    ct state established,related accept", f"    {match} vmap @{vmap}"]
    return lines + ["  }"]


def render(state: State, node: str, table: str) -> str:
    """The whole `nft -f` script that makes `inet <table>` what `state` asks on `node`."""
    dirs = _directions(state, node)
    ing, eg = dirs["Ingress"], dirs["Egress"]
    lines = [f"add table inet {table}", f"delete table inet {table}", f"table inet {table} {{"]
    for name, d in (("ingress-pods", ing), ("egress-pods", eg)):
        elems = ", ".join(f"{ip} : jump {c}" for ip, c in sorted(d.pods.items(), key=lambda kv: _ip_key(kv[0])))
        lines.append(f"  map {name} {{ type ipv4_addr : verdict;" + (f" elements = {{ {elems} }}" if elems else "")
                     + " }")
    lines += _base("egress", "forward", 10, "ip saddr", "egress-pods", bool(eg.pods))
    lines += _base("egress-node", "input", 10, "ip saddr", "egress-pods", bool(eg.pods))
    lines += _base("ingress", "forward", 20, "ip daddr", "ingress-pods", bool(ing.pods))
    for d in (ing, eg):
        for name in sorted(d.chains):
            lines += [f"  chain {name} {{"] + [f"    {r}" for r in d.chains[name]] + ["  }"]
    return "\n".join(lines + ["}"]) + "\n"


def _ip_key(ip: str) -> int:
    return int(ipaddress.IPv4Address(ip))


def delete_script(table: str) -> str:
    return f"add table inet {table}\ndelete table inet {table}\n"
