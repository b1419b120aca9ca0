"""The nftables table of one node's NetworkPolicies, rendered from the cluster's state.

Pure: `build(state, node)` turns NetworkPolicies, Pods and Namespaces into the table as data;
`full(table)` is one `nft -f` script that replaces `inet <table>` atomically (same inputs, same
text), `diff(old, new)` one transaction that changes only what differs.

  set a-<h> / n-<h>                addresses, or address . protocol . port, one per distinct content
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
import json
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from k8py.api.selectors import SelectorError, label_selector_from_dict
from k8py.api.types import Obj

Labels = Mapping[str, str]
Span = tuple[int, int]  # an inclusive range of IPv4 addresses, as integers
LabelSet = frozenset[tuple[str, str]]


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


def policy_key(policy: Obj) -> str:
    md = policy.get("metadata") or {}
    return f"{md.get('namespace')}/{md.get('name')}"


def policy_types(policy: Obj) -> list[str]:
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes")
    if types:
        return [str(t) for t in types]
    return ["Ingress"] + (["Egress"] if spec.get("egress") else [])


_ByNamespace = dict[str, dict[LabelSet, list[PodInfo]]]  # namespace -> label set -> pods


class _Matcher:
    """Label selectors parsed once and matched once per distinct label set (pods of a
    Deployment share theirs), and peers resolved once per distinct rule, for one render."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._parsed: dict[str, Any] = {}
        self._memo: dict[tuple[str, frozenset[tuple[str, str]]], bool] = {}
        self.peers: dict[tuple[str, str], list[Span]] = {}  # (namespace, one peer as JSON) -> addresses
        self.groups_text: dict[tuple[str, str], list[str]] = {}  # (namespace, peers as JSON) -> addresses
        self._ints: dict[str, int] = {}
        self._by_ns: dict[int, tuple[Iterable[PodInfo], _ByNamespace]] = {}
        groups: dict[tuple[str, frozenset[tuple[str, str]]], list[PodInfo]] = {}
        for p in state.pods:
            groups.setdefault((p.namespace, frozenset(p.labels.items())), []).append(p)
        self.groups = groups

    def selector(self, sel: Any) -> Callable[[frozenset[tuple[str, str]]], bool]:
        """A LabelSelector (a dict) as a predicate on label sets; an unusable one selects nothing."""
        key = json.dumps(sel, sort_keys=True)
        if key not in self._parsed:
            try:
                self._parsed[key] = label_selector_from_dict(sel if isinstance(sel, dict) else {})
            except (SelectorError, TypeError, ValueError):
                self._parsed[key] = None
        parsed = self._parsed[key]

        def match(labels: frozenset[tuple[str, str]]) -> bool:
            hit = self._memo.get((key, labels))
            if hit is None:
                hit = self._memo[(key, labels)] = parsed is not None and bool(parsed.matches(dict(labels)))
            return hit
        return match

    def by_namespace(self, pods: Iterable[PodInfo]) -> _ByNamespace:
        """`pods` by namespace and label set (kept for the render: `pods` is always the same list)."""
        key = id(pods)
        if key not in self._by_ns:
            idx: _ByNamespace = {}
            for p in pods:
                idx.setdefault(p.namespace, {}).setdefault(frozenset(p.labels.items()), []).append(p)
            self._by_ns[key] = (pods, idx)
        return self._by_ns[key][1]

    def ip_int(self, ip: str) -> int:
        n = self._ints.get(ip)
        if n is None:
            n = self._ints[ip] = int(ipaddress.IPv4Address(ip))
        return n

    def pods(self, namespaces: set[str], sel: Any) -> list[PodInfo]:
        match = None if sel is None else self.selector(sel)
        return [p for (ns, labels), pods in self.groups.items()
                if ns in namespaces and (match is None or match(labels)) for p in pods]

    def namespaces(self, sel: Any) -> set[str]:
        match = self.selector(sel)
        return {n for n, labels in self.state.namespaces.items() if match(frozenset(labels.items()))}


