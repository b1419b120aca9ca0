"""The nftables ruleset of the service dataplane, and incremental updates to it.

One table `ip k8py`. Lookups are verdict maps keyed by address . protocol . port,
so the per-packet cost does not grow with the number of services:

  nat prerouting/output -> chain services:
      ip daddr . meta l4proto . th dport vmap @service-ips          (ClusterIP, LB IPs)
      fib daddr type local meta l4proto . th dport vmap @service-nodeports
  svc-<h>  (one per service port): masquerade mark for off-cluster sources, then
           `dnat to numgen inc mod N map { i : ip . port }` -> strict round robin,
           the endpoint chosen in the rule itself (no chain per endpoint)
  external entries (NodePort, LoadBalancer and external IPs): for
           externalTrafficPolicy: Cluster, the maps go to svc-<h> and the key is also in
           @external-ips / @external-nodeports, which marks the packet for masquerade
           first; for Local, to ext-<h>: the node-local endpoints only
  ep-<h>   (one per endpoint, only for session affinity): `update @affinity-<h>`,
           `dnat to ip:port`; svc-<h> first sends known clients to their endpoint,
           then round-robins with `numgen inc mod N vmap {...}` over these chains
  filter input/forward/output: @no-endpoint-services / @no-endpoint-nodeports ->
           reject at once (TCP reset) instead of letting the client hang.
  nat postrouting: hairpin (a pod reaching itself through a service: source and
           DNATed destination are the same endpoint, @hairpin-endpoints) gets mark
           0x4000; masquerade packets carrying mark 0x4000.

`Ruleset` is the desired state as data (chains, sets, map elements); `diff(old, new)`
gives one `nft -f` transaction that turns old into new, touching only what changed.
Invariant: applying `full(new)` or `diff(old, new)` on a kernel holding `old` yields
the same ruleset.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from k8py.proxy.model import Endpoint, ServicePort, usable

TABLE = "k8py"
FAMILY = "ip"
MASQ_MARK = "0x4000"

MAPS = {
    "service-ips": "ipv4_addr . inet_proto . inet_service : verdict",
    "service-nodeports": "inet_proto . inet_service : verdict",
    "no-endpoint-services": "ipv4_addr . inet_proto . inet_service : verdict",
    "no-endpoint-nodeports": "inet_proto . inet_service : verdict",
}
# Sets whose elements are data like the maps' (elements value ""), declared with the table.
STATIC_SETS = {
    "hairpin-endpoints": "ipv4_addr . ipv4_addr",
    "external-ips": "ipv4_addr . inet_proto . inet_service",
    "external-nodeports": "inet_proto . inet_service",
}

BASE_CHAINS = {
    "nat-prerouting": ["type nat hook prerouting priority dstnat; policy accept;", "jump services"],
    "nat-output": ["type nat hook output priority -100; policy accept;", "jump services"],
    "nat-postrouting": ["type nat hook postrouting priority srcnat; policy accept;", "jump masquerading"],
    "filter-input": ["type filter hook input priority -110; policy accept;",
                     "ct state new jump nodeport-endpoints-check",
                     "ct state new jump service-endpoints-check"],
    "filter-forward": ["type filter hook forward priority -110; policy accept;",
                       "ct state new jump service-endpoints-check"],
    "filter-output": ["type filter hook output priority -110; policy accept;",
                      "ct state new jump service-endpoints-check",
                      "ct state new jump nodeport-endpoints-check"],
}

HELPER_CHAINS = {  # in order: a chain exists before any rule that jumps to it
    "reject-chain": ["meta l4proto tcp reject with tcp reset", "reject"],
    "mark-for-masquerade": [f"meta mark set meta mark | {MASQ_MARK}"],
    "services": ["ip daddr . meta l4proto . th dport @external-ips jump mark-for-masquerade",
                 "ip daddr . meta l4proto . th dport vmap @service-ips",
                 "fib daddr type local meta l4proto . th dport @external-nodeports jump mark-for-masquerade",
                 "fib daddr type local meta l4proto . th dport vmap @service-nodeports"],
    "service-endpoints-check": ["ip daddr . meta l4proto . th dport vmap @no-endpoint-services"],
    "nodeport-endpoints-check": ["fib daddr type local meta l4proto . th dport vmap @no-endpoint-nodeports"],
    "masquerading": [f"ct status dnat ip saddr . ip daddr @hairpin-endpoints meta mark set meta mark | {MASQ_MARK}",
                     f"meta mark & {MASQ_MARK} == 0 return",
                     f"meta mark set meta mark ^ {MASQ_MARK}",
                     "masquerade fully-random"],
}


def _h(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]


@dataclass
class Ruleset:
    """Desired per-service state: chains (name -> rules), dynamic sets (name ->
    declaration), and map and static set elements (name -> {key: verdict or ""})."""

    chains: dict[str, list[str]] = field(default_factory=dict)
    sets: dict[str, str] = field(default_factory=dict)
    elements: dict[str, dict[str, str]] = field(default_factory=lambda: {m: {} for m in [*MAPS, *STATIC_SETS]})


def build(ports: list[ServicePort], node: str, cluster_cidr: str,
          cache: dict[ServicePort, Ruleset] | None = None) -> Ruleset:
    """The ruleset for these service ports. With `cache` (kept by the caller between
    syncs), an unchanged ServicePort reuses its rendered part instead of rendering it
    again: a sync's cost follows what changed, not the number of services."""
    rs = Ruleset()
    fresh: dict[ServicePort, Ruleset] = {}
    for sp in ports:
        part = cache.get(sp) if cache is not None else None
        if part is None:
            part = Ruleset()
            _add_service_port(part, sp, node, cluster_cidr)
        fresh[sp] = part
        rs.chains.update(part.chains)
        rs.sets.update(part.sets)
        for m, elems in part.elements.items():
            rs.elements[m].update(elems)
    if cache is not None:
        cache.clear()
        cache.update(fresh)
    return rs


