"""The ruleset as data: what each kind of service produces, and that diffs are minimal."""

from __future__ import annotations

from k8py.proxy.model import Endpoint, ServicePort, service_ports
from k8py.proxy.rules import build, diff, full

CIDR = "10.42.0.0/16"


def sp(name: str = "web", eps: tuple[Endpoint, ...] = (), **kw: object) -> ServicePort:
    return ServicePort("default", name, "http", "tcp", 80, "10.43.0.20", endpoints=eps, **kw)  # type: ignore[arg-type]


E1 = Endpoint("10.42.0.5", 8080, "n1")
E2 = Endpoint("10.42.0.6", 8080, "n2")
E3_UNREADY = Endpoint("10.42.0.7", 8080, "n1", ready=False, serving=False)


def test_cluster_ip_round_robins_over_ready_endpoints() -> None:
    rs = build([sp(eps=(E1, E2, E3_UNREADY))], "n1", CIDR)
    verdict = rs.elements["service-ips"]["10.43.0.20 . tcp . 80"]
    svc_rules = rs.chains[verdict.split()[1]]
    assert svc_rules[-1] == ("meta l4proto tcp dnat to numgen inc mod 2 map "
                             "{ 0 : 10.42.0.5 . 8080, 1 : 10.42.0.6 . 8080 }")
    assert len(rs.chains) == 1  # no chain per endpoint
    assert set(rs.elements["hairpin-endpoints"]) == {"10.42.0.5 . 10.42.0.5", "10.42.0.6 . 10.42.0.6"}


def test_no_ready_endpoint_rejects() -> None:
    rs = build([sp(eps=(E3_UNREADY,), node_port=30080)], "n1", CIDR)
    assert rs.elements["service-ips"] == {}
    assert rs.elements["no-endpoint-services"] == {"10.43.0.20 . tcp . 80": "goto reject-chain"}
    assert rs.elements["no-endpoint-nodeports"] == {"tcp . 30080": "goto reject-chain"}


def test_node_port_and_load_balancer_are_marked_for_masquerade_then_enter_the_service() -> None:
    rs = build([sp(eps=(E1,), node_port=30080, load_balancer_ips=("127.0.100.1",))], "n1", CIDR)
    svc = rs.elements["service-ips"]["10.43.0.20 . tcp . 80"]
    assert rs.elements["service-nodeports"]["tcp . 30080"] == svc
    assert rs.elements["service-ips"]["127.0.100.1 . tcp . 80"] == svc
    assert rs.elements["external-nodeports"] == {"tcp . 30080": ""}
    assert rs.elements["external-ips"] == {"127.0.100.1 . tcp . 80": ""}


def test_external_traffic_policy_local_uses_only_local_endpoints() -> None:
    rs = build([sp(eps=(E1, E2), node_port=30080, external_local=True)], "n1", CIDR)
    ext = rs.elements["service-nodeports"]["tcp . 30080"].split()[1]
    assert ext.startswith("ext-") and rs.elements["external-nodeports"] == {}  # source kept
    assert rs.chains[ext][-1] == "meta l4proto tcp dnat to numgen inc mod 1 map { 0 : 10.42.0.5 . 8080 }"
    rs2 = build([sp(eps=(E2,), node_port=30080, external_local=True)], "n1", CIDR)
    assert rs2.elements["no-endpoint-nodeports"] == {"tcp . 30080": "goto reject-chain"}


def test_session_affinity_adds_a_timeout_set_per_endpoint() -> None:
    rs = build([sp(eps=(E1, E2), affinity_timeout=60)], "n1", CIDR)
    assert len(rs.sets) == 2 and all("timeout 60s" in d for d in rs.sets.values())
    svc = rs.chains[rs.elements["service-ips"]["10.43.0.20 . tcp . 80"].split()[1]]
    assert [r.split()[:3] for r in svc[1:3]] == [["ip", "saddr", f"@{s}"] for s in sorted(rs.sets)]
    assert svc[-1].startswith("numgen inc mod 2 vmap")


def test_terminating_but_serving_endpoints_are_a_fallback() -> None:
    term = Endpoint("10.42.0.9", 80, "n1", ready=False, serving=True, terminating=True)
    rs = build([sp(eps=(term,))], "n1", CIDR)
    assert "10.43.0.20 . tcp . 80" in rs.elements["service-ips"]


def test_diff_is_empty_when_nothing_changed_and_small_when_one_endpoint_changes() -> None:
    many = [ServicePort("ns", f"s{i}", "", "tcp", 80, f"10.43.1.{i}", endpoints=(E1,)) for i in range(50)]
    a = build(many, "n1", CIDR)
    assert diff(a, build(many, "n1", CIDR)) == ""
    changed = many[:49] + [ServicePort("ns", "s49", "", "tcp", 80, "10.43.1.49", endpoints=(E1, E2))]
    script = diff(a, build(changed, "n1", CIDR))
    assert 0 < script.count("\n") < 12
    removed = diff(a, build(many[:49], "n1", CIDR))
    assert "delete element ip k8py service-ips { 10.43.1.49 . tcp . 80 }" in removed
    assert "delete chain" in removed


def test_full_script_declares_every_map_and_hook() -> None:
    script = full(build([sp(eps=(E1,))], "n1", CIDR))
    for word in ("service-ips", "service-nodeports", "no-endpoint-services", "hook prerouting",
                 "hook output", "hook postrouting", "masquerade"):
        assert word in script


def svc(type_: str = "ClusterIP", **spec: object) -> dict:  # type: ignore[type-arg]
    return {"metadata": {"namespace": "default", "name": "web"},
            "spec": {"type": type_, "clusterIP": "10.43.0.20",
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}], **spec},
            "status": {"loadBalancer": {"ingress": [{"ip": "127.0.100.3"}]}}}


SLICE = {"addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
         "endpoints": [{"addresses": ["10.42.0.5"], "conditions": {"ready": True}, "nodeName": "n1"},
                       {"addresses": ["10.42.0.6"], "conditions": {"ready": False}, "nodeName": "n1"}]}


def test_model_from_service_and_slices() -> None:
    (p,) = service_ports(svc(), [SLICE])
    assert p.node_port == 0 and p.load_balancer_ips == ()
    assert [(e.ip, e.ready) for e in p.endpoints] == [("10.42.0.5", True), ("10.42.0.6", False)]
    (lb,) = service_ports(svc("LoadBalancer"), [SLICE])
    assert lb.node_port == 30080 and lb.load_balancer_ips == ("127.0.100.3",)
    assert service_ports(svc(clusterIP="None"), [SLICE]) == []
    assert service_ports(svc("ExternalName", externalName="x.example"), []) == []


def test_cached_build_equals_a_fresh_build() -> None:
    cache: dict = {}  # type: ignore[type-arg]
    many = [ServicePort("ns", f"s{i}", "", "tcp", 80, f"10.43.1.{i}", endpoints=(E1,)) for i in range(20)]
    first = build(many, "n1", CIDR, cache)
    assert len(cache) == 20
    changed = many[:19] + [ServicePort("ns", "s19", "", "tcp", 80, "10.43.1.19", endpoints=(E1, E2))]
    again = build(changed, "n1", CIDR, cache)
    fresh = build(changed, "n1", CIDR)
    assert (again.chains, again.sets, again.elements) == (fresh.chains, fresh.sets, fresh.elements)
    assert diff(first, again) == diff(first, fresh) != ""
    assert len(cache) == 20 and many[19] not in cache