def selected(policy: Obj, pods: Iterable[PodInfo], matcher: _Matcher | None = None) -> list[PodInfo]:
    """The pods a policy applies to: its namespace's pods matching spec.podSelector."""
    ns = str((policy.get("metadata") or {}).get("namespace"))
    sel = (policy.get("spec") or {}).get("podSelector") or {}
    m = matcher or _Matcher(State())
    match = m.selector(sel)
    return [p for labels, group in m.by_namespace(pods).get(ns, {}).items() if match(labels) for p in group]


def _v4(text: Any) -> Span | None:
    try:
        net = ipaddress.ip_network(str(text), strict=False)
    except ValueError:
        return None
    if not isinstance(net, ipaddress.IPv4Network):
        return None
    return int(net.network_address), int(net.broadcast_address)


def _block(ip_block: Obj) -> list[Span]:
    """cidr minus every except, as disjoint ranges."""
    cidr = _v4(ip_block.get("cidr"))
    spans = [cidr] if cidr is not None else []
    for ex in (_v4(t) for t in ip_block.get("except") or []):
        if ex is None:
            continue
        kept: list[Span] = []
        for lo, hi in spans:
            if ex[1] < lo or ex[0] > hi:
                kept.append((lo, hi))
                continue
            if lo < ex[0]:
                kept.append((lo, ex[0] - 1))
            if ex[1] < hi:
                kept.append((ex[1] + 1, hi))
        spans = kept
    return spans


def _ip(n: int) -> str:
    return socket.inet_ntoa(n.to_bytes(4, "big"))


def _span_text(lo: int, hi: int) -> str:
    if lo == hi:
        return _ip(lo)
    size = hi - lo + 1
    if size & (size - 1) == 0 and lo % size == 0:  # an aligned power of two: a CIDR
        return f"{_ip(lo)}/{32 - size.bit_length() + 1}"
    return f"{_ip(lo)}-{_ip(hi)}"


def _merge(spans: Iterable[Span]) -> list[str]:
    out: list[list[int]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [_span_text(lo, hi) for lo, hi in out]


def peer_addresses(peers: list[Obj] | None, ns: str, state: State, matcher: _Matcher | None = None) -> list[str] | None:
    """The addresses a rule's from/to admits, merged (addresses, CIDRs, ranges); None for
    everyone (no peers)."""
    if not peers:
        return None
    m = matcher or _Matcher(state)
    return _merge(span for peer in peers if isinstance(peer, dict) for span in _resolve(peer, ns, m))


def peer_groups(peers: list[Obj] | None, ns: str, state: State,
                matcher: _Matcher | None = None) -> list[list[str]] | None:
    """A rule's peers as up to two merged address lists, the selected pods' and the address
    blocks' (so that rules naming the same pods share one set whatever their blocks); empty
    ones left out; None for everyone (no peers)."""
    if not peers:
        return None
    m = matcher or _Matcher(state)
    out = []
    for blocks in (False, True):
        part = [p for p in peers if isinstance(p, dict) and (p.get("ipBlock") is not None) == blocks]
        key = ("" if blocks else ns, json.dumps(part, sort_keys=True))
        if key not in m.groups_text:
            spans: list[Span] = []
            for peer in part:
                pkey = (ns, json.dumps(peer, sort_keys=True))
                if pkey not in m.peers:
                    m.peers[pkey] = _resolve(peer, ns, m)
                spans += m.peers[pkey]
            m.groups_text[key] = _merge(spans)
        if m.groups_text[key]:
            out.append(m.groups_text[key])
    return out


def _resolve(peer: Obj, ns: str, m: _Matcher) -> list[Span]:
    if peer.get("ipBlock") is not None:
        return _block(peer["ipBlock"] or {})
    ns_sel = peer.get("namespaceSelector")
    namespaces = {ns} if ns_sel is None else m.namespaces(ns_sel)
    ints = [m.ip_int(p.ip) for p in m.pods(namespaces, peer.get("podSelector"))]
    return [(n, n) for n in ints]


@dataclass
class _Sets:
    """Named sets of the table, one per distinct content (policies often share peers)."""

    decls: dict[str, str] = field(default_factory=dict)  # name -> declaration body

    def ref(self, elems: list[str], kind: str) -> str:
        """`@name` of the set holding `elems`; kind "a" (addresses) or "n" (address . proto . port)."""
        body = ", ".join(elems)
        name = f"{kind}-{_h(body)}"
        if name not in self.decls:
            typ = "ipv4_addr; flags interval" if kind == "a" else "ipv4_addr . inet_proto . inet_service"
            self.decls[name] = f"type {typ}; elements = {{ {body} }}"
        return "@" + name


def port_matches(ports: list[Obj] | None, named_pods: Iterable[PodInfo], sets: _Sets | None = None) -> list[str] | None:
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
                    for (name, proto, num) in pod.ports if (name, proto) in named}) if named else []
    if elems:
        match = sets.ref(elems, "n") if sets is not None else "{ " + ", ".join(elems) + " }"
        out.append(f"ip daddr . meta l4proto . th dport {match}")
    return out