def _round_robin(rs: Ruleset, sp: ServicePort, eps: list[Endpoint], chain: str, prefix: list[str]) -> None:
    """`chain` = prefix, then each new connection to the next of `eps` in turn (strict
    round robin: one `numgen inc` counter per rule)."""
    for e in eps:
        rs.elements["hairpin-endpoints"][f"{e.ip} . {e.ip}"] = ""
    if not sp.affinity_timeout:
        dests = ", ".join(f"{i} : {e.ip} . {e.port}" for i, e in enumerate(eps))
        rs.chains[chain] = [*prefix, f"meta l4proto {sp.protocol} dnat to numgen inc mod {len(eps)} map {{ {dests} }}"]
        return
    rules = list(prefix)
    targets = []
    for e in eps:
        ep_chain = f"ep-{_h(sp.key, e.ip, e.port)}"
        aff = f"affinity-{_h(sp.key, e.ip, e.port)}"
        targets.append(ep_chain)
        rs.sets[aff] = f"type ipv4_addr; flags dynamic,timeout; timeout {sp.affinity_timeout}s;"
        rs.chains[ep_chain] = [f"update @{aff} {{ ip saddr }}", f"meta l4proto {sp.protocol} dnat to {e.ip}:{e.port}"]
        rules.append(f"ip saddr @{aff} goto {ep_chain}")
    vmap = ", ".join(f"{i} : goto {t}" for i, t in enumerate(targets))
    rules.append(f"numgen inc mod {len(targets)} vmap {{ {vmap} }}")
    rs.chains[chain] = rules


def _add_service_port(rs: Ruleset, sp: ServicePort, node: str, cluster_cidr: str) -> None:
    svc_chain = f"svc-{_h(sp.key)}"
    ext_chain = f"ext-{_h(sp.key)}"
    proto = sp.protocol
    internal = usable(sp.endpoints, node, sp.internal_local)
    if internal:
        _round_robin(rs, sp, internal, svc_chain,
                     [f"ip saddr != {cluster_cidr} jump mark-for-masquerade"])
        rs.elements["service-ips"][f"{sp.cluster_ip} . {proto} . {sp.port}"] = f"goto {svc_chain}"
    else:
        rs.elements["no-endpoint-services"][f"{sp.cluster_ip} . {proto} . {sp.port}"] = "goto reject-chain"

    external_addrs = list(sp.load_balancer_ips) + list(sp.external_ips)
    if not external_addrs and not sp.node_port:
        return
    if sp.external_local:
        external = usable(sp.endpoints, node, True)
        if external:
            # Source addresses are preserved, except loopback ones that a pod cannot answer.
            _round_robin(rs, sp, external, ext_chain, ["ip saddr 127.0.0.0/8 jump mark-for-masquerade"])
    else:
        external = internal
        ext_chain = svc_chain  # entered after @external-ips / @external-nodeports marked it
    for addr in external_addrs:
        k = f"{addr} . {proto} . {sp.port}"
        if external:
            rs.elements["service-ips"][k] = f"goto {ext_chain}"
            if not sp.external_local:
                rs.elements["external-ips"][k] = ""
        else:
            rs.elements["no-endpoint-services"][k] = "goto reject-chain"
    if sp.node_port:
        k = f"{proto} . {sp.node_port}"
        if external:
            rs.elements["service-nodeports"][k] = f"goto {ext_chain}"
            if not sp.external_local:
                rs.elements["external-nodeports"][k] = ""
        else:
            rs.elements["no-endpoint-nodeports"][k] = "goto reject-chain"


