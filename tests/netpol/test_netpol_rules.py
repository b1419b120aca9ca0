"""netpol.rules: policies + pods + namespaces -> the node's nftables table (pure)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from k8py.netpol.controller import dns_pods
from k8py.netpol.rules import PodInfo, State, peer_addresses, pod_info, port_matches, render

NODE = "n1"
WEB = PodInfo("default", "web", {"app": "web"}, "10.42.0.5", NODE, (("http", "TCP", 8080),))
CLIENT = PodInfo("default", "client", {"role": "client"}, "10.42.0.6", NODE)
OTHER = PodInfo("default", "other", {}, "10.42.0.7", NODE)
REMOTE = PodInfo("prod", "api", {"app": "api"}, "10.42.1.5", "n2", (("http", "TCP", 9090),))
PODS = [WEB, CLIENT, OTHER, REMOTE]
NAMESPACES = {"default": {"kubernetes.io/metadata.name": "default"},
              "prod": {"kubernetes.io/metadata.name": "prod", "env": "prod"}}


def pol(name: str, ns: str = "default", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": name}, "spec": spec}


def chains(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in re.finditer(r"^  chain (\S+) \{\n(.*?)^  \}", text, re.S | re.M):
        out[m.group(1)] = [ln.strip() for ln in m.group(2).splitlines()]
    return out


def named_sets(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r"^  set (\S+) \{ type [^;]+;(?: flags interval;)? "
                                                        r"elements = (\{ .*? \}) \}$", text, re.M)}


def verdicts(text: str, mapname: str) -> dict[str, list[str]]:
    """pod IP -> the rules its policy-set chain reaches (policy chains and named sets inlined)."""
    sets = named_sets(text)
    cs = {name: [re.sub(r"@(\S+)", lambda m: sets.get(m.group(1), m.group(0)), r) for r in rules]
          for name, rules in chains(text).items()}
    m = re.search(rf"map {mapname} {{ type ipv4_addr : verdict;(?: elements = {{ (.*?) }})? }}", text)
    assert m is not None
    out = {}
    for elem in (m.group(1) or "").split(", ") if m.group(1) else []:
        ip, _, chain = elem.partition(" : jump ")
        out[ip] = [r for line in cs[chain] for r in (cs[line[5:]] if line.startswith("jump ") else [line])]
    return out


SEL_WEB = {"matchLabels": {"app": "web"}}
CASES: list[tuple[str, list[dict[str, Any]], dict[str, list[str]], dict[str, list[str]]]] = [
    ("no-policy", [], {}, {}),
    ("default-deny-ingress", [pol("deny", podSelector={})],
     {"10.42.0.5": ["drop"], "10.42.0.6": ["drop"], "10.42.0.7": ["drop"]}, {}),
    ("default-deny-both", [pol("deny", podSelector={}, policyTypes=["Ingress", "Egress"])],
     {ip: ["drop"] for ip in ("10.42.0.5", "10.42.0.6", "10.42.0.7")},
     {ip: ["drop"] for ip in ("10.42.0.5", "10.42.0.6", "10.42.0.7")}),
    ("allow-by-label", [pol("allow", podSelector=SEL_WEB,
                            ingress=[{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}])],
     {"10.42.0.5": ["ip saddr { 10.42.0.6 } accept", "drop"]}, {}),
    ("allow-all-ingress", [pol("all", podSelector=SEL_WEB, ingress=[{}])], {"10.42.0.5": ["accept", "drop"]}, {}),
    ("namespace-selector", [pol("ns", podSelector=SEL_WEB,
                                ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"env": "prod"}}}]}])],
     {"10.42.0.5": ["ip saddr { 10.42.1.5 } accept", "drop"]}, {}),
    ("ns-and-pod-selector", [pol("both", podSelector=SEL_WEB, ingress=[{"from": [
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "api"}}}]}])],
     {"10.42.0.5": ["ip saddr { 10.42.1.5 } accept", "drop"]}, {}),
    ("ns-selector-nobody", [pol("none", podSelector=SEL_WEB, ingress=[{"from": [
        {"namespaceSelector": {"matchLabels": {"env": "staging"}}}]}])], {"10.42.0.5": ["drop"]}, {}),
    ("ports-and-ranges", [pol("ports", podSelector=SEL_WEB, ingress=[{"ports": [
        {"protocol": "TCP", "port": 80}, {"protocol": "TCP", "port": 8000, "endPort": 9000},
        {"protocol": "UDP"}, {"protocol": "TCP", "port": "http"}]}])],
     {"10.42.0.5": ["meta l4proto . th dport { tcp . 80, tcp . 8000-9000 } accept", "meta l4proto { udp } accept",
                    "ip daddr . meta l4proto . th dport { 10.42.0.5 . tcp . 8080 } accept", "drop"]}, {}),
    ("named-port-missing", [pol("named", podSelector=SEL_WEB, ingress=[{"ports": [{"protocol": "TCP",
                                                                                  "port": "metrics"}]}])],
     {"10.42.0.5": ["drop"]}, {}),
    ("egress-ipblock-except", [pol("out", podSelector=SEL_WEB, policyTypes=["Egress"], egress=[{"to": [
        {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/9"]}}]}])],
     {}, {"10.42.0.5": ["ip daddr { 10.128.0.0/9 } accept", "drop"]}),
    ("egress-named-port", [pol("out", podSelector=SEL_WEB, policyTypes=["Egress"], egress=[{"ports": [
        {"protocol": "TCP", "port": "http"}]}])],
     {}, {"10.42.0.5": ["ip daddr . meta l4proto . th dport { 10.42.0.5 . tcp . 8080, 10.42.1.5 . tcp . 9090 }"
                        " accept", "drop"]}),
    ("additive", [pol("a", podSelector=SEL_WEB, ingress=[{"from": [{"podSelector": {"matchLabels": {
        "role": "client"}}}]}]), pol("b", podSelector={}, ingress=[{"ports": [{"protocol": "TCP", "port": 443}]}])],
     {"10.42.0.5": ["ip saddr { 10.42.0.6 } accept", "meta l4proto . th dport { tcp . 443 } accept", "drop"],
      "10.42.0.6": ["meta l4proto . th dport { tcp . 443 } accept", "drop"],
      "10.42.0.7": ["meta l4proto . th dport { tcp . 443 } accept", "drop"]}, {}),
    ("pods-and-block", [pol("mixed", podSelector=SEL_WEB, ingress=[{"from": [
        {"podSelector": {"matchLabels": {"role": "client"}}}, {"ipBlock": {"cidr": "192.168.0.0/24"}}],
        "ports": [{"protocol": "TCP", "port": 80}]}])],
     {"10.42.0.5": ["ip saddr { 10.42.0.6 } meta l4proto . th dport { tcp . 80 } accept",
                    "ip saddr { 192.168.0.0/24 } meta l4proto . th dport { tcp . 80 } accept", "drop"]}, {}),
    ("other-namespace-policy", [pol("deny", ns="prod", podSelector={})], {}, {}),  # selects only n2's pod
]


@pytest.mark.parametrize("policies,ingress,egress", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_render(policies: list[dict[str, Any]], ingress: dict[str, list[str]], egress: dict[str, list[str]]) -> None:
    text = render(State(policies, PODS, NAMESPACES), NODE, "k8py-netpol-t")
    assert verdicts(text, "ingress-pods") == ingress
    assert verdicts(text, "egress-pods") == egress
    assert text == render(State(list(reversed(policies)), PODS, NAMESPACES), NODE, "k8py-netpol-t")  # stable


def test_the_table_filters_after_dnat_and_lets_established_traffic_through() -> None:
    cs = chains(render(State([pol("deny", podSelector={}, policyTypes=["Ingress", "Egress"])], PODS, NAMESPACES),
                       NODE, "k8py-netpol-t"))
    assert cs["ingress"][0] == "type filter hook forward priority 20; policy accept;"
    assert cs["egress"][0] == "type filter hook forward priority 10; policy accept;"
    assert cs["egress-node"][0] == "type filter hook input priority 10; policy accept;"  # pods to the node's DNS
    for c in ("ingress", "egress", "egress-node"):
        assert cs[c][1] == "ct state established,related accept"
    assert "output" not in "".join(cs["ingress"])  # the node's own traffic to its pods is not filtered


def test_ipblock_except_and_peers_collapse() -> None:
    st = State([], PODS, NAMESPACES)
    assert peer_addresses([{"ipBlock": {"cidr": "192.168.0.0/24", "except": ["192.168.0.0/25", "192.168.0.128/26"]}},
                           {"ipBlock": {"cidr": "192.168.0.192/26"}}], "default", st) == ["192.168.0.192/26"]
    assert peer_addresses(None, "default", st) is None
    assert peer_addresses([{"podSelector": {"matchLabels": {"app": "none"}}}], "default", st) == []
    assert port_matches(None, []) is None


def test_pod_info_skips_host_network_finished_and_addressless_pods() -> None:
    base = {"metadata": {"namespace": "d", "name": "p", "labels": {"a": "b"}},
            "spec": {"nodeName": NODE, "containers": [{"ports": [{"name": "web", "containerPort": 80}]}]},
            "status": {"podIP": "10.42.0.9", "phase": "Running"}}
    assert pod_info(base) == PodInfo("d", "p", {"a": "b"}, "10.42.0.9", NODE, (("web", "TCP", 80),))
    assert pod_info({**base, "spec": {**base["spec"], "hostNetwork": True}}) is None
    assert pod_info({**base, "status": {"podIP": "10.42.0.9", "phase": "Succeeded"}}) is None
    assert pod_info({**base, "status": {}}) is None


def test_the_cluster_dns_counts_as_kube_dns_pods() -> None:
    slices = [{"endpoints": [{"addresses": ["10.42.0.1"]}]}]
    dns = dns_pods(slices)
    p = pol("dns", podSelector=SEL_WEB, policyTypes=["Egress"], egress=[{
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}])
    ns = {**NAMESPACES, "kube-system": {"kubernetes.io/metadata.name": "kube-system"}}
    text = render(State([p], PODS + dns, ns), NODE, "k8py-netpol-t")
    assert verdicts(text, "egress-pods") == {
        "10.42.0.5": ["ip daddr { 10.42.0.1 } meta l4proto . th dport { tcp . 53, udp . 53 } accept", "drop"]}


def test_policies_sharing_peers_share_one_set() -> None:
    allow = {"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}
    text = render(State([pol("a", podSelector=SEL_WEB, ingress=[allow]), pol("b", podSelector={}, ingress=[allow])],
                        PODS, NAMESPACES), NODE, "k8py-netpol-t")
    assert len(named_sets(text)) == 1 and text.count("elements = { 10.42.0.6 }") == 1


def test_adjacent_pod_addresses_merge_into_a_range() -> None:
    peers = [{"podSelector": {}}]
    assert peer_addresses(peers, "default", State([], PODS, NAMESPACES)) == ["10.42.0.5-10.42.0.7"]