def policy_rules(policy: Obj, direction: str, targets: list[PodInfo], state: State,
                 matcher: _Matcher | None = None, sets: _Sets | None = None) -> list[str]:
    """The accepting rules of one policy in one direction ("Ingress" or "Egress")."""
    ns = str((policy.get("metadata") or {}).get("namespace") or "")
    spec = policy.get("spec") or {}
    ingress = direction == "Ingress"
    out: list[str] = []
    for rule in spec.get("ingress" if ingress else "egress") or []:
        if not isinstance(rule, dict):
            continue
        groups = peer_groups(rule.get("from" if ingress else "to"), ns, state, matcher)
        if groups is not None and not groups:
            continue  # peers that are nobody
        ports = port_matches(rule.get("ports"), targets if ingress else state.pods, sets)
        for peer in [""] if groups is None else [_peer_match(g, ingress, sets) for g in groups]:
            out += [f"{peer}accept"] if ports is None else [f"{peer}{m} accept" for m in ports]
    return out


def _peer_match(addrs: list[str], ingress: bool, sets: _Sets | None) -> str:
    where = sets.ref(addrs, "a") if sets is not None else "{ " + ", ".join(addrs) + " }"
    return f"ip {'saddr' if ingress else 'daddr'} {where} "


@dataclass
class _Direction:
    """The rendering of one direction: pod IP -> policy-set chain, and the chains."""

    prefix: str  # "in" / "eg"
    pods: dict[str, str] = field(default_factory=dict)
    chains: dict[str, list[str]] = field(default_factory=dict)


def _directions(state: State, node: str, sets: _Sets) -> dict[str, _Direction]:
    local = [p for p in state.pods if p.node == node]
    matcher = _Matcher(state)
    dirs = {"Ingress": _Direction("in"), "Egress": _Direction("eg")}
    applying: dict[str, dict[str, list[str]]] = {"Ingress": {}, "Egress": {}}  # direction -> pod ip -> chains
    for pol in sorted(state.policies, key=policy_key):
        targets = selected(pol, local, matcher)
        if not targets:
            continue
        for direction in policy_types(pol):
            if direction not in dirs:
                continue
            chain = f"p{dirs[direction].prefix[0]}-{_h(policy_key(pol))}"
            dirs[direction].chains[chain] = policy_rules(pol, direction, targets, state, matcher, sets)
            for pod in targets:
                applying[direction].setdefault(pod.ip, []).append(chain)
    for direction, d in dirs.items():
        for ip, chains in applying[direction].items():
            name = f"{d.prefix}-{_h('|'.join(chains))}"
            d.chains.setdefault(name, [f"jump {c}" for c in chains] + ["drop"])
            d.pods[ip] = name
    return dirs


BASE_CHAINS = {  # name -> (hook line, rules); the same in every table
    "egress": ("type filter hook forward priority 10; policy accept;", "ip saddr vmap @egress-pods"),
    "egress-node": ("type filter hook input priority 10; policy accept;", "ip saddr vmap @egress-pods"),
    "ingress": ("type filter hook forward priority 20; policy accept;", "ip daddr vmap @ingress-pods"),
}
MAPS = ("ingress-pods", "egress-pods")