def _chain_cmds(name: str, rules: list[str], table: str, flush: bool = True) -> list[str]:
    cmds = [f"add chain {FAMILY} {table} {name}"]
    if flush:
        cmds.append(f"flush chain {FAMILY} {table} {name}")
    cmds += [f"add rule {FAMILY} {table} {name} {r}" for r in rules]
    return cmds


def _elements(verb: str, name: str, table: str, items: list[tuple[str, str]]) -> list[str]:
    """One command for many elements of a map or set (nft parses one batch far faster
    than one command per element)."""
    if not items:
        return []
    body = ", ".join(f"{k} : {v}" if v and verb == "add" else k for k, v in items)
    return [f"{verb} element {FAMILY} {table} {name} {{ {body} }}"]


def full(rs: Ruleset, table: str = TABLE) -> str:
    """A transaction that (re)creates the whole table."""
    cmds = [f"add table {FAMILY} {table}", f"delete table {FAMILY} {table}", f"add table {FAMILY} {table}"]
    for m, t in MAPS.items():
        cmds.append(f"add map {FAMILY} {table} {m} {{ type {t}; }}")
    for m, t in STATIC_SETS.items():
        cmds.append(f"add set {FAMILY} {table} {m} {{ type {t}; }}")
    for name, decl in sorted(rs.sets.items()):
        cmds.append(f"add set {FAMILY} {table} {name} {{ {decl} }}")
    for name, rules in HELPER_CHAINS.items():
        cmds += _chain_cmds(name, rules, table, flush=False)
    for name, rules in _ordered(rs.chains):
        cmds += _chain_cmds(name, rules, table, flush=False)
    for name, (hook, *rules) in BASE_CHAINS.items():
        cmds.append(f"add chain {FAMILY} {table} {name} {{ {hook} }}")
        cmds += [f"add rule {FAMILY} {table} {name} {r}" for r in rules]
    for m, elems in rs.elements.items():
        cmds += _elements("add", m, table, sorted(elems.items()))
    return "\n".join(cmds) + "\n"


def _ordered(chains: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    """Endpoint chains first, then service chains, then external entry chains: a
    chain exists before any rule that jumps to it."""
    rank = {"ep": 0, "svc": 1, "ext": 2}
    return sorted(chains.items(), key=lambda kv: (rank.get(kv[0].split("-", 1)[0], 3), kv[0]))


def diff(old: Ruleset, new: Ruleset, table: str = TABLE) -> str:
    """The smallest transaction turning `old` into `new` ("" when nothing changed)."""
    cmds: list[str] = []
    for name, decl in sorted(new.sets.items()):
        if old.sets.get(name) != decl:
            if name in old.sets:
                cmds.append(f"delete set {FAMILY} {table} {name}")
            cmds.append(f"add set {FAMILY} {table} {name} {{ {decl} }}")
    changed = {n: r for n, r in new.chains.items() if old.chains.get(n) != r}
    for name, rules in _ordered(changed):
        cmds += _chain_cmds(name, rules, table)
    for m in [*MAPS, *STATIC_SETS]:
        o, n = old.elements.get(m, {}), new.elements.get(m, {})
        if o == n:
            continue
        cmds += _elements("delete", m, table, [(k, v) for k, v in sorted(o.items()) if n.get(k) != v])
        cmds += _elements("add", m, table, [(k, v) for k, v in sorted(n.items()) if o.get(k) != v])
    gone = [c for c, _ in reversed(_ordered({c: [] for c in old.chains.keys() - new.chains.keys()}))]
    cmds += [f"flush chain {FAMILY} {table} {c}" for c in gone]
    cmds += [f"delete chain {FAMILY} {table} {c}" for c in gone]
    cmds += [f"delete set {FAMILY} {table} {s}" for s in sorted(old.sets) if s not in new.sets]
    return "\n".join(cmds) + "\n" if cmds else ""