@dataclass
class Table:
    """The table as data: named sets (name -> declaration; a name is its content's hash),
    the two verdict maps (pod IP -> chain) and the regular chains (name -> rules)."""

    sets: dict[str, str] = field(default_factory=dict)
    maps: dict[str, dict[str, str]] = field(default_factory=dict)
    chains: dict[str, list[str]] = field(default_factory=dict)


def build(state: State, node: str) -> Table:
    """What `state` asks of `node`'s table."""
    sets = _Sets()
    dirs = _directions(state, node, sets)
    chains = {**dirs["Ingress"].chains, **dirs["Egress"].chains}
    return Table(dict(sets.decls), {"ingress-pods": dirs["Ingress"].pods, "egress-pods": dirs["Egress"].pods},
                 chains)


def _elems(m: dict[str, str]) -> str:
    return ", ".join(f"{ip} : jump {c}" for ip, c in sorted(m.items(), key=lambda kv: _ip_key(kv[0])))


def full(t: Table, table: str) -> str:
    """The `nft -f` script that replaces `inet <table>` with `t` in one transaction."""
    lines = [f"add table inet {table}", f"delete table inet {table}", f"table inet {table} {{"]
    lines += [f"  set {name} {{ {body} }}" for name, body in sorted(t.sets.items())]
    for name in MAPS:
        elems = _elems(t.maps.get(name) or {})
        lines.append(f"  map {name} {{ type ipv4_addr : verdict;" + (f" elements = {{ {elems} }}" if elems else "")
                     + " }")
    for name, (hook, rule) in BASE_CHAINS.items():
        lines += [f"  chain {name} {{", f"    {hook}", "    ct state established,related accept", f"    {rule}", "  }"]
    for name in sorted(t.chains):
        lines += [f"  chain {name} {{"] + [f"    {r}" for r in t.chains[name]] + ["  }"]
    return "\n".join(lines + ["}"]) + "\n"


def diff(old: Table, new: Table, table: str) -> str:
    """One `nft -f` transaction turning a kernel holding `old` into `new`, touching only what
    changed: new sets, then new and changed chains, then map elements, then what is gone
    (flushed before deleted, so no removed chain is still jumped to)."""
    t = f"inet {table}"
    cmds = [f"add set {t} {n} {{ {b} }}" for n, b in sorted(new.sets.items()) if n not in old.sets]
    changed = [n for n in sorted(new.chains) if old.chains.get(n) != new.chains[n]]
    cmds += [f"add chain {t} {n}" for n in changed]  # all declared before any rule jumps to one
    for name in changed:
        cmds.append(f"flush chain {t} {name}")
        cmds += [f"add rule {t} {name} {r}" for r in new.chains[name]]
    for m in MAPS:
        was, now = old.maps.get(m) or {}, new.maps.get(m) or {}
        gone = {ip: c for ip, c in was.items() if now.get(ip) != c}
        added = {ip: c for ip, c in now.items() if was.get(ip) != c}
        if gone:
            cmds.append(f"delete element {t} {m} {{ {_elems(gone)} }}")
        if added:
            cmds.append(f"add element {t} {m} {{ {_elems(added)} }}")
    removed = sorted(set(old.chains) - set(new.chains))
    cmds += [f"flush chain {t} {n}" for n in removed] + [f"delete chain {t} {n}" for n in removed]
    cmds += [f"delete set {t} {n}" for n in sorted(set(old.sets) - set(new.sets))]
    return "\n".join(cmds) + "\n" if cmds else ""


def render(state: State, node: str, table: str) -> str:
    """The whole `nft -f` script that makes `inet <table>` what `state` asks on `node`."""
    return full(build(state, node), table)


def _ip_key(ip: str) -> int:
    return int(ipaddress.IPv4Address(ip))


def delete_script(table: str) -> str:
    return f"add table inet {table}\ndelete table inet {table}\n"
